"""``export_streaming_model``: streaming model -> verified TFLite Micro artifacts.

Pipeline:

1. check the streaming contract and the clips (``(N, T, F)``, ``F`` of the model);
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
   :mod:`.flatbuffer`);
5. checks: loop-free, only TFLite Micro builtins, no float tensor (quantized modes);
6. artifacts (:mod:`.artifacts`), smallest TFLM arena (:mod:`.arena`), verification in
   LiteRT and TFLite Micro (:mod:`.verify`), ``metadata.json`` and ``report.json``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

import numpy as np

from lmuformer_keras.contract import Frontend, MetadataError

from . import artifacts
from .arena import GRANULARITY, find_min_arena
from .bool_cast import fold_bool_casts
from .calibration import check_clips, representative_samples, stream_float
from .contract import (
    as_streaming_model,
    check_streaming_model,
    layer_names,
    num_classes,
    num_features,
)
from .dense_as_conv import dense_as_conv as rewrite_dense_as_conv
from .dense_fold import fold_affine_into_dense
from .errors import ExportError, UnsupportedOpError
from .flatbuffer import INTEGER_TYPES, TFLiteGraph, layer_name_from_tensor
from .lif_fold import fold_lif_neurons
from .macs import count_macs
from .model_io import map_io, refresh_io
from .op_divergence import op_divergence
from .op_divergence import summarize as summarize_divergence
from .simplify import simplify_shape_ops
from .state_tying import check_states_tied, tie_states
from .tf_convert import QUANTIZATIONS
from .tflm_ops import check_tflm_ops, short_tensor_name
from .verify import LITERT_RESOLVER_TYPES, initial_quantized_states, verify_model

AGREEMENT_GOAL = 0.99
ACCURACY_DROP_GOAL = 0.5  # points
LSB_GOAL = 2
_LOOP_OPS = {
    "WHILE",
    "IF",
    "CALL_ONCE",
    "VAR_HANDLE",
    "READ_VARIABLE",
    "ASSIGN_VARIABLE",
}


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


def _describe_tensor(graph: TFLiteGraph, tensor: int, names) -> str:
    name = graph.tensor_name(tensor)
    producer = graph.tensor_producer_name(tensor) or "graph input"
    layer = layer_name_from_tensor(name, names)
    where = f"Keras layer '{layer}'" if layer else "no Keras layer matched"
    return (
        f"'{short_tensor_name(name)}' ({graph.tensor_dtype(tensor)}, written by "
        f"{producer}; {where})"
    )


def check_graph(graph: TFLiteGraph, quantization: str, names=()) -> list[str]:
    """Loop-free, TFLM builtins only, and (quantized) integer tensors only.

    Returns the sorted op names. Raises :class:`UnsupportedOpError`.
    """
    loops = sorted({graph.op_name(op) for op in graph.operators} & _LOOP_OPS)
    if loops:
        raise UnsupportedOpError(
            f"the step graph must be loop-free and stateless, but it converted to "
            f"{', '.join(loops)}: stream with explicit state inputs/outputs instead "
            "of a Keras RNN layer or variables"
        )
    ops = check_tflm_ops(graph, names)
    if quantization != "float32":
        floats = [
            t
            for t in range(len(graph.tensors))
            if graph.tensor_dtype(t) not in INTEGER_TYPES
        ]
        if floats:
            described = "; ".join(_describe_tensor(graph, t, names) for t in floats[:8])
            raise UnsupportedOpError(
                f"the {quantization} model still holds {len(floats)} non-integer "
                f"tensor(s) between input and output: {described}"
            )
    return ops


def _labels(streaming_model, labels, classes: int):
    labels = labels if labels is not None else getattr(streaming_model, "labels", None)
    if labels is None:
        return None
    labels = [str(label) for label in labels]
    if len(labels) != classes:
        raise ExportError(
            f"labels: {len(labels)} names given but the model has {classes} classes"
        )
    return labels


def _frontend(streaming_model) -> Frontend | None:
    """The model's frontend record (a record dict, a name-only record completed
    from the registered frontend, or a frontend object), or ``None``."""
    frontend = getattr(streaming_model, "frontend", None)
    if frontend is None:
        return None
    try:
        if isinstance(frontend, Frontend | Mapping):
            return Frontend.from_record(frontend, "the model's frontend")
        return Frontend.from_frontend(frontend)
    except (MetadataError, AttributeError, TypeError) as error:
        raise ExportError(
            f"the model's frontend {frontend!r:.120} is not a frontend record "
            f"{{name, params, frame_hop_ms}}: {error}"
        ) from error


def export_streaming_model(
    streaming_model,
    calibration_x,
    out_dir: str,
    quantization: str = "int8",
    labels=None,
    y=None,
    *,
    test_x=None,
    test_y=None,
    max_calibration_clips: int = 200,
    max_calibration_samples: int = 1000,
    max_clips: int | None = None,
    max_tflm_clips: int | None = None,
    arena_margin: float = 0.25,
    litert_resolver: str = "reference",
    divergence_clips: int = 8,
    strip_names: bool = True,
    optimize_graph: bool = True,
    dense_as_conv: bool = True,
    verify: bool = True,
    extra_modules=(),
    verbose: bool = True,
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
        quantization: ``"int8"`` (int8 weights per channel, int8 activations and
            I/O), ``"int16x8"`` (int16 activations and I/O, int8 weights) or
            ``"float32"``.
        labels: class names (default: ``streaming_model.labels``).
        y: labels of ``calibration_x`` (class indices or one-hot), for accuracies
            when no test set is given.
        test_x, test_y: verification clips and labels (default: the calibration
            clips and ``y``).
        max_calibration_clips: calibration clips streamed for the representative set.
        max_calibration_samples: random ``(clip, frame)`` tuples kept (plus the
            extremes of every input).
        max_clips: verification clips streamed in LiteRT (``None``: all).
        max_tflm_clips: verification clips streamed in TFLite Micro too (``None``:
            all).
        arena_margin: ``arena_bytes = min_arena * (1 + arena_margin)``, rounded up
            to 16 bytes.
        litert_resolver: LiteRT kernels compared with TFLite Micro:
            ``"reference"`` (``BUILTIN_REF``, default), ``"optimized"``
            (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``) or ``"default"`` (optimized
            kernels + XNNPACK); the per-step difference against the others is
            reported too.
        divergence_clips: integer models: verification clips rerun with every op
            output exposed, to report per op where TFLM and LiteRT part
            (:mod:`lmuformer_export.op_divergence`; 0: skip).
        strip_names: drop the names of internal tensors in ``model.tflite``
            (smaller flash; inputs and outputs keep theirs).
        optimize_graph: fold LIF neurons (int8), remove shape ops that move no
            data and merge equal constants (smaller flash and arena; the folds are
            exact up to the int8 rounding of the LIF potential, see
            :mod:`lmuformer_export.lif_fold`).
        dense_as_conv: int8: run each Dense as a 1x1 ``CONV_2D`` (same weights and
            arithmetic), whose int8 kernels give the same bytes in TFLite Micro and
            LiteRT where ``FULLY_CONNECTED``'s do not
            (:mod:`lmuformer_export.dense_as_conv`).
        verify: stream in LiteRT/TFLM (else only convert, check and write).
        extra_modules: modules to import in the TF conversion process (non-TF
            backends) besides those defining the step model's layer classes.
        verbose: print a summary.

    Returns:
        The report (also written to ``out_dir/report.json``).

    Raises:
        ExportError: (subclasses) for a model without a streaming form, bad clips,
            converter failures, ops TFLite Micro lacks, float tensors left, or
            states that cannot be tied; :class:`OutputDirError` for an ``out_dir``
            that is a file or holds other files.
    """
    if quantization not in QUANTIZATIONS:
        raise ExportError(
            f"export_streaming_model: quantization must be one of {QUANTIZATIONS}, "
            f"got quantization={quantization!r}"
        )
    streaming_model = as_streaming_model(streaming_model)
    states = check_streaming_model(streaming_model)
    features, classes = num_features(streaming_model), num_classes(streaming_model)
    x_cal = check_clips(calibration_x, features, "calibration clips")
    if test_x is not None:
        x_ver, y_ver = check_clips(test_x, features, "test clips"), test_y
    else:
        x_ver, y_ver = x_cal, y
    labels = _labels(streaming_model, labels, classes)
    frontend = _frontend(streaming_model)
    names = layer_names(streaming_model.step_model)
    artifacts.check_out_dir(out_dir)  # fail before the slow steps
    timings = {}

    start = time.perf_counter()
    samples = representative_samples(
        streaming_model,
        x_cal[:max_calibration_clips],
        max_samples=max_calibration_samples,
    )
    timings["calibration_s"] = time.perf_counter() - start

    start = time.perf_counter()
    (raw_bytes, io_names), conversion_mode = _convert(
        streaming_model,
        states,
        samples,
        quantization,
        extra_modules,
    )
    timings["conversion_s"] = time.perf_counter() - start

    graph = TFLiteGraph(raw_bytes)
    io = map_io(graph, io_names, features, classes, states)
    folded = fold_bool_casts(graph) if quantization != "float32" else 0
    affine_folded = fold_affine_into_dense(graph) if quantization == "int8" else 0
    lif_folded = shape_ops_removed = constants_merged = 0
    if optimize_graph:
        if quantization == "int8":
            lif_folded = fold_lif_neurons(graph, io.pairs)
        shape_ops_removed = simplify_shape_ops(graph)
        constants_merged = graph.dedup_constants()
    ops = check_graph(graph, quantization, names)
    tying = tie_states(graph, io.pairs)
    dense_as_conv_count = (
        rewrite_dense_as_conv(graph) if dense_as_conv and quantization == "int8" else 0
    )
    if strip_names:  # flash: only the inputs/outputs keep their names
        graph.strip_tensor_names(keep=graph.inputs + graph.outputs)
    graph.share_empty_buffers()
    model_bytes = graph.to_bytes()

    final = TFLiteGraph(model_bytes)  # re-read what is written
    io = refresh_io(final, io)
    check_states_tied(final, io.pairs)
    ops = check_graph(final, quantization, names)
    macs = count_macs(final)

    # Everything is written into a sibling folder, checked, then swapped in for
    # out_dir: a failure (or a kill) leaves a previous export there untouched.
    with artifacts.staged_output(out_dir) as stage:
        written = [
            artifacts.write_model(model_bytes, stage),
            *artifacts.write_c_array(model_bytes, stage),
            artifacts.write_op_resolver(ops, stage),
        ]

        start = time.perf_counter()
        arena_min = find_min_arena(model_bytes)
        with_margin = int(arena_min * (1.0 + arena_margin))
        arena_bytes = -(-with_margin // GRANULARITY) * GRANULARITY
        timings["arena_search_s"] = time.perf_counter() - start

        initial = [np.asarray(s)[:1] for s in streaming_model.initial_states(1)]
        metadata = artifacts.build_metadata(
            io=io,
            initial_states=initial,
            labels=labels,
            frontend=frontend,
            quantization=quantization,
            arena_bytes=arena_bytes,
            arena_bytes_min=arena_min,
            model_bytes=len(model_bytes),
            op_names=ops,
            macs=macs,
        )
        written.append(artifacts.write_metadata(metadata, stage))

        hop_ms = metadata.frame_hop_ms
        report = {
            "quantization": quantization,
            "conversion": conversion_mode,
            "model_bytes": len(model_bytes),
            "arena_bytes_min": arena_min,
            "arena_bytes": arena_bytes,
            "macs_per_frame": macs["total"],
            "frame_hop_ms": hop_ms,
            "macs_per_second": (
                None if not hop_ms else int(round(macs["total"] * 1000.0 / hop_ms))
            ),
            "macs_by_op": macs["by_op"],
            "elementwise_ops_per_frame": macs["elementwise_ops"],
            "ops": ops,
            "num_ops": len(final.operators),
            "bool_casts_folded": folded,
            "mul_add_folded_into_dense": affine_folded,
            "lif_neurons_folded": lif_folded,
            "shape_ops_removed": shape_ops_removed,
            "constants_merged": constants_merged,
            "dense_as_conv": dense_as_conv_count,
            "states": tying,
            "calibration_samples": len(samples),
            "checks": {
                "loop_free": True,
                "tflm_builtins_only": True,
                "integer_only": quantization != "float32",
                "state_params_equal": True,
            },
            "files": [os.path.basename(p) for p in written] + ["report.json"],
        }
        if verify:
            start = time.perf_counter()
            n = x_ver.shape[0] if max_clips is None else min(max_clips, x_ver.shape[0])
            float_logits = stream_float(streaming_model, x_ver[:n])
            report["verification"] = verify_model(
                model_bytes,
                io,
                x_ver[:n],
                float_logits,
                initial,
                arena_size=arena_bytes,
                y=y_ver,
                max_tflm_clips=max_tflm_clips,
                litert_resolver=litert_resolver,
            )
            micro = report["verification"].get("tflm")
            if micro and quantization != "float32" and divergence_clips:
                clips = x_ver[: min(divergence_clips, micro["clips"])]
                divergence = op_divergence(
                    model_bytes,
                    io,
                    clips,
                    initial_quantized_states(io, initial),
                    arena_bytes,
                    litert_resolver,
                )
                micro["divergence_by_op"] = {
                    "clips": int(clips.shape[0]),
                    **summarize_divergence(divergence),
                    "by_op": divergence,
                }
            timings["verification_s"] = time.perf_counter() - start
            report["goals"] = _goals(report["verification"], quantization)
            report["notes"] = _notes(report["verification"])
        report["timings"] = {k: round(v, 3) for k, v in timings.items()}
        written.append(artifacts.write_json(report, os.path.join(stage, "report.json")))
        artifacts.check_written(stage, written, model_bytes)
    if verbose:
        print(format_report(report, out_dir))
    return report


def _goals(verification: dict, quantization: str) -> dict:
    lite = verification["litert"]
    goals = {
        "litert_agreement_ge_99pct": lite["agreement_with_float"] >= AGREEMENT_GOAL
    }
    if lite["accuracy_drop_points"] is not None:
        goals["litert_accuracy_drop_le_0.5_points"] = (
            lite["accuracy_drop_points"] <= ACCURACY_DROP_GOAL
        )
    micro = verification.get("tflm")
    if micro is not None:
        goals["tflm_agreement_ge_99pct"] = (
            micro["agreement_with_float"] >= AGREEMENT_GOAL
        )
        if micro["accuracy_drop_points"] is not None:
            goals["tflm_accuracy_drop_le_0.5_points"] = (
                micro["accuracy_drop_points"] <= ACCURACY_DROP_GOAL
            )
        if quantization == "int8":  # int16 LSB are 256x finer: no goal there
            diff = micro["max_diff_vs_litert"]["per_step"]
            goals["tflm_vs_litert_per_step_max_le_2_lsb"] = (
                max(diff["logits"], diff["states"]) <= LSB_GOAL
            )
            # Spiking models: one LSB below a threshold flips a spike (a large
            # difference on that frame only), so also judge the share of frames.
            goals["tflm_vs_litert_per_step_le_2_lsb_on_99pct_frames"] = (
                micro["per_step_frames_within_goal"] >= AGREEMENT_GOAL
            )
    return goals


def _resolver_kind(resolver: str) -> str:
    kind = LITERT_RESOLVER_TYPES[resolver]
    return "optimized kernels + XNNPACK" if kind is None else f"OpResolverType.{kind}"


def _notes(verification: dict) -> list[str]:
    micro = verification.get("tflm")
    if micro is None:
        return []
    resolver = micro["max_diff_vs_litert"]["resolver"]
    notes = [
        f"TFLM-vs-LiteRT differences are measured against LiteRT's {resolver} "
        f"kernels ({_resolver_kind(resolver)}), per step (TFLM fed LiteRT's state "
        "inputs). TFLite Micro's int8 kernels requantize with gemmlowp's doubling "
        "high multiply and a rounding shift. LiteRT's reference FULLY_CONNECTED "
        "kernel rounds differently on about 0.1% of outputs (one LSB), which is why "
        "the export runs each Dense as a 1x1 CONV_2D (dense_as_conv); XNNPACK's "
        "int8 kernels (the 'default' set) requantize their own way and differ by "
        "one LSB more often."
    ]
    main = micro["max_diff_vs_litert"]["per_step"]
    main_met = max(main["logits"], main["states"]) <= LSB_GOAL
    for key, value in micro.items():
        if key.startswith("max_diff_vs_litert_"):
            other = key[len("max_diff_vs_litert_") :]
            if "error" in value:
                notes.append(f"LiteRT {other} kernels: not run ({value['error']}).")
                continue
            step = value["per_step"]
            notes.append(
                f"Per step against LiteRT's {other} kernels: logits "
                f"{step['logits']:g}, states {step['states']:g} {value['unit']}."
            )
            other_met = max(step["logits"], step["states"]) <= LSB_GOAL
            if value["unit"] == "lsb" and main_met != other_met:
                met, unmet = (resolver, other) if main_met else (other, resolver)
                notes.append(
                    f"The per-step {LSB_GOAL:g}-LSB goal is met only against LiteRT's "
                    f"{met} kernels, not its {unmet} kernels."
                )
    return notes


def format_report(report: dict, out_dir: str = "") -> str:
    """Human-readable summary of a report."""
    lines = [
        f"lmuformer-export: {report['quantization']} -> {out_dir}",
        f"  flash {report['model_bytes']} B, arena {report['arena_bytes_min']} B "
        f"(metadata: {report['arena_bytes']} B), "
        f"{report['macs_per_frame']} MACs/frame, ops {', '.join(report['ops'])}",
        "  states: "
        + ", ".join(f"{s['name']}={s['method']}" for s in report["states"]),
    ]
    verification = report.get("verification")
    if verification:
        lite = verification["litert"]
        lines.append(
            f"  LiteRT: agreement with float {lite['agreement_with_float']:.4f} "
            f"on {lite['clips']} clips"
            + (
                f", accuracy {lite['accuracy']:.4f}"
                if lite["accuracy"] is not None
                else ""
            )
            + (
                f" (float {verification['float']['accuracy']:.4f})"
                if verification["float"]["accuracy"] is not None
                else ""
            )
        )
        micro = verification.get("tflm")
        if micro:
            diff = micro["max_diff_vs_litert"]
            step, free = diff["per_step"], diff["free_running"]
            lines.append(
                f"  TFLM: agreement with float {micro['agreement_with_float']:.4f} "
                f"on {micro['clips']} clips"
                + (
                    f", accuracy {micro['accuracy']:.4f}"
                    if micro["accuracy"] is not None
                    else ""
                )
                + f"; max diff vs LiteRT {diff['resolver']} ({diff['unit']}, "
                "logits/states): per step "
                f"{step['logits']:g}/{step['states']:g}, free-running "
                f"{free['logits']:g}/{free['states']:g}; per-step frames within "
                f"{micro['lsb_goal']:g}: {micro['per_step_frames_within_goal']:.1%}"
            )
            div = micro.get("divergence_by_op")
            if div:
                lines.append(
                    f"  per op ({div['clips']} clips, same inputs): the kernels differ "
                    f"at {len(div['ops_whose_kernels_differ'])} of {div['ops']} op "
                    f"outputs (by <= {div['largest_own_lsb']} LSB); largest op-output "
                    f"difference {div['largest_max_lsb']} LSB"
                )
        for note in report.get("notes", [])[1:]:
            lines.append(f"  {note}")
        failed = [k for k, ok in report.get("goals", {}).items() if not ok]
        if failed:
            lines.append("  GOALS NOT MET: " + ", ".join(failed))
    return "\n".join(lines)
