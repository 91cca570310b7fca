"""Hard-negative mining: a model's false alarms on keyword-free training streams.

:func:`mine_hard_negatives` streams the training split's non-keyword utterances
(laid out as in :mod:`lmuformer_keras.data.kws_streams`) through a trained model and
keeps the windows it still takes for a keyword, to be fed back into its training set
(``lmuformer-train --hard_negatives_from``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lmuformer_keras.data.kws_stream_layout import (
    StreamConfig,
    build_stream,
    frame_labels,
)
from lmuformer_keras.data.kws_utterances import (
    Utterance,
    babble_audio,
    load_utterances,
    utterance_label,
)
from lmuformer_keras.data.speech_commands_layout import COMMAND_WORDS, LABELS_12
from lmuformer_keras.features import get_frontend
from lmuformer_keras.features.progress import Progress


def mine_hard_negatives(
    predict: Callable[[np.ndarray], np.ndarray],
    data_dir: str | os.PathLike,
    frontend: str | dict[str, Any] = "micro40",
    exclude_engines: Sequence[str] = (),
    seed: int = 0,
    minutes: float = 20.0,
    threshold: float = 0.3,
    stride: int = 2,
    max_windows: int | None = None,
    config: StreamConfig | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Windows of keyword-free training streams that a model still takes for a keyword.

    Streams of the *training* split's non-keyword utterances only (words, sentences,
    pauses, noise beds; drawn with their own seed, so not the training streams) are
    cut into windows every ``stride`` frames; ``p_kw(window)`` is the model's highest
    keyword probability. Each run of windows with ``p_kw >= threshold`` gives its
    highest-scoring window, labelled as :func:`frame_labels` labels it (``_unknown_``
    or ``_silence_``): the false alarms of a model, fed back into its training set.

    Args:
        predict: ``(N, window, features) float32 -> (N, classes)`` probabilities in
            ``LABELS_12`` order (e.g. ``softmax`` of a trained model's logits).
        data_dir, frontend, exclude_engines, config: as ``kws_streams.stream_dataset``.
        seed: stream seed (offset from the training streams').
        minutes: length of non-keyword speech streamed.
        threshold: keyword probability from which a window is a hard negative.
        stride: frames between scored windows (>= 1).
        max_windows: at most this many windows (the highest-scoring).
        progress: progress bar on stderr.

    Returns:
        ``(x, y, summary)``: the windows, their labels, and counts.

    Raises:
        ValueError: bad ``minutes`` / ``threshold`` / ``stride``, or no non-keyword
            training utterance.
    """
    _check_mining_arguments(minutes, threshold, stride)
    config = config or StreamConfig()
    fe = get_frontend(frontend)
    p = fe.params
    labels = list(LABELS_12)
    keyword_ids = [i for i, name in enumerate(labels) if name in COMMAND_WORDS]
    negs = _training_negatives(data_dir, exclude_engines, labels, keyword_ids)
    babble_pool = babble_audio(negs)
    rng = np.random.default_rng([int(seed), 131])
    count = max(1, int(np.ceil(minutes * 60.0 / config.seconds)))
    bar = Progress(count, "hard negatives") if progress else None
    hits: list[tuple[np.ndarray, int, float]] = []
    scored = 0
    for i in range(count):
        audio, events = build_stream(
            [], negs, labels, rng, config, babble_pool, min_seconds=config.seconds
        )
        feats = fe(audio, pad=False).astype(np.float32)
        lab = frame_labels(
            events, feats.shape[0], labels, p["frame_length"], p["frame_step"], config
        )
        stream_hits, stream_scored = _false_alarm_runs(
            predict, feats, lab, keyword_ids, threshold, stride, config
        )
        hits += stream_hits
        scored += stream_scored
        if bar is not None:
            bar.update(i + 1)
    x, y = _strongest_windows(hits, max_windows, config.window, fe.num_features)
    summary = {
        "minutes": float(count * config.seconds / 60.0),
        "threshold": float(threshold),
        "stride": int(stride),
        "windows_scored": int(scored),
        "hard_negatives": int(len(y)),
        "false_alarm_runs": int(len(hits)),
        "class_counts": np.bincount(y, minlength=len(labels)).tolist(),
    }
    return x, y, summary


def _check_mining_arguments(minutes: float, threshold: float, stride: int) -> None:
    """Checks the arguments of :func:`mine_hard_negatives`.

    Raises:
        ValueError: naming the first bad argument.
    """
    if not minutes > 0:
        raise ValueError(f"mine_hard_negatives: minutes must be > 0, got {minutes}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(
            f"mine_hard_negatives: threshold must be in (0, 1), got {threshold}"
        )
    if int(stride) < 1:
        raise ValueError(f"mine_hard_negatives: stride must be >= 1, got {stride}")


def _training_negatives(
    data_dir: str | os.PathLike,
    exclude_engines: Sequence[str],
    labels: Sequence[str],
    keyword_ids: Sequence[int],
) -> list[Utterance]:
    """The training split's non-keyword utterances of the kept voices.

    Raises:
        ValueError: there are none.
    """
    by_split, _ = load_utterances(os.fspath(data_dir), exclude_engines)
    negs = [
        u for u in by_split["train"] if utterance_label(u, labels) not in keyword_ids
    ]
    if not negs:
        raise ValueError(
            f"mine_hard_negatives: no non-keyword training utterances in {data_dir!r}"
        )
    return negs


def _false_alarm_runs(
    predict: Callable[[np.ndarray], np.ndarray],
    feats: np.ndarray,
    lab: np.ndarray,
    keyword_ids: Sequence[int],
    threshold: float,
    stride: int,
    config: StreamConfig,
) -> tuple[list[tuple[np.ndarray, int, float]], int]:
    """The highest-scoring window of each run of false alarms in one stream.

    Returns:
        ``(hits, scored)``: ``(window, label, p_kw)`` per run, and the number of
        windows scored.
    """
    w, tol = config.window, config.tolerance_frames
    ends = np.arange(w - 1, feats.shape[0], int(stride))
    windows = np.lib.stride_tricks.sliding_window_view(feats, w, axis=0)
    x = np.ascontiguousarray(windows[ends - w + 1].transpose(0, 2, 1))
    prob = np.asarray(predict(x))[:, keyword_ids].max(axis=1)
    hot = np.flatnonzero(prob >= threshold)
    hits = []
    # one window per run of hot windows (runs split by a gap > tolerance)
    for run in np.split(hot, np.flatnonzero(np.diff(ends[hot]) > tol) + 1):
        if run.size:
            best = run[np.argmax(prob[run])]
            hits.append((x[best], int(lab[ends[best]]), float(prob[best])))
    return hits, len(ends)


def _strongest_windows(
    hits: Sequence[tuple[np.ndarray, int, float]],
    max_windows: int | None,
    window: int,
    num_features: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of the ``max_windows`` highest-scoring hits, highest first."""
    scores = [score for _, _, score in hits]
    order = np.argsort(scores)[::-1][: max_windows if max_windows else None]
    x = (
        np.stack([hits[j][0] for j in order])
        if len(order)
        else np.zeros((0, window, num_features), np.float32)
    )
    y = np.asarray([hits[j][1] for j in order], np.int64)
    return x, y
