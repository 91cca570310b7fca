"""Clips, float streaming and the representative dataset.

The representative dataset is made of real ``[frame_t, *states_t]`` tuples: the float
step model streams every calibration clip from its initial states, and the tuples it
sees are sampled. The states after the last frame of each clip are sampled too (as
inputs), so the calibrated range of every state INPUT covers every state the float
model produced; the state outputs are later requantized to that input range
(see :mod:`lmuformer_export.state_tying`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .contract import StreamingLike, num_features
from .errors import CalibrationDataError


def check_clips(x, features: int, what: str = "calibration clips") -> np.ndarray:
    """Validate clips ``x`` of shape ``(N, T, F)`` and return them as float32.

    Raises:
        CalibrationDataError: naming the expected shape ``(N, T, F)`` with the
            model's ``F`` when ``x`` is empty or mis-shaped.
    """
    if x is None:
        raise CalibrationDataError(
            f"{what}: no array given; expected shape (N, T, {features})"
        )
    array = np.asarray(x)
    expected = f"expected shape (N, T, F) = (N, T, {features}) with F={features}"
    if array.ndim != 3:
        raise CalibrationDataError(
            f"{what}: {expected} (F = the model's number of features), "
            f"got shape {tuple(array.shape)}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise CalibrationDataError(
            f"{what}: empty (shape {tuple(array.shape)}); {expected} with N >= 1, "
            "T >= 1"
        )
    if array.shape[2] != features:
        raise CalibrationDataError(
            f"{what}: {expected} (the model's number of features), "
            f"got shape {tuple(array.shape)}"
        )
    if not np.issubdtype(array.dtype, np.number):
        raise CalibrationDataError(f"{what}: dtype {array.dtype} is not numeric")
    array = array.astype(np.float32, copy=False)
    if not np.all(np.isfinite(array)):
        raise CalibrationDataError(f"{what}: holds NaN or infinite values")
    return array


def _to_numpy(values) -> list[np.ndarray]:
    import keras

    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in values]


def float_step(streaming_model: StreamingLike, frame: np.ndarray, states):
    """One float step of ``streaming_model.step_model``: ``(logits, new_states)``."""
    outputs = streaming_model.step_model([frame, *states], training=False)
    outputs = _to_numpy(outputs)
    return outputs[0], outputs[1:]


def _initial_states(streaming_model: StreamingLike, batch: int) -> list[np.ndarray]:
    states = [
        np.asarray(s, dtype=np.float32) for s in streaming_model.initial_states(batch)
    ]
    return states


def stream_float(
    streaming_model: StreamingLike, x: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """Float per-frame logits ``(N, T, C)`` of clips ``x`` streamed frame by frame."""
    x = np.asarray(x, dtype=np.float32)
    results = []
    for start in range(0, x.shape[0], batch_size):
        clips = x[start : start + batch_size]
        states = _initial_states(streaming_model, clips.shape[0])
        per_frame = []
        for t in range(clips.shape[1]):
            logits, states = float_step(streaming_model, clips[:, t], states)
            per_frame.append(logits)
        results.append(np.stack(per_frame, axis=1))
    return np.concatenate(results, axis=0)


def representative_samples(
    streaming_model: StreamingLike,
    x: np.ndarray,
    max_samples: int = 1000,
    seed: int = 0,
    batch_size: int = 256,
) -> list[list[np.ndarray]]:
    """Real ``[frame (1, F), *states (1, ...)]`` tuples for calibration.

    Streams every clip of ``x`` through the float step model. Keeps a uniform random
    subset of the ``(clip, t)`` positions (at most ``max_samples``), plus, for each
    input (frame and every state), the tuples holding its smallest and largest value,
    and the states after the last frame (paired with the last frame), so the min/max
    calibration of every input sees the full range.
    """
    x = np.asarray(x, dtype=np.float32)
    n, t_len = x.shape[:2]
    rng = np.random.default_rng(seed)
    positions = n * (t_len + 1)
    chosen = np.zeros(positions, dtype=bool)
    chosen[rng.choice(positions, size=min(max_samples, positions), replace=False)] = (
        True
    )
    chosen = chosen.reshape(n, t_len + 1)

    samples: list[list[np.ndarray]] = []
    extremes: dict[tuple[int, str], tuple[float, list[np.ndarray]]] = {}

    def _consider(frames, states, clip0, t_index):
        arrays = [frames, *states]
        for i, a in enumerate(arrays):
            flat = a.reshape(a.shape[0], -1)
            low, high = flat.min(axis=1), flat.max(axis=1)
            for kind, row, value in (
                ("min", int(np.argmin(low)), float(low.min())),
                ("max", int(np.argmax(high)), float(high.max())),
            ):
                best = extremes.get((i, kind))
                if best is None or (
                    value < best[0] if kind == "min" else value > best[0]
                ):
                    extremes[(i, kind)] = (value, [b[row : row + 1] for b in arrays])
        for row in np.flatnonzero(chosen[clip0 : clip0 + frames.shape[0], t_index]):
            samples.append([b[row : row + 1] for b in arrays])

    for start in range(0, n, batch_size):
        clips = x[start : start + batch_size]
        states = _initial_states(streaming_model, clips.shape[0])
        for t in range(t_len):
            frames = clips[:, t]
            _consider(frames, states, start, t)
            _, states = float_step(streaming_model, frames, states)
        # Final states as inputs (with the last frame): their range must be covered.
        _consider(clips[:, -1], states, start, t_len)

    samples.extend(item[1] for item in extremes.values())
    return [[np.ascontiguousarray(a, dtype=np.float32) for a in s] for s in samples]


def stack_samples(samples: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """Stack tuples ``[(1, ...), ...]`` into one array ``(S, ...)`` per input."""
    return [np.concatenate(parts, axis=0) for parts in zip(*samples, strict=True)]


def unstack_samples(arrays: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
    """Inverse of :func:`stack_samples`."""
    count = arrays[0].shape[0]
    return [[a[i : i + 1] for a in arrays] for i in range(count)]


__all__ = [
    "check_clips",
    "float_step",
    "num_features",
    "representative_samples",
    "stream_float",
]
