"""Accuracy versus frames seen, measured causally with the streaming model.

Decision rule: after ``t`` frames (``t = 1 .. T``) a clip's decision is the argmax of
the mean of its frame logits over frames ``0 .. t-1`` (the causal prefix mean; at
``t = T`` it is the model's clip decision). Frame logits of a causal LMUFormer at
frame ``t`` depend on frames ``0 .. t`` only, so this is what a streaming device that
stops after ``t`` frames would decide.

The frame logits come from :class:`lmuformer_keras.streaming.StreamingModel` (one
frame at a time, explicit states) for the first ``streamed_clips`` test clips, checked
against the parallel model's frame logits on those clips (prefix means within
``tolerance``); the rest use the parallel model's frame logits (the same numbers,
much faster).

The paper's point of comparison (``REFERENCE.md``): 95.17 % after 87 of 128 frames
(SCv2, 35 classes), measured with a non-causal patch embedding on zero-padded clips.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

PAPER_FRACTION = 87 / 128
DECISION_RULE = (
    "decision after t frames = argmax of the mean of the frame logits over "
    "frames 0..t-1 (causal prefix mean); the model is causal, so no future "
    "frame is used"
)
PAPER_REFERENCE = (
    "LMUFormer paper: 95.17% after 87 of 128 frames (SCv2, 35 classes, "
    "non-causal patch embedding, zero-padded clips), -0.95 points from the "
    "full-sequence accuracy"
)


class StreamingMismatchError(AssertionError):
    """Streaming and parallel frame logits disagree beyond the tolerance."""


def prefix_mean(frame_logits: np.ndarray) -> np.ndarray:
    """``(N, T, C)`` -> causal prefix means ``(N, T, C)`` (float64)."""
    csum = np.cumsum(np.asarray(frame_logits, dtype=np.float64), axis=1)
    return csum / np.arange(1, csum.shape[1] + 1)[None, :, None]


def accuracy_vs_frames(frame_logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Accuracy after ``t = 1 .. T`` frames, shape ``(T,)``."""
    pred = prefix_mean(frame_logits).argmax(axis=-1)
    return (pred == np.asarray(y)[:, None]).mean(axis=0)


def frames_within(accuracy: np.ndarray, points: float = 1.0) -> int:
    """Fewest frames ``t`` after which accuracy stays within ``points`` of full.

    Full accuracy is ``accuracy[-1]`` (all ``T`` frames); the result is the smallest
    ``t`` with ``accuracy[t'-1] >= accuracy[-1] - points / 100`` for every ``t' >= t``.
    """
    ok = accuracy >= accuracy[-1] - points / 100.0 - 1e-12
    t = len(accuracy)
    while t > 1 and ok[t - 2]:
        t -= 1
    return t


SPIKE_FLIP_CLIP_FRACTION = 0.01


def _verified(model, over: int, streamed: int, decisions_agree: float) -> bool:
    if over == 0:
        return True
    if not getattr(model, "spiking", False):
        return False
    allowed = SPIKE_FLIP_CLIP_FRACTION * streamed
    return over <= allowed and decisions_agree >= 1.0 - SPIKE_FLIP_CLIP_FRACTION


def check_verified(result: dict[str, Any]) -> None:
    """Raises :class:`StreamingMismatchError` unless ``result["verified"]``."""
    if not result["verified"]:
        raise StreamingMismatchError(
            f"streaming evaluation: StreamingModel prefix-mean logits differ from the "
            f"parallel model's by {result['max_abs_diff_streaming_vs_parallel']:.3g} > "
            f"tolerance {result['tolerance']:g} on "
            f"{result['clips_over_tolerance']} of {result['streamed_clips']} "
            "clips "
            f"(decisions agree on {result['streamed_decisions_agree']:.2%}); every "
            "output file was written"
        )


def _stream_and_compare(
    model,
    x: np.ndarray,
    parallel_frame_logits: np.ndarray,
    tolerance: float,
    batch_size: int,
) -> tuple[np.ndarray, float, int, float]:
    """Streams ``x`` with ``StreamingModel`` and compares its prefix means.

    Returns:
        ``(streamed frame logits, max |streamed - parallel| of the prefix means,
        clips over tolerance, fraction of prefix decisions that agree)``.
    """
    from lmuformer_keras.streaming import StreamingModel

    stream = StreamingModel(model)
    n = x.shape[0]
    streamed = np.concatenate(
        [stream.run(x[i : min(i + batch_size, n)]) for i in range(0, n, batch_size)]
    )
    ref = prefix_mean(parallel_frame_logits)
    got = prefix_mean(streamed)
    per_clip = np.abs(got - ref).reshape(n, -1).max(axis=1)
    return (
        streamed,
        float(per_clip.max()),
        int((per_clip > tolerance).sum()),
        float((got.argmax(-1) == ref.argmax(-1)).mean()),
    )


