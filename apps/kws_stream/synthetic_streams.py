"""The synthetic streams that :mod:`.evaluate` runs a keyword spotter over.

A keyword stream (:func:`keyword_stream`) and a noise-only stream
(:func:`noise_stream`), int16 mono at 16 kHz.

The keyword stream, per keyword (RNG from ``seed``):

1. the word is rendered by ``lmuformer_keras.data.kws_render.render_clip`` (the
   synthetic set's renderer: espeak-ng rate / pitch / intonation drawn from the
   training ranges, silence trimmed) without per-clip noise, in a fresh process
   (espeak-ng's output depends on what its process spoke before), so the stream is
   the same in every run; its exact start and end are where the trimmed speech was
   placed (first / last non-zero sample);
2. it is scaled so that its power over the word is ``snr_db`` ~ U(range) dB above the
   noise power (peaks are limited to -1 dBFS), and placed after a gap ~ U(``gap_s``)
   of background only; the stream starts with such a gap and ends with
   ``gap_s[1] + 1`` s of background.

The background of the keyword stream is continuous generated noise
(``kws_render.make_noise``: white, pink, brown, 50 / 60 Hz hum, from RNGs that differ
from the training set's noise files) at a constant RMS of ``noise_dbfs`` (default
-50 dBFS, a quiet room), its type changing every 3-10 s with a 50 ms cross-fade.
With the default SNR range (10, 30) dB, words have an RMS of -40 to -20 dBFS; their
peaks are 12-17 dB higher (5-95 %), about -28 to -3 dBFS, near the training set's -24
to -1 dBFS peak range. Words last 0.2-0.7 s.

The noise-only stream (:func:`noise_stream`): 2-10 s segments, each of white, pink,
brown noise, hum, a mixture of two of them (RMS ~ U(-65, -25) dBFS; the training
``_silence_`` clips reach -20 dBFS), near-silence (white noise at -90 dBFS) or digital
silence, cross-faded over 50 ms.

Rendering needs ``lmuformer_keras`` (espeak-ng).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
KEYWORDS: tuple[str, ...] = (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
)  # fmt: skip
NOISE_KINDS: tuple[str, ...] = ("white", "pink", "brown", "hum50", "hum60")
DEFAULT_NOISE_DBFS = -50.0
DEFAULT_SNR_DB = (10.0, 30.0)
DEFAULT_GAP_S = (1.0, 2.0)
NOISE_LEVEL_DBFS = (-65.0, -25.0)
CROSSFADE_S = 0.05
PEAK_LIMIT_DBFS = -1.0
#: How evaluation speech is rendered (``kws_render.render_utterances``): the synthetic
#: set's tempo / pitch ranges and speaker / channel variety. Draw indices are offset
#: by :data:`EVAL_K_OFFSET`, so no evaluation rendering repeats a training one.
RENDER_PARAMS: dict[str, Any] = {
    "tempo_range": (0.8, 1.2),
    "pitch_range": (-4.0, 4.0),
    "intonation_range": (20, 90),
    "channel": True,
    "other_engine_val_fraction": 0.0,
}
EVAL_K_OFFSET = 1000


def _kws_render():
    """``lmuformer_keras.data.kws_render``, or an ImportError saying what is needed."""
    try:
        from lmuformer_keras.data import kws_render
    except ImportError as error:
        raise ImportError(
            "lmuformer_apps.kws_stream.evaluate renders keywords with espeak-ng "
            "through lmuformer_keras.data.kws_render: install lmuformer-keras (pip "
            f"install -e .) and espeakng-loader ({type(error).__name__}: {error})"
        ) from error
    return kws_render


def default_test_voices() -> tuple[str, ...]:
    """The synthetic set's held-out voices (``synthetic_kws.DEFAULT_TEST_VOICES``)."""
    _kws_render()  # a clear ImportError without lmuformer_keras
    from lmuformer_keras.data.synthetic_kws import DEFAULT_TEST_VOICES

    return tuple(DEFAULT_TEST_VOICES)


def _check_range(name: str, value: Sequence[float], low: float = -math.inf) -> None:
    if len(value) != 2 or not low <= value[0] <= value[1]:
        raise ValueError(
            f"{name} must be a (min, max) pair with {low} <= min <= max, got "
            f"{name}={tuple(value)}"
        )


def _db(x: float) -> float:
    return 10.0 ** (x / 20.0)


