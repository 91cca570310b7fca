"""Stream the converted model in LiteRT and TFLite Micro and compare with float.

Each clip is streamed frame by frame from the quantized initial states; after every
frame the state outputs are copied to the state inputs (the bytes, no requantization:
:mod:`lmuformer_export.state_tying` makes that exact; the runners and the loop:
:mod:`.runtimes`). Clip logits are the mean over
frames of the dequantized per-frame logits; the clip decision is their argmax.

LiteRT runs its reference kernels (``OpResolverType.BUILTIN_REF``) by default; its
optimized builtin kernels (``"optimized"``) and its default set (optimized kernels
plus the XNNPACK delegate, ``"default"``) are compared too. With every Dense run as a
1x1 ``CONV_2D`` (:mod:`lmuformer_export.dense_as_conv`), TFLite Micro computes the
same bytes as LiteRT's reference and optimized kernels; XNNPACK's int8 kernels
requantize differently (see export/README.md).
"""

from __future__ import annotations

import numpy as np

from .model_io import ModelIO
from .runtimes import (
    LITERT_RESOLVERS,
    LiteRTRunner,
    TFLMRunner,
    dequantize,
    initial_quantized_states,
    stream,
)


def _decisions(frame_logits: np.ndarray) -> np.ndarray:
    return np.argmax(frame_logits.mean(axis=1), axis=-1)


def _labels(y, n: int) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim == 2:
        y = np.argmax(y, axis=-1)
    return y.reshape(-1)[:n].astype(np.int64)


def _accuracy(decisions: np.ndarray, y: np.ndarray | None) -> float | None:
    if y is None:
        return None
    return float(np.mean(decisions == y[: decisions.shape[0]]))


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def _state_diff(a_frames, b_frames) -> float:
    diff = 0.0
    for a_frame, b_frame in zip(a_frames, b_frames, strict=True):
        for a, b in zip(a_frame, b_frame, strict=True):
            diff = max(diff, _diff(a, b))
    return diff


def _frame_diffs(logits_a, logits_b, states_a, states_b) -> np.ndarray:
    """Per frame, the largest difference over the logits and all states."""
    diffs = np.abs(logits_a.astype(np.float64) - logits_b.astype(np.float64)).max(1)
    for t, (a_frame, b_frame) in enumerate(zip(states_a, states_b, strict=True)):
        for a, b in zip(a_frame, b_frame, strict=True):
            diffs[t] = max(diffs[t], _diff(a, b))
    return diffs


def _compare(lite, micro, io, frames, initial_q, others=()):
    """Per-step and free-running differences of two runners.

    ``others``: more runners (e.g. LiteRT's default kernels) compared per step with
    ``micro`` (both fed ``lite``'s state inputs).

    Returns ``(diffs, lite_raw_logits, micro_free_running_raw_logits,
    per_step_frame_diffs, other_per_step_diffs)``.
    """
    lite_logits, lite_in, lite_out = stream(lite, io, frames, initial_q)
    forced_logits, _, forced_out = stream(
        micro, io, frames, initial_q, forced_states=lite_in
    )
    free_logits, _, free_out = stream(micro, io, frames, initial_q)
    diffs = {
        "per_step": {
            "logits": _diff(lite_logits, forced_logits),
            "states": _state_diff(lite_out, forced_out),
        },
        "free_running": {
            "logits": _diff(lite_logits, free_logits),
            "states": _state_diff(lite_out, free_out),
        },
    }
    frame_diffs = _frame_diffs(lite_logits, forced_logits, lite_out, forced_out)
    other_diffs = []
    for other in others:
        o_logits, _, o_out = stream(other, io, frames, initial_q, forced_states=lite_in)
        other_diffs.append(
            {
                "logits": _diff(o_logits, forced_logits),
                "states": _state_diff(o_out, forced_out),
            }
        )
    return diffs, lite_logits, free_logits, frame_diffs, other_diffs


def _max_into(total: dict, diffs: dict) -> None:
    for mode, values in diffs.items():
        for key, value in values.items():
            total[mode][key] = max(total[mode][key], value)