def _accuracy_figures(accuracy: np.ndarray, num_frames: int) -> dict[str, Any]:
    """The report's accuracy curve and its points (within 1 point, paper fraction).

    Args:
        accuracy: accuracy after ``t = 1 .. num_frames`` frames.
        num_frames: frames per clip.
    """
    t_within = frames_within(accuracy, 1.0)
    t_paper = max(1, int(round(PAPER_FRACTION * num_frames)))
    return {
        "frames": list(range(1, num_frames + 1)),
        "accuracy": [float(a) for a in accuracy],
        "full_accuracy": float(accuracy[-1]),
        "frames_within_1_point": int(t_within),
        "fraction_within_1_point": float(t_within / num_frames),
        "accuracy_at_frames_within_1_point": float(accuracy[t_within - 1]),
        "paper_fraction": PAPER_FRACTION,
        "frames_at_paper_fraction": t_paper,
        "accuracy_at_paper_fraction": float(accuracy[t_paper - 1]),
    }


def streaming_evaluation(
    model,
    x: np.ndarray,
    y: np.ndarray,
    parallel_frame_logits: np.ndarray,
    streamed_clips: int = 256,
    tolerance: float = 1e-4,
    batch_size: int = 256,
    frame_hop_ms: float | None = None,
) -> dict[str, Any]:
    """Accuracy vs frames; streams ``streamed_clips`` clips with ``StreamingModel``.

    Args:
        model: a causal ``LMUFormer``.
        x, y: test clips ``(N, T, F)`` and class ids ``(N,)``.
        parallel_frame_logits: ``model.frame_logits(x)`` ``(N, T, C)``.
        streamed_clips: clips streamed frame by frame (``<= 0``: none; more than
            ``N``: all).
        tolerance: maximum allowed ``|streamed - parallel|`` of the prefix means.
        batch_size: clips streamed together.
        frame_hop_ms: for the report (e.g. 20 ms for ``micro40``).

    Returns:
        The report (``streaming_accuracy.json``); ``verified`` is false when the
        streamed prefix means differ by more than ``tolerance`` from the parallel
        ones (then :func:`check_verified` raises, after the caller wrote its files).
        Spiking models: the streamed LMU memory (a recurrence) and the parallel one
        (a Toeplitz product) are equal in real arithmetic but round differently
        (~1e-6), and a membrane potential that lands within that of its threshold
        fires in one form and not in the other, after which the clip's frames
        differ. So for a spiking model ``verified`` allows such clips, counted in
        ``clips_over_tolerance``, up to ``SPIKE_FLIP_CLIP_FRACTION`` of the streamed
        clips, with decisions still agreeing on all but that fraction.
    """
    x = np.asarray(x, dtype=np.float32)
    n, num_frames = x.shape[:2]
    n_stream = int(min(max(streamed_clips, 0), n))
    frame_logits = np.array(parallel_frame_logits, dtype=np.float32, copy=True)
    start = time.time()
    max_diff, over, decisions_agree = 0.0, 0, 1.0
    if n_stream:
        streamed, max_diff, over, decisions_agree = _stream_and_compare(
            model,
            x[:n_stream],
            parallel_frame_logits[:n_stream],
            tolerance,
            batch_size,
        )
        frame_logits[:n_stream] = streamed
    stream_seconds = time.time() - start
    return {
        "decision_rule": DECISION_RULE,
        "method": (
            f"frame logits of the first {n_stream} test clips from StreamingModel "
            "(frame by frame, explicit states), verified against the parallel "
            f"model's prefix means (max |diff| {max_diff:.3g}, tolerance "
            f"{tolerance:g}); the "
            f"other {n - n_stream} clips use the parallel model's frame logits "
            "(same numbers, computed in one pass)"
        ),
        "clips": int(n),
        "streamed_clips": n_stream,
        "parallel_clips": int(n - n_stream),
        "max_abs_diff_streaming_vs_parallel": max_diff,
        "tolerance": tolerance,
        "clips_over_tolerance": over,
        "spiking": bool(getattr(model, "spiking", False)),
        "verified": _verified(model, over, n_stream, decisions_agree),
        "streamed_decisions_agree": decisions_agree,
        "streaming_seconds": round(stream_seconds, 2),
        "num_frames": int(num_frames),
        "frame_hop_ms": frame_hop_ms,
        **_accuracy_figures(accuracy_vs_frames(frame_logits, y), num_frames),
        "paper_reference": PAPER_REFERENCE,
    }
