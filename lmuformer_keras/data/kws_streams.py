"""Streaming-aware keyword training data: windows cut from long rendered streams.

A streaming keyword spotter decides on every frame from what it heard last, so it is
trained the way it is used (``synthetic_kws_streams``):

1. the utterances of a synthetic set (``_utterances_/``, every engine and voice, see
   :mod:`lmuformer_keras.data.synthetic_kws`) are laid end to end into streams of
   ``StreamConfig.seconds``: each keyword alone after a gap, at the end of a phrase
   (right after non-keyword speech), inside a phrase (speech before and after) or
   right after another keyword, with non-keyword words and sentences and pauses in
   between; each utterance at a peak level ~ U(``peak_dbfs``), over a continuous
   noise bed (white, pink, brown noise, hum, or babble made from the split's
   non-keyword speech; its type changes every 3-10 s) at an SNR ~ U(``snr_db``) below
   the speech;
2. the frontend runs over the whole stream (the frames the app computes);
3. windows of ``window`` frames are cut at random ends ``e``; the label of a window is
   the keyword whose **end** lies in its last ``tolerance_frames`` frames with (almost,
   ``truncation_frames``) all of the word inside; ``_unknown_`` for windows with speech
   but no such keyword (partial words, a keyword's tail, non-keyword speech);
   ``_silence_`` for windows without speech. Windows whose keyword is nearly complete
   (its end within ``lookahead_frames`` after ``e``) or complete but older than the
   tolerance are not used: firing there is neither right nor wrong.

``mode="clips"`` builds today's clip-mean examples from the same utterances for
comparison: one utterance per 1 s clip at a random offset (longer ones cropped at a
random place, keywords labelled only when whole), the same levels and noise beds, and
as many examples per keyword as the streams mode cuts (``keyword_windows`` renderings
of each keyword, ``unknown_windows`` negative and ``silence_windows`` noise-only clips
per keyword). ``StreamConfig.clip_context`` gives that many keyword clips non-keyword
speech right before the keyword (the tail of another utterance, as at the end of a
phrase), the keyword still whole and labelled.

Engines and speakers can be held out (``exclude_engines``): every voice of an excluded
engine, and every voice of another engine with the same *speaker*, is dropped from every
split (:func:`lmuformer_keras.data.kws_utterances.held_out_voices`), so a held-out
engine is never heard in training or model selection.

The parts: the utterances (:mod:`~lmuformer_keras.data.kws_utterances`), one stream
and its labels (:mod:`~lmuformer_keras.data.kws_stream_layout`, with
:class:`StreamConfig`), the clips (:mod:`~lmuformer_keras.data.kws_clips`), and the
mining of a model's false alarms (:mod:`~lmuformer_keras.data.kws_mining`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from lmuformer_keras.data.dataset import Dataset
from lmuformer_keras.data.kws_clips import clip_examples
from lmuformer_keras.data.kws_stream_layout import (
    SAMPLE_RATE,
    StreamConfig,
    build_stream,
    cut_windows,
    frame_labels,
)
from lmuformer_keras.data.kws_utterances import (
    SPLITS,
    Utterance,
    babble_audio,
    load_utterances,
    utterance_label,
)
from lmuformer_keras.data.speech_commands_layout import LABELS_12, UNKNOWN_LABEL
from lmuformer_keras.features import get_frontend
from lmuformer_keras.features.base import Frontend
from lmuformer_keras.features.progress import Progress

#: ``stream_dataset`` modes.
MODES: tuple[str, ...] = ("streams", "clips")

__all__ = ("MODES", "StreamConfig", "stream_dataset")


def stream_dataset(
    data_dir: str | os.PathLike,
    frontend: str | dict[str, Any] = "micro40",
    exclude_engines: Sequence[str] = (),
    seed: int = 0,
    mode: str = "streams",
    config: StreamConfig | None = None,
    progress: bool = True,
) -> Dataset:
    """The 12-class streaming-aware (or clip) training set of a synthetic set.

    Args:
        data_dir: a set written by :func:`generate_synthetic_kws`.
        frontend: frontend name or params (the model's).
        exclude_engines: engines held out (with their speakers), e.g. ``["piper"]``.
        seed: everything random derives from it.
        mode: ``"streams"`` (windows from streams) or ``"clips"`` (one utterance per
            1 s clip, the clip-mean baseline on the same utterances).
        config: layout and labelling; default :class:`StreamConfig`.
        progress: progress bars on stderr.

    Returns:
        A :class:`Dataset` with ``LABELS_12``; the test split is the set's test voices
        (espeak-ng), or its validation split when those are held out.

    Raises:
        ValueError: unknown mode, an engine not in the set, or no keyword left.
    """
    if mode not in MODES:
        raise ValueError(f"stream_dataset: mode must be one of {MODES}, got {mode!r}")
    config = config or StreamConfig()
    data_dir = os.fspath(data_dir)
    fe = get_frontend(frontend)
    labels = list(LABELS_12)
    if config.window != fe.num_frames_target:
        raise ValueError(
            f"StreamConfig.window={config.window} differs from the frontend's "
            f"{fe.num_frames_target} frames per clip"
        )
    by_split, summary = load_utterances(data_dir, exclude_engines)
    arrays: dict[str, np.ndarray] = {}
    counts: dict[str, Any] = {}
    for s_index, split in enumerate(SPLITS):
        rng = np.random.default_rng([int(seed), 97, s_index])
        x, y, counts[split] = _split_examples(
            by_split[split], labels, rng, mode, config, fe,
            progress and split == "train", split,
        )  # fmt: skip
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    if len(arrays["y_train"]) == 0:
        raise ValueError(
            f"stream_dataset: no keyword utterances left for training in {data_dir!r} "
            f"with exclude_engines={list(exclude_engines)}"
        )
    test_from = "test"
    if len(arrays["y_test"]) == 0:
        arrays["x_test"], arrays["y_test"] = arrays["x_val"], arrays["y_val"]
        test_from = "val"
    summary.update(
        mode=mode,
        seed=int(seed),
        config=asdict(config),
        counts=counts,
        test_split_from=test_from,
    )
    return Dataset(
        **arrays,
        labels=labels,
        frontend=fe.params,
        summary=summary,
        name=f"synthetic_kws_{mode}",
    )


def _split_examples(
    utts: Sequence[Utterance],
    labels: Sequence[str],
    rng: np.random.Generator,
    mode: str,
    config: StreamConfig,
    fe: Frontend,
    progress: bool,
    split: str,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One split's examples in ``mode`` and their counts: ``(x, y, counts)``."""
    unknown = labels.index(UNKNOWN_LABEL)
    is_keyword = [utterance_label(u, labels) != unknown for u in utts]
    kws = [u for u, k in zip(utts, is_keyword, strict=True) if k]
    negs = [u for u, k in zip(utts, is_keyword, strict=True) if not k]
    if not kws:
        x = np.zeros((0, config.window, fe.num_features), "f4")
        return x, np.zeros(0, np.int64), {"keywords": 0}
    babble_pool = babble_audio(negs)
    order = rng.permutation(len(kws))
    shuffled = [kws[i] for i in order]
    if mode == "clips":
        x, y = clip_examples(shuffled, negs, labels, rng, config, fe, babble_pool)
    else:
        x, y = _stream_windows(
            shuffled, negs, labels, rng, config, fe, babble_pool, progress, split
        )
    counts = {
        "keywords": len(kws),
        "negatives": len(negs),
        "examples": int(len(y)),
        "class_counts": np.bincount(y, minlength=len(labels)).tolist(),
    }
    return x, y, counts


def _stream_windows(
    kws: Sequence[Utterance],
    negs: Sequence[Utterance],
    labels: Sequence[str],
    rng: np.random.Generator,
    config: StreamConfig,
    fe: Frontend,
    babble_pool: Sequence[np.ndarray],
    progress: bool,
    split: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Streams holding every keyword once; windows cut from each."""
    p = fe.params
    mean_len = np.mean([u.audio.size for u in kws]) / SAMPLE_RATE
    per_stream = max(
        1,
        int(config.seconds / (mean_len + np.mean(config.gap_s)) / (
            1.0 + config.negatives_per_keyword + 0.6)),
    )  # fmt: skip
    groups = [kws[i : i + per_stream] for i in range(0, len(kws), per_stream)]
    bar = Progress(len(groups), f"streams[{split}]") if progress else None
    xs, ys = [], []
    for g_index, group in enumerate(groups):
        audio, events = build_stream(group, negs, labels, rng, config, babble_pool)
        feats = fe(audio, pad=False)
        lab = frame_labels(
            events, feats.shape[0], labels, p["frame_length"], p["frame_step"], config
        )
        x, y = cut_windows(feats, lab, rng, len(group), labels, config)
        xs.append(x)
        ys.append(y)
        if bar is not None:
            bar.update(g_index + 1)
    return np.concatenate(xs), np.concatenate(ys)
