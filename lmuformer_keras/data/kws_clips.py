"""Clip-mode keyword examples: one utterance per 1 s clip (the clip-mean baseline).

``stream_dataset(mode="clips")`` (:mod:`lmuformer_keras.data.kws_streams`) builds
these from the same utterances, levels and noise beds as the streams, with as many
examples per keyword as the streams mode cuts windows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lmuformer_keras.data.kws_stream_layout import (
    SAMPLE_RATE,
    StreamConfig,
    noise_bed,
    scale_to_random_peak,
)
from lmuformer_keras.data.kws_utterances import Utterance, utterance_label
from lmuformer_keras.data.speech_commands_layout import SILENCE_LABEL, UNKNOWN_LABEL
from lmuformer_keras.features.base import Frontend


def clip_examples(
    keywords: Sequence[Utterance],
    negatives: Sequence[Utterance],
    labels: Sequence[str],
    rng: np.random.Generator,
    config: StreamConfig,
    frontend: Frontend,
    babble_pool: Sequence[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """1 s clips, one utterance each (keywords, negatives, noise only)."""
    n = frontend.num_frames_target * frontend.params["frame_step"] + (
        frontend.params["frame_length"] - frontend.params["frame_step"]
    )
    n = max(n, SAMPLE_RATE)
    # as many examples per keyword utterance as the streams mode cuts windows:
    # each keyword rendered keyword_windows times (own offset, level and noise)
    items: list[Utterance | None] = list(keywords) * config.keyword_windows
    count = int(round(config.unknown_windows * len(keywords)))
    items += [negatives[i] for i in rng.integers(len(negatives), size=count)]
    items += [None] * int(round(config.silence_windows * len(keywords)))
    waves, ys = [], []
    unknown = labels.index(UNKNOWN_LABEL)
    for utt in items:
        bed = noise_bed(n, rng, babble_pool)
        if utt is None:
            level = 10 ** (rng.uniform(-80.0, -25.0) / 20.0)
            waves.append(np.clip(bed * level, -1, 1))
            ys.append(labels.index(SILENCE_LABEL))
            continue
        x, r = scale_to_random_peak(utt.audio, rng, config)
        label = utterance_label(utt, labels)
        if (
            label != unknown
            and config.clip_context
            and x.size < n
            and rng.random() < config.clip_context  # drawn only when enabled
        ):
            x = after_context(x, negatives, n, rng, config)
        if x.size > n:
            start = int(rng.integers(0, x.size - n + 1))
            x = x[start : start + n]
            if label != unknown:
                label = unknown  # a cropped keyword is not the keyword
        offset = int(rng.integers(0, n - x.size + 1))
        clip = bed * r / 10.0 ** (rng.uniform(*config.snr_db) / 20.0)
        clip[offset : offset + x.size] += x
        waves.append(np.clip(clip, -1, 1))
        ys.append(label)
    x = frontend.batch(waves) if waves else None
    return x, np.asarray(ys, np.int64)


def after_context(
    keyword: np.ndarray,
    negatives: Sequence[Utterance],
    n: int,
    rng: np.random.Generator,
    config: StreamConfig,
) -> np.ndarray:
    """``[tail of a negative utterance, pause, keyword]``, at most ``n`` samples.

    The tail is 0.1-0.6 s (at most what fits before the keyword) of a random
    negative utterance at its own random level; the pause 0-150 ms.
    """
    context, _ = scale_to_random_peak(
        negatives[int(rng.integers(len(negatives)))].audio, rng, config
    )
    gap = int(rng.uniform(0.0, 0.15) * SAMPLE_RATE)
    room = n - keyword.size - gap
    tail = min(int(rng.uniform(0.1, 0.6) * SAMPLE_RATE), context.size, max(room, 0))
    if tail <= 0:
        return keyword
    return np.concatenate([context[-tail:], np.zeros(gap, keyword.dtype), keyword])
