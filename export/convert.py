"""``export_streaming_model``: streaming model -> verified TFLite Micro artifacts.

Pipeline:

1. check the streaming contract and the clips (``(N, T, F)``, ``F`` of the model:
   :mod:`.inputs`);
2. representative dataset: real ``[frame, *states]`` tuples from streaming the float
   step model over the calibration clips (:mod:`.calibration`);
3. convert the batch-1 step graph with ``TFLiteConverter.from_concrete_functions``
   (in this process under the TensorFlow backend, else in a TF-backend child process:
   :mod:`.tf_subprocess`);
4. graph edits on the flatbuffer: make the float spike islands integer
   (:mod:`.bool_cast`), fold per-channel ``MUL``/``ADD`` (BatchNormalization) into
   the Dense before them (:mod:`.dense_fold`), fold each LIF neuron layer into five
   ops (:mod:`.lif_fold`), remove shape ops that move no data (:mod:`.simplify`),
   merge equal constants, tie each state output's quantization to its input's
   (:mod:`.state_tying`), drop internal tensor names and empty buffers (the
   flatbuffer is written with every repeated vector and table stored once:
   :mod:`.flatbuffer_writer`);
5. checks: loop-free, only TFLite Micro builtins, no float tensor (quantized modes);
6. artifacts (:mod:`.artifacts`), smallest TFLM arena (:mod:`.arena`), verification in
   LiteRT and TFLite Micro (:mod:`.verify`), ``metadata.json`` and ``report.json``
   (:mod:`.report`).

Each stage is a function of its own: :func:`.inputs.prepare` (1), :func:`calibrate`
(2), ``_convert`` (3), :func:`rewrite` (4 and 5), :func:`write_artifacts`,
:func:`verify` and :func:`build_report` (6); :func:`export_streaming_model` runs them
in order with the settings of one :class:`~lmuformer_export.options.ExportOptions`
(step 6 in a staging folder: ``_write_staged_export``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import numpy as np

from lmuformer_keras.contract import ExportMetadata

from . import artifacts
from .arena import GRANULARITY, find_min_arena
from .calibration import representative_samples, stream_float
from .contract import num_features
from .inputs import ExportInputs, prepare
from .op_divergence import op_divergence
from .op_divergence import summarize as summarize_divergence
from .options import ExportOptions
from .report import (  # noqa: F401  (re-exported: the report's targets)
    ACCURACY_DROP_GOAL,
    AGREEMENT_GOAL,
    LSB_GOAL,
    format_report,
)
from .report import goals as report_goals
from .report import notes as report_notes
from .rewrite import RewrittenGraph, check_graph, rewrite
from .runtimes import initial_quantized_states
from .verify import verify_model

__all__ = [
    "ExportOptions",
    "RewrittenGraph",
    "WrittenExport",
    "build_report",
    "calibrate",
    "check_graph",
    "export_streaming_model",
    "format_report",
    "rewrite",
    "verify",
    "write_artifacts",
]


def _convert(streaming_model, states, samples, quantization, extra_modules):
    import keras

    features = num_features(streaming_model)
    if keras.backend.backend() == "tensorflow":
        from .tf_convert import convert_step_model

        return convert_step_model(
            streaming_model.step_model,
            features,
            states,
            samples,
            quantization,
        ), "in-process"
    from .tf_subprocess import convert_in_subprocess

    source, factory = _source_model(streaming_model)
    return convert_in_subprocess(
        streaming_model.step_model,
        features,
        states,
        samples,
        quantization,
        extra_modules=extra_modules,
        source_model=source,
        factory=factory,
    ), "subprocess"


def _source_model(streaming_model):
    """``(keras_model, "module:Class")`` when ``Class(keras_model)`` rebuilds it."""
    import keras

    model = getattr(streaming_model, "model", None)
    cls = type(streaming_model)
    if (
        isinstance(model, keras.Model)
        and cls.__module__ != "__main__"
        and "<locals>" not in cls.__qualname__
    ):
        return model, f"{cls.__module__}:{cls.__qualname__}"
    return None, None


@dataclasses.dataclass(frozen=True)
class WrittenExport:
    """What :func:`write_artifacts` put into the staging folder.

    Attributes:
        files: paths written so far (``report.json`` comes last).
        arena_bytes_min: smallest TFLite Micro arena that runs the model.
        arena_bytes: the arena with the margin (in ``metadata.json``).
        metadata: the ``metadata.json`` record.
        initial_states: float initial states, batch 1.
    """

    files: list[str]
    arena_bytes_min: int
    arena_bytes: int
    metadata: ExportMetadata
    initial_states: list[np.ndarray]


def calibrate(inputs: ExportInputs, options: ExportOptions) -> list:
    """Step 2: the representative ``[frame, *states]`` tuples (float streaming)."""
    return representative_samples(
        inputs.streaming_model,
        inputs.x_cal[: options.max_calibration_clips],
        max_samples=options.max_calibration_samples,
    )


def write_artifacts(
    stage: str,
    graph: RewrittenGraph,
    inputs: ExportInputs,
    options: ExportOptions,
    timings: dict,
) -> WrittenExport:
    """Step 5: model, C array, op resolver, smallest arena and ``metadata.json``."""
    model_bytes = graph.model_bytes
    files = [
        artifacts.write_model(model_bytes, stage),
        *artifacts.write_c_array(model_bytes, stage),
        artifacts.write_op_resolver(graph.ops, stage),
    ]
    start = time.perf_counter()
    arena_min = find_min_arena(model_bytes)
    with_margin = int(arena_min * (1.0 + options.arena_margin))
    arena_bytes = -(-with_margin // GRANULARITY) * GRANULARITY
    timings["arena_search_s"] = time.perf_counter() - start

    initial = [np.asarray(s)[:1] for s in inputs.streaming_model.initial_states(1)]
    metadata = artifacts.build_metadata(
        io=graph.io,
        initial_states=initial,
        labels=inputs.labels,
        frontend=inputs.frontend,
        quantization=options.quantization,
        arena_bytes=arena_bytes,
        arena_bytes_min=arena_min,
        model_bytes=len(model_bytes),
        op_names=graph.ops,
        macs=graph.macs,
    )
    files.append(artifacts.write_metadata(metadata, stage))
    return WrittenExport(files, arena_min, arena_bytes, metadata, initial)


def verify(
    graph: RewrittenGraph,
    written: WrittenExport,
    inputs: ExportInputs,
    options: ExportOptions,
) -> dict:
    """Step 6: stream the verification clips in LiteRT and TFLite Micro.

    Returns:
        The report's ``verification`` (:func:`verify_model`), with the per-op
        divergence of integer models under ``tflm.divergence_by_op``.
    """
    x_ver, max_clips = inputs.x_ver, options.max_clips
    n = x_ver.shape[0] if max_clips is None else min(max_clips, x_ver.shape[0])
    float_logits = stream_float(inputs.streaming_model, x_ver[:n])
    verification = verify_model(
        graph.model_bytes,
        graph.io,
        x_ver[:n],
        float_logits,
        written.initial_states,
        arena_size=written.arena_bytes,
        y=inputs.y_ver,
        max_tflm_clips=options.max_tflm_clips,
        litert_resolver=options.litert_resolver,
    )
    micro = verification.get("tflm")
    if micro and options.quantization != "float32" and options.divergence_clips:
        clips = x_ver[: min(options.divergence_clips, micro["clips"])]
        divergence = op_divergence(
            graph.model_bytes,
            graph.io,
            clips,
            initial_quantized_states(graph.io, written.initial_states),
            written.arena_bytes,
            options.litert_resolver,
        )
        micro["divergence_by_op"] = {
            "clips": int(clips.shape[0]),
            **summarize_divergence(divergence),
            "by_op": divergence,
        }
    return verification


def build_report(
    graph: RewrittenGraph,
    written: WrittenExport,
    options: ExportOptions,
    conversion_mode: str,
    calibration_samples: int,
) -> dict:
    """The report's figures before verification (same keys and order as ever)."""
    macs, hop_ms = graph.macs, written.metadata.frame_hop_ms
    return {
        "quantization": options.quantization,
        "conversion": conversion_mode,
        "model_bytes": len(graph.model_bytes),
        "arena_bytes_min": written.arena_bytes_min,
        "arena_bytes": written.arena_bytes,
        "macs_per_frame": macs["total"],
        "frame_hop_ms": hop_ms,
        "macs_per_second": (
            None if not hop_ms else int(round(macs["total"] * 1000.0 / hop_ms))
        ),
        "macs_by_op": macs["by_op"],
        "elementwise_ops_per_frame": macs["elementwise_ops"],
        "ops": graph.ops,
        "num_ops": graph.num_ops,
        **graph.edits,
        "states": graph.tying,
        "calibration_samples": calibration_samples,
        "checks": {
            "loop_free": True,
            "tflm_builtins_only": True,
            "integer_only": options.quantization != "float32",
            "state_params_equal": True,
        },
        "files": [os.path.basename(p) for p in written.files] + ["report.json"],
    }