def render_words(
    items: Sequence[tuple[str, str, int]],
    seed: int,
    fresh_process: bool = True,
    engine: str = "espeak",
    channel: bool = True,
) -> list[np.ndarray]:
    """Renders ``(text, voice, k)`` items as trimmed speech (float64, 16 kHz).

    Args:
        items: texts, voices of ``engine`` and draw indices.
        seed: seed of the per-utterance draws (``kws_render.clip_rng``).
        fresh_process: render in a new Python process (deterministic output for the
            reproducible engines, see the module docstring); else in this process.
        engine: a text-to-speech engine (``lmuformer_keras.data.tts``).
        channel: speaker and channel variety (``lmuformer_keras.data.channel``).

    Returns:
        One array per item, peak -1 dBFS, leading / trailing silence trimmed.
    """
    kws_render = _kws_render()
    params = dict(RENDER_PARAMS, seed=int(seed), channel=bool(channel))
    jobs = [[v, t, int(k) + EVAL_K_OFFSET] for t, v, k in items]
    if not fresh_process:
        out: list[np.ndarray] = []
        for voice, text, k in jobs:
            ((x, _, _),) = kws_render.render_utterances(
                engine, voice, [(text, k)], params
            )
            out.append(x)
        return out
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "speech.npz")
        task = {"engine": engine, "params": params, "items": jobs, "out": path}
        proc = subprocess.run(
            [sys.executable, os.path.abspath(kws_render.__file__), "--speech"],
            input=json.dumps(task),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{engine} rendering process failed (exit {proc.returncode}): "
                f"{proc.stderr[-2000:]}"
            )
        with np.load(path) as data:
            return [data[f"arr_{i}"] for i in range(len(items))]


def _noise_bed(
    seconds: float, rng: np.random.Generator, kinds: Sequence[str] = NOISE_KINDS
) -> np.ndarray:
    """Continuous noise of RMS 1: types changing every 3-10 s, cross-faded."""
    kws_render = _kws_render()
    n = int(round(seconds * SAMPLE_RATE))
    fade = int(CROSSFADE_S * SAMPLE_RATE)
    out = np.zeros(n)
    start = 0
    while start < n:
        length = min(int(rng.uniform(3.0, 10.0) * SAMPLE_RATE), n - start)
        kind = kinds[int(rng.integers(len(kinds)))]
        seg_len = min(length + fade, n - start)
        seg = 10.0 * kws_render.make_noise(kind, seg_len / SAMPLE_RATE + 0.01, rng)
        _add_faded(out, seg[:seg_len], start, fade)
        start += length
    return out