def compare_runtimes(
    model_bytes: bytes,
    io: ModelIO,
    frames: np.ndarray,
    initial_q: list[np.ndarray],
    arena_size: int,
    resolver: str = "reference",
) -> dict:
    """Largest differences of TFLM against LiteRT over one stream ``(T, F)``.

    ``per_step``: TFLM is fed LiteRT's state inputs at every frame (same inputs,
    so this measures kernel differences); ``free_running``: each runtime feeds its own
    states (one-LSB differences can then drift through the recurrence);
    ``per_step_frame_max``: per frame, the largest per-step difference over logits and
    states. Values are LSB of the raw outputs for integer models, float units
    otherwise. (A spike threshold turns a one-LSB difference just below it into a
    reset membrane: spiking models show large per-step differences on a few frames.)
    ``resolver``: LiteRT's kernels (:class:`LiteRTRunner`).
    """
    diffs, _, _, frame_diffs, _ = _compare(
        LiteRTRunner(model_bytes, resolver),
        TFLMRunner(model_bytes, arena_size),
        io,
        frames,
        initial_q,
    )
    return {
        "frames": int(frames.shape[0]),
        **diffs,
        "per_step_frame_max": frame_diffs,
    }


def _drop_points(float_accuracy, accuracy):
    if float_accuracy is None or accuracy is None:
        return None
    return round(100.0 * (float_accuracy - accuracy), 4)


def verify_model(
    model_bytes: bytes,
    io: ModelIO,
    x: np.ndarray,
    float_frame_logits: np.ndarray,
    initial_states,
    arena_size: int,
    y=None,
    max_tflm_clips: int | None = None,
    max_clips: int | None = None,
    lsb_goal: float = 2,
    litert_resolver: str = "reference",
) -> dict:
    """Clip-level agreement and accuracy of LiteRT and TFLM against float.

    Every clip is streamed frame by frame in LiteRT and in TFLite Micro (per step:
    TFLM fed LiteRT's state inputs; free-running: each runtime its own states).

    Args:
        model_bytes: the ``.tflite`` flatbuffer.
        io: positions and quantization of frame, logits and states.
        x: clips ``(N, T, F)``.
        float_frame_logits: float per-frame logits ``(N, T, C)`` of the step model.
        initial_states: float initial states, batch 1.
        arena_size: TFLM arena in bytes.
        y: optional labels ``(N,)`` (or one-hot) for accuracies.
        max_tflm_clips: clips streamed in TFLM too (``None``: all).
        max_clips: clips streamed in LiteRT (``None``: all).
        lsb_goal: per-step difference counted in ``per_step_frames_within_goal``.
        litert_resolver: kernels of the LiteRT run compared with TFLM
            (:class:`LiteRTRunner`); the per-step difference against each other
            resolver is reported too (``max_diff_vs_litert_<resolver>``).
    """
    n = x.shape[0] if max_clips is None else min(max_clips, x.shape[0])
    n_micro = n if max_tflm_clips is None else min(max_tflm_clips, n)
    labels = _labels(y, n)
    lite = LiteRTRunner(model_bytes, litert_resolver)
    micro = TFLMRunner(model_bytes, arena_size) if n_micro else None
    others, other_errors = _other_resolvers(model_bytes, litert_resolver, n_micro)
    runs = _stream_clips(
        lite,
        micro,
        io,
        x[:n],
        initial_quantized_states(io, initial_states),
        n_micro,
        others,
        lsb_goal,
    )
    lite_logits = np.stack(runs["lite_logits"])
    float_dec = _decisions(float_frame_logits[:n])
    report = {
        "clips": int(n),
        "frames_per_clip": int(x.shape[1]),
        "float": {"accuracy": _accuracy(float_dec, labels)},
        "litert": _litert_report(
            lite_logits,
            float_frame_logits[:n],
            float_dec,
            labels,
            litert_resolver,
        ),
    }
    if n_micro:
        report["tflm"] = {
            **_tflm_agreement(
                np.stack(runs["micro_logits"]),
                float_dec,
                _decisions(lite_logits),
                labels,
            ),
            **_tflm_differences(io, runs, litert_resolver, other_errors),
            "lsb_goal": lsb_goal,
        }
    return report


def _litert_report(
    lite_logits: np.ndarray,
    float_frame_logits: np.ndarray,
    float_dec: np.ndarray,
    labels: np.ndarray | None,
    litert_resolver: str,
) -> dict:
    """The report's ``litert`` record: agreement and accuracy against float.

    Args:
        lite_logits: LiteRT's dequantized per-frame logits ``(N, T, C)``.
        float_frame_logits: the float per-frame logits of the same clips.
        float_dec: the float clip decisions ``(N,)``.
        labels: class indices ``(N,)``, or ``None``.
        litert_resolver: LiteRT's kernels (:class:`LiteRTRunner`).
    """
    lite_dec = _decisions(lite_logits)
    float_accuracy = _accuracy(float_dec, labels)
    lite_accuracy = _accuracy(lite_dec, labels)
    return {
        "resolver": litert_resolver,
        "clips": int(lite_logits.shape[0]),
        "agreement_with_float": float(np.mean(lite_dec == float_dec)),
        "accuracy": lite_accuracy,
        "accuracy_drop_points": _drop_points(float_accuracy, lite_accuracy),
        "max_abs_logit_error_vs_float": float(
            np.max(np.abs(lite_logits - float_frame_logits))
        ),
    }