def _timed(timings: dict, key: str, step, *args):
    start = time.perf_counter()
    result = step(*args)
    timings[key] = time.perf_counter() - start
    return result


def _write_staged_export(
    out_dir: str,
    graph: RewrittenGraph,
    inputs: ExportInputs,
    options: ExportOptions,
    timings: dict,
    conversion_mode: str,
    calibration_samples: int,
) -> dict:
    """Step 6 in a staging folder: artifacts, verification and ``report.json``.

    Everything is written into a sibling folder, checked, then swapped in for
    ``out_dir``: a failure (or a kill) leaves a previous export there untouched.

    Args:
        out_dir: the output folder.
        graph: the rewritten and checked graph (:func:`rewrite`).
        inputs: the checked model and clips (:func:`.inputs.prepare`).
        options: the export's settings.
        timings: seconds per stage so far; the arena search and verification are
            added, and the whole goes into the report rounded to milliseconds.
        conversion_mode: ``"in-process"`` or ``"subprocess"``.
        calibration_samples: the number of representative samples.

    Returns:
        The report, as written to ``report.json``.
    """
    with artifacts.staged_output(out_dir) as stage:
        written = write_artifacts(stage, graph, inputs, options, timings)
        report = build_report(
            graph, written, options, conversion_mode, calibration_samples
        )
        if options.verify:
            report["verification"] = _timed(
                timings, "verification_s", verify, graph, written, inputs, options
            )
            report["goals"] = report_goals(report["verification"], options.quantization)
            report["notes"] = report_notes(report["verification"])
        report["timings"] = {k: round(v, 3) for k, v in timings.items()}
        files = [*written.files, os.path.join(stage, "report.json")]
        artifacts.write_json(report, files[-1])
        artifacts.check_written(stage, files, graph.model_bytes)
    return report


