"""One stream: utterances laid end to end over a noise bed, its frames labelled.

The layout and the labelling are described in :mod:`lmuformer_keras.data.kws_streams`
(steps 1 and 3); :class:`StreamConfig` holds their parameters. :func:`build_stream`
renders a stream, :func:`frame_labels` labels the window ending at each frame and
:func:`cut_windows` draws the windows used. :func:`noise_bed` and
:func:`scale_to_random_peak` are shared with the clip builder
(:mod:`lmuformer_keras.data.kws_clips`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmuformer_keras.data import channel
from lmuformer_keras.data.kws_utterances import Utterance, utterance_label
from lmuformer_keras.data.speech_commands_layout import SILENCE_LABEL, UNKNOWN_LABEL

SAMPLE_RATE = 16000
#: Label value of a frame whose window is not used.
SKIP = -1
BED_KINDS: tuple[str, ...] = (*channel.NOISE_TYPES, "babble", "babble")


@dataclass(frozen=True)
class StreamConfig:
    """How streams are laid out and windows cut (see the module docstring).

    Attributes:
        seconds: length of each stream.
        gap_s: pause range between utterances.
        contexts: probabilities of a keyword's context: ``alone`` (after a pause),
            ``phrase_end`` (right after non-keyword speech), ``inside`` (non-keyword
            speech right before and after) and ``after_keyword``.
        negatives_per_keyword: non-keyword utterances placed per keyword (on
            average, besides the phrase contexts).
        peak_dbfs: range of each utterance's peak level.
        snr_db: range of the speech's RMS over the noise bed's.
        silence_probability: chance that a pause is digital silence (no bed).
        window: frames per window (the model's input length).
        tolerance_frames, truncation_frames, lookahead_frames: labelling (module
            docstring).
        keyword_windows: windows cut per keyword in the stream (ends drawn in its
            labelled range); in ``clips`` mode, clips rendered per keyword.
        unknown_windows, silence_windows: windows cut per keyword among the frames
            labelled ``_unknown_`` / ``_silence_`` (``clips`` mode: negative and
            noise-only clips per keyword).
        clip_context: ``clips`` mode: the fraction of keyword clips in which the
            keyword follows non-keyword speech: the last 0.1-0.6 s of a negative
            utterance (its own level), then a pause of 0-150 ms, then the keyword,
            whole, labelled as itself; 0 keeps every clip one utterance.
    """

    seconds: float = 30.0
    gap_s: tuple[float, float] = (0.05, 1.2)
    contexts: tuple[tuple[str, float], ...] = (
        ("alone", 0.4),
        ("phrase_end", 0.25),
        ("inside", 0.25),
        ("after_keyword", 0.1),
    )
    negatives_per_keyword: float = 1.0
    peak_dbfs: tuple[float, float] = (-40.0, -3.0)
    snr_db: tuple[float, float] = (0.0, 30.0)
    silence_probability: float = 0.1
    window: int = 49
    tolerance_frames: int = 20
    truncation_frames: int = 3
    lookahead_frames: int = 6
    keyword_windows: int = 3
    unknown_windows: float = 3.0
    silence_windows: float = 0.6
    clip_context: float = 0.0

    def __post_init__(self) -> None:
        names = [c for c, _ in self.contexts]
        if sorted(names) != sorted(("alone", "phrase_end", "inside", "after_keyword")):
            raise ValueError(f"StreamConfig.contexts: unknown contexts {names}")
        if not np.isclose(sum(p for _, p in self.contexts), 1.0):
            raise ValueError("StreamConfig.contexts: probabilities must sum to 1")
        for name in ("seconds", "window", "keyword_windows"):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"StreamConfig.{name} must be > 0, got {getattr(self, name)}"
                )
        if not 0.0 <= self.clip_context <= 1.0:
            raise ValueError(
                "StreamConfig.clip_context must be in [0, 1], got "
                f"{self.clip_context!r}"
            )
        if not 0 < self.tolerance_frames < self.window:
            raise ValueError(
                "StreamConfig.tolerance_frames must be in (0, window), got "
                f"{self.tolerance_frames}"
            )


def noise_bed(
    n: int, rng: np.random.Generator, babble_pool: Sequence[np.ndarray]
) -> np.ndarray:
    """Continuous noise of RMS 1 whose type changes every 3-10 s (no cross-fade)."""
    out = np.zeros(n)
    start = 0
    while start < n:
        length = min(int(rng.uniform(3.0, 10.0) * SAMPLE_RATE), n - start)
        kind = BED_KINDS[int(rng.integers(len(BED_KINDS)))]
        if kind == "babble" and babble_pool:
            picks = [babble_pool[i] for i in rng.integers(len(babble_pool), size=12)]
            seg = channel.babble(picks, int(rng.integers(2, 6)), length, rng)
        else:
            kind = kind if kind != "babble" else "pink"
            seg = channel.make_noise(kind, length / SAMPLE_RATE + 0.01, rng)[:length]
        out[start : start + length] = seg / max(np.sqrt(np.mean(seg**2)), 1e-12)
        start += length
    return out


def scale_to_random_peak(
    x: np.ndarray, rng: np.random.Generator, config: StreamConfig
) -> tuple[np.ndarray, float]:
    """``x`` at a random peak level ~ U(``config.peak_dbfs``); its RMS for the SNR."""
    y = x * 10.0 ** (rng.uniform(*config.peak_dbfs) / 20.0) / max(np.abs(x).max(), 1e-9)
    return y, float(np.sqrt(np.mean(y**2)))


def build_stream(
    keywords: Sequence[Utterance],
    negatives: Sequence[Utterance],
    labels: Sequence[str],
    rng: np.random.Generator,
    config: StreamConfig,
    babble_pool: Sequence[np.ndarray] = (),
    min_seconds: float = 0.0,
) -> tuple[np.ndarray, list[tuple[int, int, int, bool]]]:
    """One stream holding every utterance of ``keywords`` (plus negatives).

    ``min_seconds``: non-keyword utterances are added (after pauses) until the stream
    is at least this long; with no ``keywords``, a stream of negatives only.

    Returns:
        ``(samples, events)``: float64 audio at 16 kHz and ``(label, start, end,
        is_keyword)`` per placed utterance, in samples.
    """
    contexts = [c for c, _ in config.contexts]
    probs = np.array([p for _, p in config.contexts])
    pieces: list[tuple[int, np.ndarray, int, bool]] = []  # (start, x, label, kw)
    rms: list[float] = []
    t = int(rng.uniform(*config.gap_s) * SAMPLE_RATE)
    unknown = labels.index(UNKNOWN_LABEL)

    def place(utt: Utterance, gap: float) -> None:
        nonlocal t
        x, r = scale_to_random_peak(utt.audio, rng, config)
        label = utterance_label(utt, labels)
        pieces.append((t, x, label, label != unknown))
        rms.append(r)
        t += x.size + int(gap * SAMPLE_RATE)

    def negative() -> Utterance:
        return negatives[int(rng.integers(len(negatives)))]

    def short_gap() -> float:
        return rng.uniform(0.02, 0.2)

    def pause() -> float:
        return rng.uniform(*config.gap_s)

    for kw in keywords:
        n_neg = rng.poisson(config.negatives_per_keyword) if negatives else 0
        for _ in range(n_neg):
            place(negative(), pause())
        context = contexts[int(rng.choice(len(contexts), p=probs))]
        if context in ("phrase_end", "inside") and negatives:
            place(negative(), short_gap())
        elif context == "after_keyword":
            place(keywords[int(rng.integers(len(keywords)))], short_gap())
        place(kw, short_gap() if context == "inside" else pause())
        if context == "inside" and negatives:
            place(negative(), pause())
    while negatives and t < min_seconds * SAMPLE_RATE:
        place(negative(), short_gap() if rng.uniform() < 0.3 else pause())
    n = t + int(config.gap_s[1] * SAMPLE_RATE)
    bed = noise_bed(n, rng, babble_pool)
    mean_rms = float(np.mean(rms)) if rms else 10 ** (-40 / 20)
    bed *= mean_rms / 10.0 ** (rng.uniform(*config.snr_db) / 20.0)
    out = bed
    speech_mask = np.zeros(n, bool)
    for start, x, _, _ in pieces:
        out[start : start + x.size] += x
        speech_mask[start : start + x.size] = True
    # digital-silence pauses: no bed outside speech in some streams' gaps
    if rng.uniform() < config.silence_probability:
        out[~speech_mask] = 0.0
    events = [(lab, s, s + x.size, kw) for s, x, lab, kw in pieces]
    return np.clip(out, -1.0, 1.0), events


def frame_labels(
    events: Sequence[tuple[int, int, int, bool]],
    num_frames: int,
    labels: Sequence[str],
    frame_length: int,
    frame_step: int,
    config: StreamConfig,
) -> np.ndarray:
    """Label of the window ending at each frame (:data:`SKIP` where unused)."""
    w = config.window
    silence, unknown = labels.index(SILENCE_LABEL), labels.index(UNKNOWN_LABEL)
    out = np.full(num_frames, silence, np.int64)
    ends = np.arange(num_frames)
    speech_count = np.zeros(num_frames + 1, np.int64)
    for _, a, b, _ in events:
        fa = max(0, -(-(a - frame_length + 1) // frame_step))  # first frame seeing a
        fb = max(0, -(-(b - frame_length) // frame_step))  # first frame seeing b - 1
        speech_count[fa] += 1
        speech_count[min(fb + 1, num_frames)] -= 1
    has_speech = np.cumsum(speech_count)[:num_frames] > 0
    # a window has speech when any of its frames has
    window_speech = np.convolve(has_speech.astype(np.int64), np.ones(w, np.int64))
    out[window_speech[:num_frames] > 1] = unknown
    for label, a, b, is_kw in events:
        if not is_kw:
            continue
        fa = max(0, -(-(a - frame_length + 1) // frame_step))
        fb = max(0, -(-(b - frame_length) // frame_step))
        inside = fa >= ends - w + 1 - config.truncation_frames
        recent = (fb <= ends) & (fb >= ends - config.tolerance_frames)
        old = (fb < ends - config.tolerance_frames) & inside & (fb >= ends - w + 1)
        soon = (fb > ends) & (fb <= ends + config.lookahead_frames)
        out[(old | soon) & (out != SKIP)] = SKIP
        out[recent & inside] = label
    out[: w - 1] = SKIP  # the window must fit in the stream
    return out


def cut_windows(
    feats: np.ndarray,
    lab: np.ndarray,
    rng: np.random.Generator,
    n_keywords: int,
    labels: Sequence[str],
    config: StreamConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Windows of one stream's features ``feats`` with frame labels ``lab``.

    Ends are drawn without replacement: ``keyword_windows`` per keyword among the
    keyword frames, ``unknown_windows`` / ``silence_windows`` per keyword among the
    ``_unknown_`` / ``_silence_`` frames (as many as there are, at most).

    Returns:
        ``(x, y)``: float32 windows ``(N, window, features)`` in stream order, and
        their labels.
    """
    silence, unknown = labels.index(SILENCE_LABEL), labels.index(UNKNOWN_LABEL)
    chosen: list[np.ndarray] = []
    kw_frames = np.flatnonzero((lab != SKIP) & (lab != silence) & (lab != unknown))
    if kw_frames.size:
        count = min(kw_frames.size, config.keyword_windows * max(n_keywords, 1))
        chosen.append(rng.choice(kw_frames, count, replace=False))
    for value, per in ((unknown, config.unknown_windows),
                       (silence, config.silence_windows)):  # fmt: skip
        frames = np.flatnonzero(lab == value)
        count = min(frames.size, int(round(per * n_keywords)))
        if count:
            chosen.append(rng.choice(frames, count, replace=False))
    ends = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
    w = config.window
    x = np.stack([feats[e - w + 1 : e + 1] for e in ends]) if ends.size else None
    if x is None:
        x = np.zeros((0, w, feats.shape[1]), np.float32)
    return x.astype(np.float32), lab[ends]