def _add_faded(out: np.ndarray, seg: np.ndarray, start: int, fade: int) -> None:
    """Adds ``seg`` at ``start`` with linear fade-in / fade-out ramps of ``fade``."""
    seg = seg.copy()
    f = min(fade, seg.size // 2)
    if f > 0:
        ramp = np.linspace(0.0, 1.0, f, endpoint=False)
        if start > 0:
            seg[:f] *= ramp
        if start + seg.size < out.size:
            seg[-f:] *= ramp[::-1]
    out[start : start + seg.size] += seg


def _to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def _checked_words_voices(
    words: Sequence[str],
    voices: Sequence[str] | None,
    gap_s: tuple[float, float],
    snr_db: tuple[float, float],
    repeats: int,
    noise_dbfs: float,
) -> tuple[list[str], list[str]]:
    """:func:`keyword_stream`'s arguments checked; its words and voices as strings.

    Raises:
        ValueError: naming a bad argument.
    """
    words = [str(w) for w in words]
    if not words:
        raise ValueError(f"keyword_stream: words must not be empty, got {words}")
    if voices is None:
        voices = default_test_voices()
    voices = [str(v) for v in voices]
    if not voices:
        raise ValueError(f"keyword_stream: voices must not be empty, got {voices}")
    _check_range("gap_s", gap_s, low=0.0)
    _check_range("snr_db", snr_db)
    if int(repeats) != repeats or repeats < 1:
        raise ValueError(
            f"keyword_stream: repeats must be an integer >= 1, got repeats={repeats}"
        )
    if not noise_dbfs <= 0:
        raise ValueError(
            f"keyword_stream: noise_dbfs must be <= 0 dBFS, got noise_dbfs={noise_dbfs}"
        )
    return words, voices


def _place_words(
    items: Sequence[tuple[str, str, int]],
    clips: Sequence[np.ndarray],
    rng: np.random.Generator,
    gap_s: tuple[float, float],
    snr_db: tuple[float, float],
    noise_rms: float,
) -> tuple[list[tuple[int, np.ndarray]], list[tuple[str, float, float]], int]:
    """Scales each clip to its drawn SNR and places it after its drawn gap.

    Returns:
        ``(placed, events, end)``: ``(start sample, scaled clip)`` pairs, the
        ``(word, start_s, end_s)`` events and the sample after the last word.
    """
    placed: list[tuple[int, np.ndarray]] = []
    events: list[tuple[str, float, float]] = []
    t = 0
    for (word, _, _), clip in zip(items, clips, strict=True):
        x = np.array(clip, dtype=np.float64)
        if x.size == 0 or not np.any(x):
            raise RuntimeError(f"keyword_stream: empty rendering of {word!r}")
        snr = rng.uniform(*snr_db)
        if noise_rms > 0:
            x *= noise_rms * _db(snr) / np.sqrt(np.mean(x**2))
        x *= min(1.0, _db(PEAK_LIMIT_DBFS) / np.abs(x).max())
        t += int(rng.uniform(*gap_s) * SAMPLE_RATE)
        placed.append((t, x))
        events.append((word, t / SAMPLE_RATE, (t + x.size) / SAMPLE_RATE))
        t += x.size
    return placed, events, t


def _mix_over_background(
    placed: Sequence[tuple[int, np.ndarray]],
    n: int,
    noise_rms: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """``n`` samples of background at ``noise_rms`` with the placed words added."""
    out = np.zeros(n)
    if noise_rms > 0:
        out += noise_rms * _noise_bed(n / SAMPLE_RATE, rng)
    for start, x in placed:
        out[start : start + x.size] += x
    return out


def keyword_stream(
    words: Sequence[str] = KEYWORDS,
    voices: Sequence[str] | None = None,
    seed: int = 0,
    gap_s: tuple[float, float] = DEFAULT_GAP_S,
    snr_db: tuple[float, float] = DEFAULT_SNR_DB,
    noise_dbfs: float = DEFAULT_NOISE_DBFS,
    repeats: int = 1,
    fresh_process: bool = True,
    engine: str = "espeak",
    channel: bool = True,
) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Keywords by held-out voices with gaps, over continuous background noise.

    Every ``(word, voice)`` pair is spoken ``repeats`` times, in a random order (see
    the module docstring for levels and timing).

    Args:
        words: words to speak.
        voices: espeak-ng voices; default the synthetic set's held-out test voices
            (``lmuformer_keras.data.synthetic_kws.DEFAULT_TEST_VOICES``).
        seed: everything random derives from it.
        gap_s: range of the background-only gap before each word, in seconds.
        snr_db: range of each word's power over the background's, in dB.
        noise_dbfs: RMS level of the background in dBFS (``-inf``: no background,
            and words at a -1 dBFS peak).
        repeats: times each ``(word, voice)`` pair is spoken (different draws).
        fresh_process: render in a new process (deterministic; see
            :func:`render_words`).
        engine: the text-to-speech engine of ``voices``.
        channel: speaker and channel variety at rendering (:func:`render_words`).

    Returns:
        ``(samples, events)``: int16 mono samples at 16 kHz and, in time order,
        ``(word, start_s, end_s)`` of every spoken word.

    Raises:
        ValueError: naming a bad argument.
    """
    words, voices = _checked_words_voices(
        words, voices, gap_s, snr_db, repeats, noise_dbfs
    )
    rng = np.random.default_rng([int(seed), 1])
    items = [(w, v, k) for k in range(int(repeats)) for v in voices for w in words]
    items = [items[i] for i in rng.permutation(len(items))]
    clips = render_words(
        items, seed, fresh_process=fresh_process, engine=engine, channel=channel
    )
    noise_rms = _db(noise_dbfs) if np.isfinite(noise_dbfs) else 0.0
    placed, events, end = _place_words(items, clips, rng, gap_s, snr_db, noise_rms)
    n = end + int((gap_s[1] + 1.0) * SAMPLE_RATE)
    return _to_int16(_mix_over_background(placed, n, noise_rms, rng)), events


def noise_stream(minutes: float, seed: int = 0) -> np.ndarray:
    """Noise-only int16 audio at 16 kHz (segments described in the module docstring).

    Args:
        minutes: length.
        seed: everything random derives from it.

    Raises:
        ValueError: ``minutes`` is not positive.
    """
    if not minutes > 0:
        raise ValueError(f"noise_stream: minutes must be > 0, got minutes={minutes}")
    kws_render = _kws_render()
    rng = np.random.default_rng([int(seed), 2])
    n = int(round(minutes * 60.0 * SAMPLE_RATE))
    fade = int(CROSSFADE_S * SAMPLE_RATE)
    out = np.zeros(n)
    start = 0
    choices = (*NOISE_KINDS, "mix", "mix", "quiet", "zero")
    while start < n:
        length = min(int(rng.uniform(2.0, 10.0) * SAMPLE_RATE), n - start)
        seg_len = min(length + fade, n - start)
        seconds = seg_len / SAMPLE_RATE + 0.01
        kind = choices[int(rng.integers(len(choices)))]
        if kind == "zero":
            start += length
            continue
        if kind == "quiet":
            seg = _db(-90.0) * 10.0 * kws_render.make_noise("white", seconds, rng)
        else:
            if kind == "mix":
                a, b = rng.choice(len(NOISE_KINDS), size=2, replace=False)
                w = rng.uniform(0.2, 0.8)
                seg = w * kws_render.make_noise(NOISE_KINDS[a], seconds, rng)
                seg += (1 - w) * kws_render.make_noise(NOISE_KINDS[b], seconds, rng)
                seg /= np.sqrt(np.mean(seg**2))
            else:
                seg = 10.0 * kws_render.make_noise(kind, seconds, rng)
            seg *= _db(rng.uniform(*NOISE_LEVEL_DBFS))
        _add_faded(out, seg[:seg_len], start, fade)
        start += length
    return _to_int16(out)