def export_streaming_model(
    streaming_model,
    calibration_x,
    out_dir: str,
    quantization: str | None = None,
    labels=None,
    y=None,
    *,
    test_x=None,
    test_y=None,
    options: ExportOptions | None = None,
    **option_values: Any,
) -> dict:
    """Convert, check, write and verify a streaming model for TFLite Micro.

    Args:
        streaming_model: object meeting the streaming contract
            (:mod:`lmuformer_export.contract`), or a Keras model with a streaming
            form (a causal ``LMUFormer``: wrapped with
            ``lmuformer_keras.streaming.StreamingModel``).
        calibration_x: calibration clips ``(N, T, F)`` (float features).
        out_dir: output folder: created, or replaced when it holds a previous
            export (only its files). The export is written into the sibling
            ``<out_dir>.tmp-<pid>`` and renamed in once complete and checked, so a
            failure leaves ``out_dir`` as it was.
        quantization: ``"int8"``, ``"int16x8"`` or ``"float32"``
            (:class:`ExportOptions`; default: ``options.quantization``, int8).
        labels: class names (default: ``streaming_model.labels``).
        y: labels of ``calibration_x`` (class indices or one-hot), for accuracies
            when no test set is given.
        test_x, test_y: verification clips and labels (default: the calibration
            clips and ``y``).
        options: the export's settings (default: ``ExportOptions()``).
        **option_values: any :class:`ExportOptions` field by name
            (``max_tflm_clips=40``, ``verify=False``, ``verbose=False``, ...),
            overriding ``options``.

    Returns:
        The report (also written to ``out_dir/report.json``).

    Raises:
        ExportError: (subclasses) for a model without a streaming form, bad clips,
            converter failures, ops TFLite Micro lacks, float tensors left, or
            states that cannot be tied; :class:`OutputDirError` for an ``out_dir``
            that is a file or holds other files.
        TypeError: for a keyword that is not an :class:`ExportOptions` field.
    """
    if quantization is not None:
        option_values["quantization"] = quantization
    options = (options or ExportOptions()).replace(**option_values)
    inputs = prepare(streaming_model, calibration_x, out_dir, labels, y, test_x, test_y)
    timings = {}
    samples = _timed(timings, "calibration_s", calibrate, inputs, options)
    (raw_bytes, io_names), conversion_mode = _timed(
        timings,
        "conversion_s",
        _convert,
        inputs.streaming_model,
        inputs.states,
        samples,
        options.quantization,
        options.extra_modules,
    )
    graph = rewrite(raw_bytes, io_names, inputs, options)
    report = _write_staged_export(
        out_dir, graph, inputs, options, timings, conversion_mode, len(samples)
    )
    if options.verbose:
        print(format_report(report, out_dir, clips=inputs.clips))
    return report
