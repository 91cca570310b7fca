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

How the streams are built: :mod:`.synthetic_streams` (its rendering needs
``lmuformer_keras``, espeak-ng); how detections are scored: :mod:`.scoring` (NumPy
only).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .scoring import DEFAULT_TOLERANCE_S, score_detections
from .smoothing import Detection, is_ignored_label
from .synthetic_streams import (
    CROSSFADE_S,
    DEFAULT_GAP_S,
    DEFAULT_NOISE_DBFS,
    DEFAULT_SNR_DB,
    EVAL_K_OFFSET,
    KEYWORDS,
    NOISE_KINDS,
    NOISE_LEVEL_DBFS,
    PEAK_LIMIT_DBFS,
    RENDER_PARAMS,
    SAMPLE_RATE,
    default_test_voices,
    keyword_stream,
    noise_stream,
    render_words,
)

__all__ = [
    "CROSSFADE_S",
    "DEFAULT_GAP_S",
    "DEFAULT_NOISE_DBFS",
    "DEFAULT_SNR_DB",
    "DEFAULT_TOLERANCE_S",
    "EVAL_K_OFFSET",
    "KEYWORDS",
    "NOISE_KINDS",
    "NOISE_LEVEL_DBFS",
    "PEAK_LIMIT_DBFS",
    "RENDER_PARAMS",
    "SAMPLE_RATE",
    "Detection",
    "default_test_voices",
    "evaluate",
    "is_ignored_label",
    "keyword_stream",
    "main",
    "noise_stream",
    "render_words",
    "run_stream",
    "score_detections",
]


def run_stream(stream, samples: np.ndarray, chunk: int = 1600) -> list[Detection]:
    """Resets ``stream`` (a :class:`KWSStream`), pushes ``samples``; detections."""
    stream.reset()
    found: list[Detection] = []
    for start in range(0, samples.shape[0], chunk):
        found.extend(stream.push(samples[start : start + chunk]))
    return found


def _write_stream_wavs(
    wav_dir: str | os.PathLike,
    speech: np.ndarray,
    noise: np.ndarray,
    events: list[tuple[str, float, float]],
) -> None:
    """Writes ``keywords.wav``, ``noise.wav`` and ``keywords.json`` into ``wav_dir``."""
    from .audio import write_wav

    os.makedirs(wav_dir, exist_ok=True)
    write_wav(os.path.join(wav_dir, "keywords.wav"), speech)
    write_wav(os.path.join(wav_dir, "noise.wav"), noise)
    with open(os.path.join(wav_dir, "keywords.json"), "w", encoding="utf-8") as f:
        json.dump(events, f, indent=1)


def _score_streams(
    stream,
    speech: np.ndarray,
    events: list[tuple[str, float, float]],
    noise: np.ndarray,
    tolerance_s: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Runs ``stream`` over both streams; their :func:`score_detections` results."""
    kw = score_detections(
        run_stream(stream, speech),
        events,
        tolerance_s,
        duration_s=speech.size / SAMPLE_RATE,
    )
    nz = score_detections(
        run_stream(stream, noise), [], tolerance_s, duration_s=noise.size / SAMPLE_RATE
    )
    return kw, nz


def _smoothing_record(smoother) -> dict[str, Any]:
    """The settings of a :class:`RecognizeCommands`, as reported."""
    return {
        "average_window_ms": smoother.average_window_ms,
        "detection_threshold": smoother.detection_threshold,
        "suppression_ms": smoother.suppression_ms,
        "minimum_count": smoother.minimum_count,
    }


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
        _write_stream_wavs(wav_dir, speech, noise, events)
    t0 = time.perf_counter()
    kw, nz = _score_streams(stream, speech, events, noise, tolerance_s)
    run_s = time.perf_counter() - t0
    return {
        "model_dir": os.fspath(model_dir),
        "smoothing": _smoothing_record(stream.smoother),
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


def _argument_parser() -> argparse.ArgumentParser:
    """The command line of :func:`main`."""
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
        "--keywords", type=int, default=None,
        help="with --engine: at least this many keywords in each keyword stream "
        "(every keyword in every voice, repeated; default 50); the summary gives 95 %% "
        "intervals, so more keywords tell models apart more finely",
    )  # fmt: skip
    parser.add_argument(
        "--no_channel", action="store_true",
        help="render the keywords without speaker / channel variety (speed, VTLP, "
        "rooms, band limits)",
    )  # fmt: skip
    parser.add_argument("--wav_dir", default=None, help="also write the WAVs here")
    parser.add_argument("--out", default=None, help="write the report JSON here")
    return parser


def _smoothing_options(args: argparse.Namespace) -> dict[str, Any]:
    """The smoothing options given on the command line (``RecognizeCommands`` names)."""
    given = {
        "average_window_ms": args.average_window_ms,
        "detection_threshold": args.threshold,
        "suppression_ms": args.suppression_ms,
        "minimum_count": args.minimum_count,
    }
    return {k: v for k, v in given.items() if v is not None}


def _evaluate_from_args(
    args: argparse.Namespace, voices: list[str] | None, smoothing: dict[str, Any]
) -> dict[str, Any]:
    """:func:`evaluate` with the command line's options."""
    return evaluate(
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


def _print_summary(report: dict[str, Any]) -> None:
    """Prints recall, false detections and latency of :func:`evaluate`'s report."""
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lmuformer_apps.kws_stream.evaluate --model_dir DIR [...]``."""
    from lmuformer_keras.console import quiet_tensorflow

    quiet_tensorflow()  # no TensorFlow/absl start-up lines
    parser = _argument_parser()
    args = parser.parse_args(argv)
    if args.keywords is not None and not args.engine:
        parser.error(f"--keywords={args.keywords} needs --engine")
    if args.keywords is not None and args.keywords < 1:
        parser.error(f"--keywords must be >= 1, got --keywords={args.keywords}")
    voices = args.voices.split(",") if args.voices else None
    smoothing = _smoothing_options(args)
    try:
        if args.engine:
            report = _engine_report_from_args(args, voices, smoothing)
        else:
            report = _evaluate_from_args(args, voices, smoothing)
    except (ValueError, ImportError, FileNotFoundError, RuntimeError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    if args.engine:
        from .held_out import format_report

        print(format_report(report))
    else:
        _print_summary(report)
    _write_report(args.out, report)
    return 0


def _write_report(path: str | None, report: dict[str, Any]) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {path}")


def _engine_report_from_args(
    args: argparse.Namespace, voices: list[str] | None, smoothing: dict[str, Any]
) -> dict[str, Any]:
    """:func:`~.held_out.evaluate_engine` with the command line's options."""
    from . import held_out

    return held_out.evaluate_engine(
        args.model_dir,
        args.engine,
        voices=voices,
        seed=args.seed,
        speech_minutes=args.speech_minutes,
        noise_minutes=args.minutes,
        tolerance_s=args.tolerance_s,
        min_keywords=held_out.MIN_KEYWORDS if args.keywords is None else args.keywords,
        **smoothing,
    )


if __name__ == "__main__":
    sys.exit(main())
