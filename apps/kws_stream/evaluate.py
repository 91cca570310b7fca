"""Detection rate and false alarms of a streaming keyword spotter on long WAVs.

``python -m lmuformer_apps.kws_stream.evaluate --model_dir DIR`` builds two streams,
runs :class:`~lmuformer_apps.kws_stream.runner.KWSStream` over them (with the
:class:`~lmuformer_apps.kws_stream.smoothing.RecognizeCommands` settings given) and
reports:

- a keyword stream (:func:`keyword_stream`): every keyword spoken by held-out
  espeak-ng voices, separated by gaps, over continuous background noise; a keyword is
  detected when a detection of its label comes between its start and its end +
  ``tolerance_s`` (:func:`score_detections`);
- a noise-only stream (:func:`noise_stream`): every detection in it is false.

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

Only this module's rendering needs ``lmuformer_keras`` (espeak-ng); scoring needs
NumPy only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .smoothing import (
    Detection,
    is_ignored_label,
)

SAMPLE_RATE = 16000
KEYWORDS: tuple[str, ...] = (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
)  # fmt: skip
NOISE_KINDS: tuple[str, ...] = ("white", "pink", "brown", "hum50", "hum60")
DEFAULT_NOISE_DBFS = -50.0
DEFAULT_SNR_DB = (10.0, 30.0)
DEFAULT_GAP_S = (1.0, 2.0)
DEFAULT_TOLERANCE_S = 0.5
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
    rng = np.random.default_rng([int(seed), 1])
    items = [(w, v, k) for k in range(int(repeats)) for v in voices for w in words]
    items = [items[i] for i in rng.permutation(len(items))]
    clips = render_words(
        items, seed, fresh_process=fresh_process, engine=engine, channel=channel
    )

    noise_rms = _db(noise_dbfs) if np.isfinite(noise_dbfs) else 0.0
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
    n = t + int((gap_s[1] + 1.0) * SAMPLE_RATE)
    out = np.zeros(n)
    if noise_rms > 0:
        out += noise_rms * _noise_bed(n / SAMPLE_RATE, rng)
    for start, x in placed:
        out[start : start + x.size] += x
    return _to_int16(out), events


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


def _detection_label_time(
    detection: Detection | tuple[str, float],
) -> tuple[str, float]:
    if isinstance(detection, Detection):
        return detection.label, detection.time_ms / 1000.0
    label, time_s = detection
    return str(label), float(time_s)


def score_detections(
    detections: Iterable[Detection | tuple[str, float]],
    events: Sequence[tuple[str, float, float]],
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    duration_s: float | None = None,
) -> dict[str, Any]:
    """Matches detections with spoken keywords.

    A keyword ``(label, start_s, end_s)`` is hit by the earliest unused detection of
    its label at a time in ``[start_s, end_s + tolerance_s]``; each detection hits at
    most one keyword. Every other detection of a keyword label is false (a late one,
    one of the wrong label, a repeat); detections of ignored labels (silence,
    unknown: :func:`is_ignored_label`) are not counted.

    Args:
        detections: :class:`Detection` objects, or ``(label, time_s)`` pairs.
        events: ``(label, start_s, end_s)`` of the spoken keywords.
        tolerance_s: how long after a keyword's end its detection may come.
        duration_s: length of the audio, for the false detections per minute
            (default: the last event's end + ``tolerance_s``, else the last
            detection).

    Returns:
        A dict: ``keywords``, ``hits``, ``misses``, ``false_detections``,
        ``recall``, ``false_per_minute``, ``minutes``, ``per_word`` (``{label:
        {"keywords", "hits", "false"}}``), ``latency_s`` (from the word's end to its
        detection: ``mean``, ``median``, ``max``, ``min``; ``None`` without hits),
        ``missed`` and ``false`` (the missed events and false detections).

    Raises:
        ValueError: a negative ``tolerance_s`` or ``duration_s``, or an event that
            ends before it starts.
    """
    if not tolerance_s >= 0:
        raise ValueError(
            f"score_detections: tolerance_s must be >= 0, got tolerance_s={tolerance_s}"
        )
    found = sorted((_detection_label_time(d) for d in detections), key=lambda lt: lt[1])
    found = [(label, t) for label, t in found if not is_ignored_label(label)]
    events = sorted(
        ((str(label), float(a), float(b)) for label, a, b in events),
        key=lambda e: e[1],
    )
    for label, a, b in events:
        if b < a:
            raise ValueError(
                f"score_detections: event ({label!r}, {a}, {b}) ends before it starts"
            )
    used = [False] * len(found)
    per_word: dict[str, dict[str, int]] = {}
    latencies: list[float] = []
    missed: list[tuple[str, float, float]] = []
    for label, a, b in events:
        counts = per_word.setdefault(label, {"keywords": 0, "hits": 0, "false": 0})
        counts["keywords"] += 1
        for i, (d_label, t) in enumerate(found):
            if not used[i] and d_label == label and a <= t <= b + tolerance_s:
                used[i] = True
                counts["hits"] += 1
                latencies.append(t - b)
                break
        else:
            missed.append((label, a, b))
    false = [d for d, u in zip(found, used, strict=True) if not u]
    for label, _ in false:
        per_word.setdefault(label, {"keywords": 0, "hits": 0, "false": 0})
        per_word[label]["false"] += 1
    if duration_s is None:
        ends = [b + tolerance_s for _, _, b in events] + [t for _, t in found]
        duration_s = max(ends, default=0.0)
    if duration_s < 0:
        raise ValueError(
            f"score_detections: duration_s must be >= 0, got duration_s={duration_s}"
        )
    minutes = duration_s / 60.0
    hits = len(latencies)
    lat = np.asarray(latencies)
    return {
        "keywords": len(events),
        "hits": hits,
        "misses": len(missed),
        "false_detections": len(false),
        "recall": hits / len(events) if events else float("nan"),
        "minutes": minutes,
        "false_per_minute": len(false) / minutes if minutes > 0 else float("nan"),
        "tolerance_s": float(tolerance_s),
        "per_word": dict(sorted(per_word.items())),
        "latency_s": None
        if not hits
        else {
            "mean": float(lat.mean()),
            "median": float(np.median(lat)),
            "min": float(lat.min()),
            "max": float(lat.max()),
        },
        "missed": missed,
        "false": false,
    }


def run_stream(stream, samples: np.ndarray, chunk: int = 1600) -> list[Detection]:
    """Resets ``stream`` (a :class:`KWSStream`), pushes ``samples``; detections."""
    stream.reset()
    found: list[Detection] = []
    for start in range(0, samples.shape[0], chunk):
        found.extend(stream.push(samples[start : start + chunk]))
    return found


def evaluate(
    model_dir: str | os.PathLike,
    voices: Sequence[str] | None = None,
    seed: int = 0,
    repeats: int = 1,
    noise_minutes: float = 5.0,
    gap_s: tuple[float, float] = DEFAULT_GAP_S,
    snr_db: tuple[float, float] = DEFAULT_SNR_DB,
    noise_dbfs: float = DEFAULT_NOISE_DBFS,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    wav_dir: str | os.PathLike | None = None,
    channel: bool = True,
    **smoothing: Any,
) -> dict[str, Any]:
    """Both streams through the model in ``model_dir``; a JSON-ready report.

    ``smoothing`` goes to :class:`RecognizeCommands` (``average_window_ms``,
    ``detection_threshold``, ``suppression_ms``, ``minimum_count``). With
    ``wav_dir``, the streams are written there as ``keywords.wav`` (+
    ``keywords.json``, the events) and ``noise.wav``.
    """
    from .runner import KWSStream

    if not noise_minutes > 0:
        raise ValueError(
            f"evaluate: noise_minutes must be > 0, got noise_minutes={noise_minutes}"
        )
    stream = KWSStream.from_dir(model_dir, history_frames=0, **smoothing)
    labels = [w for w in stream.labels if not is_ignored_label(w)]
    if voices is None:
        voices = default_test_voices()
    voices = [str(v) for v in voices]
    t0 = time.perf_counter()
    speech, events = keyword_stream(
        labels, voices, seed, gap_s, snr_db, noise_dbfs, repeats, channel=channel
    )
    noise = noise_stream(noise_minutes, seed)
    build_s = time.perf_counter() - t0
    if wav_dir is not None:
        from .audio import write_wav

        os.makedirs(wav_dir, exist_ok=True)
        write_wav(os.path.join(wav_dir, "keywords.wav"), speech)
        write_wav(os.path.join(wav_dir, "noise.wav"), noise)
        with open(os.path.join(wav_dir, "keywords.json"), "w", encoding="utf-8") as f:
            json.dump(events, f, indent=1)
    t0 = time.perf_counter()
    kw = score_detections(
        run_stream(stream, speech),
        events,
        tolerance_s,
        duration_s=speech.size / SAMPLE_RATE,
    )
    nz = score_detections(
        run_stream(stream, noise), [], tolerance_s, duration_s=noise.size / SAMPLE_RATE
    )
    run_s = time.perf_counter() - t0
    sm = stream.smoother
    return {
        "model_dir": os.fspath(model_dir),
        "smoothing": {
            "average_window_ms": sm.average_window_ms,
            "detection_threshold": sm.detection_threshold,
            "suppression_ms": sm.suppression_ms,
            "minimum_count": sm.minimum_count,
        },
        "keyword_stream": {
            "seed": seed,
            "words": labels,
            "voices": voices,
            "repeats": repeats,
            "channel": channel,
            "gap_s": list(gap_s),
            "snr_db": list(snr_db),
            "noise_dbfs": noise_dbfs,
            "seconds": speech.size / SAMPLE_RATE,
            **kw,
        },
        "noise_stream": {"seed": seed, "seconds": noise.size / SAMPLE_RATE, **nz},
        "build_seconds": build_s,
        "stream_seconds": run_s,
    }


def _pair(text: str) -> tuple[float, float]:
    parts = [float(p) for p in text.split(",")]
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX, got {text!r}")
    return parts[0], parts[1]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lmuformer_apps.kws_stream.evaluate --model_dir DIR [...]``."""
    from lmuformer_keras.console import quiet_tensorflow

    quiet_tensorflow()  # no TensorFlow/absl start-up lines
    parser = argparse.ArgumentParser(
        prog="python -m lmuformer_apps.kws_stream.evaluate",
        description="Keyword recall and false detections of a streaming model on a "
        "synthetic keyword stream (held-out espeak-ng voices) and a noise-only stream.",
    )
    parser.add_argument("--model_dir", required=True, help="lmuformer-export folder")
    parser.add_argument("--minutes", type=float, default=5.0, help="noise stream")
    parser.add_argument("--repeats", type=int, default=1, help="per word and voice")
    parser.add_argument("--voices", default=None, help="comma-separated; default: "
                        "the synthetic set's held-out test voices")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gap_s", type=_pair, default=DEFAULT_GAP_S)
    parser.add_argument("--snr_db", type=_pair, default=DEFAULT_SNR_DB)
    parser.add_argument("--noise_dbfs", type=float, default=DEFAULT_NOISE_DBFS)
    parser.add_argument("--tolerance_s", type=float, default=DEFAULT_TOLERANCE_S)
    # smoothing: default the model's metadata record, else RecognizeCommands' own
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--average_window_ms", type=float, default=None)
    parser.add_argument("--suppression_ms", type=float, default=None)
    parser.add_argument("--minimum_count", type=int, default=None)
    parser.add_argument(
        "--engine",
        default=None,
        help="judge on this text-to-speech engine's voices instead (isolated "
        "keywords, keywords in phrases, non-keyword sentences, --minutes of noise; "
        "lmuformer_apps.kws_stream.held_out); for a model trained without it "
        "(lmuformer-train --exclude_engines), a leave-one-engine-out figure",
    )
    parser.add_argument(
        "--speech_minutes", type=float, default=5.0,
        help="with --engine: minutes of non-keyword sentences",
    )  # fmt: skip
    parser.add_argument(
        "--no_channel", action="store_true",
        help="render the keywords without speaker / channel variety (speed, VTLP, "
        "rooms, band limits)",
    )  # fmt: skip
    parser.add_argument("--wav_dir", default=None, help="also write the WAVs here")
    parser.add_argument("--out", default=None, help="write the report JSON here")
    args = parser.parse_args(argv)
    voices = args.voices.split(",") if args.voices else None
    given = {
        "average_window_ms": args.average_window_ms,
        "detection_threshold": args.threshold,
        "suppression_ms": args.suppression_ms,
        "minimum_count": args.minimum_count,
    }
    smoothing = {k: v for k, v in given.items() if v is not None}
    if args.engine:
        return _main_engine(parser.prog, args, voices, smoothing)
    try:
        report = evaluate(
            args.model_dir,
            voices=voices,
            seed=args.seed,
            repeats=args.repeats,
            noise_minutes=args.minutes,
            gap_s=args.gap_s,
            snr_db=args.snr_db,
            noise_dbfs=args.noise_dbfs,
            tolerance_s=args.tolerance_s,
            wav_dir=args.wav_dir,
            channel=not args.no_channel,
            **smoothing,
        )
    except (ValueError, ImportError, FileNotFoundError, RuntimeError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    kw, nz = report["keyword_stream"], report["noise_stream"]
    lat = kw["latency_s"] or {"median": float("nan"), "max": float("nan")}
    print(
        f"keywords: {kw['hits']}/{kw['keywords']} detected within "
        f"{kw['tolerance_s']:g} s of their end (recall {kw['recall']:.1%}), "
        f"{kw['false_detections']} false ({kw['false_per_minute']:.2f}/min) in "
        f"{kw['seconds'] / 60:.1f} min; latency after word end: median "
        f"{lat['median']:.2f} s, max {lat['max']:.2f} s"
    )
    for label, counts in kw["per_word"].items():
        print(
            f"  {label:>8}: {counts['hits']}/{counts['keywords']} detected, "
            f"{counts['false']} false"
        )
    print(
        f"noise only: {nz['false_detections']} false detections in "
        f"{nz['minutes']:.1f} min ({nz['false_per_minute']:.2f}/min)"
    )
    _write_report(args.out, report)
    return 0


def _write_report(path: str | None, report: dict[str, Any]) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {path}")


def _main_engine(prog: str, args, voices, smoothing: dict[str, Any]) -> int:
    from .held_out import evaluate_engine, format_report

    try:
        report = evaluate_engine(
            args.model_dir,
            args.engine,
            voices=voices,
            seed=args.seed,
            speech_minutes=args.speech_minutes,
            noise_minutes=args.minutes,
            tolerance_s=args.tolerance_s,
            **smoothing,
        )
    except (ValueError, ImportError, FileNotFoundError, RuntimeError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
    print(format_report(report))
    _write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