def _tflm_agreement(
    micro_logits: np.ndarray,
    float_dec: np.ndarray,
    lite_dec: np.ndarray,
    labels: np.ndarray | None,
) -> dict:
    """The agreement and accuracy fields of the report's ``tflm`` record.

    Args:
        micro_logits: TFLite Micro's dequantized per-frame logits ``(M, T, C)`` of
            the first ``M`` clips.
        float_dec: the float clip decisions ``(N,)``, ``N >= M``.
        lite_dec: LiteRT's clip decisions ``(N,)``.
        labels: class indices ``(N,)``, or ``None``.
    """
    n_micro = micro_logits.shape[0]
    micro_dec = _decisions(micro_logits)
    micro_accuracy = _accuracy(micro_dec, labels)
    float_subset = _accuracy(float_dec[:n_micro], labels)
    return {
        "clips": int(n_micro),
        "agreement_with_float": float(np.mean(micro_dec == float_dec[:n_micro])),
        "agreement_with_litert": float(np.mean(micro_dec == lite_dec[:n_micro])),
        "accuracy": micro_accuracy,
        "float_accuracy_same_clips": float_subset,
        "accuracy_drop_points": _drop_points(float_subset, micro_accuracy),
    }


def _other_resolvers(
    model_bytes: bytes, litert_resolver: str, n_micro: int
) -> tuple[dict[str, LiteRTRunner], dict[str, str]]:
    """LiteRT runners of every other resolver (when TFLM runs), and those refused."""
    others, errors = {}, {}
    for name in LITERT_RESOLVERS if n_micro else ():
        if name == litert_resolver:
            continue
        try:
            others[name] = LiteRTRunner(model_bytes, name)
        except (RuntimeError, ValueError) as error:  # e.g. XNNPACK refuses a node
            errors[name] = f"{type(error).__name__}: {error}"
    return others, errors


def _stream_clips(
    lite: LiteRTRunner,
    micro: TFLMRunner | None,
    io: ModelIO,
    x: np.ndarray,
    initial_q,
    n_micro: int,
    others: dict[str, LiteRTRunner],
    lsb_goal: float,
) -> dict:
    """Streams every clip in LiteRT, and the first ``n_micro`` in TFLM and ``others``.

    Returns:
        ``lite_logits`` / ``micro_logits`` (dequantized, one array a clip), the
        largest TFLM-vs-LiteRT differences (``total``: per step and free running;
        ``other_totals``: per step against each other resolver) and, per TFLM clip,
        which frames lie within ``lsb_goal`` (``frames_within``).
    """
    zero = {"logits": 0.0, "states": 0.0}
    runs = {
        "lite_logits": [],
        "micro_logits": [],
        "total": {"per_step": dict(zero), "free_running": dict(zero)},
        "other_totals": {name: dict(zero) for name in others},
        "frames_within": [],
    }
    for i in range(x.shape[0]):
        if i < n_micro:
            diffs, raw, raw_micro, frame_diffs, other_diffs = _compare(
                lite, micro, io, x[i], initial_q, list(others.values())
            )
            _max_into(runs["total"], diffs)
            for name, other in zip(others, other_diffs, strict=True):
                totals = runs["other_totals"][name]
                for key, value in other.items():
                    totals[key] = max(totals[key], value)
            runs["frames_within"].append(frame_diffs <= lsb_goal)
            runs["micro_logits"].append(dequantize(raw_micro, io.logits))
        else:
            raw = stream(lite, io, x[i], initial_q)[0]
        runs["lite_logits"].append(dequantize(raw, io.logits))
    return runs


def _tflm_differences(
    io: ModelIO, runs: dict, litert_resolver: str, other_errors: dict[str, str]
) -> dict:
    """The report's TFLM-vs-LiteRT difference fields (see :func:`_stream_clips`)."""
    unit = "lsb" if io.logits.scale is not None else "float"
    other_names = [r for r in LITERT_RESOLVERS if r != litert_resolver]
    return {
        "max_diff_vs_litert": {
            "unit": unit,
            "resolver": litert_resolver,
            **runs["total"],
        },
        **{
            f"max_diff_vs_litert_{name}": (
                {"unit": unit, "per_step": runs["other_totals"][name]}
                if name in runs["other_totals"]
                else {"unit": unit, "error": other_errors[name]}
            )
            for name in other_names
        },
        "per_step_frames_within_goal": float(
            np.mean(np.concatenate(runs["frames_within"]))
        ),
    }
