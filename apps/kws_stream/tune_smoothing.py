"""Detection smoothing chosen on validation voices, written into the model's metadata.

A model trained on streaming windows (``--dataset=kws_streams``) says its keyword only
in the ~0.4 s after the word's end, while one trained on 1 s clips says it across the
whole clip, so the best averaging window and threshold of
:class:`~.smoothing.RecognizeCommands` depend on the model.
``python -m lmuformer_apps.kws_stream.tune_smoothing --model_dir DIR`` picks them on
*validation* speech (by default the synthetic set's espeak-ng validation voices, used
in training only to choose the epoch; never the voices a figure is reported on):

1. the isolated-keyword, keyword-in-phrase and non-keyword-sentence streams of
   :mod:`.held_out` (fresh renderings, the evaluation vocabulary) and a noise stream
   run once through the int8 model; the frame posteriors are kept;
2. every ``(average_window_ms, detection_threshold)`` of the grid smooths those
   posteriors (suppression and minimum count as given);
3. the chosen setting has the highest mean keyword recall among those with at most
   ``max_false_per_minute`` false detections per minute of non-keyword speech and none
   in noise; if no setting qualifies, the one with the fewest false detections.

With ``--write`` the choice becomes the ``smoothing`` record of ``metadata.json``: the
default of every app that reads the folder (Python ``KWSStream``, ``lmuformer-stream``,
the MCU's generated ``kws_params.h``); options given on a command line still win.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmuformer_keras.contract import ExportMetadata

from . import evaluate as ev
from . import held_out
from .smoothing import (
    DEFAULT_MINIMUM_COUNT,
    DEFAULT_SUPPRESSION_MS,
    RecognizeCommands,
)

WINDOWS_MS: tuple[float, ...] = (200.0, 300.0, 400.0, 500.0, 700.0, 980.0)
THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)
DEFAULT_MAX_FALSE_PER_MINUTE = 0.5
_Run = tuple[np.ndarray, np.ndarray, list[tuple[str, float, float]], float]
"""A validation stream once through the model: frame times, posteriors, its
keyword events and its length in seconds."""


def validation_voices() -> list[str]:
    """The synthetic set's espeak-ng validation voices."""
    from lmuformer_keras.data.synthetic_kws import DEFAULT_VAL_VOICES

    return list(DEFAULT_VAL_VOICES)


def _posteriors(stream, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ev.run_stream(stream, samples)
    times, posteriors, _ = stream.history()
    return times, posteriors


def _validation_runs(
    stream,
    engine: str,
    voices: Sequence[str],
    seed: int,
    speech_minutes: float,
    noise_minutes: float,
) -> dict[str, _Run]:
    """The four validation streams through ``stream``, by name.

    Returns:
        ``{name: (times, posteriors, events, seconds)}`` for ``isolated``,
        ``phrases``, ``sentences`` and ``noise`` (rendered in that order).
    """
    repeats = held_out.keyword_repeats(held_out.MIN_KEYWORDS, voices)
    iso = ev.keyword_stream(ev.KEYWORDS, voices, seed, repeats=repeats, engine=engine)
    phr = held_out.phrase_stream(engine, voices, seed, repeats)
    sent = (held_out.sentence_stream(engine, voices, speech_minutes, seed), [])
    noise = (ev.noise_stream(noise_minutes, seed), [])
    return {
        name: (*_posteriors(stream, samples), events, samples.size / ev.SAMPLE_RATE)
        for name, (samples, events) in
        (("isolated", iso), ("phrases", phr), ("sentences", sent), ("noise", noise))
    }  # fmt: skip


def _score_setting(
    labels: Sequence[str],
    setting: dict[str, Any],
    runs: dict[str, _Run],
    tolerance_s: float,
) -> dict[str, Any]:
    """One grid row: ``setting`` with its recall and false rates on every run."""
    row: dict[str, Any] = dict(setting)
    for name, (times, post, events, seconds) in runs.items():
        found = RecognizeCommands(labels, **setting).process_many(post, times)
        score = ev.score_detections(found, events, tolerance_s, seconds)
        row[name] = {
            "recall": score["recall"],
            "false_per_minute": score["false_per_minute"],
        }
    row["recall"] = 0.5 * (row["isolated"]["recall"] + row["phrases"]["recall"])
    row["speech_false_per_minute"] = row["sentences"]["false_per_minute"]
    row["noise_false"] = row["noise"]["false_per_minute"] > 0
    return row


def _choose_setting(
    grid: list[dict[str, Any]], max_false_per_minute: float
) -> tuple[dict[str, Any], bool]:
    """The best grid row and whether it met the false-detection budget."""
    ok = [
        r
        for r in grid
        if r["speech_false_per_minute"] <= max_false_per_minute and not r["noise_false"]
    ]
    if ok:
        best = max(ok, key=lambda r: (r["recall"], -r["speech_false_per_minute"]))
    else:
        best = min(grid, key=lambda r: (r["noise_false"], r["speech_false_per_minute"],
                                        -r["recall"]))  # fmt: skip
    return best, bool(ok)


def tune(
    model_dir: str | os.PathLike,
    engine: str = "espeak",
    voices: Sequence[str] | None = None,
    seed: int = 1,
    speech_minutes: float = 3.0,
    noise_minutes: float = 10.0,
    max_false_per_minute: float = DEFAULT_MAX_FALSE_PER_MINUTE,
    windows_ms: Sequence[float] = WINDOWS_MS,
    thresholds: Sequence[float] = THRESHOLDS,
    suppression_ms: float = DEFAULT_SUPPRESSION_MS,
    minimum_count: int = DEFAULT_MINIMUM_COUNT,
    tolerance_s: float = ev.DEFAULT_TOLERANCE_S,
) -> dict[str, Any]:
    """Scores every grid setting on validation streams; the choice and the grid.

    Raises:
        ValueError: an empty grid or a negative ``max_false_per_minute``.
    """
    from .runner import KWSStream

    if not windows_ms or not thresholds:
        raise ValueError("tune: windows_ms and thresholds must not be empty")
    if not max_false_per_minute >= 0:
        raise ValueError(
            f"tune: max_false_per_minute must be >= 0, got {max_false_per_minute}"
        )
    voices = list(voices) if voices else validation_voices()
    stream = KWSStream.from_dir(model_dir, history_frames=None)
    t0 = time.perf_counter()
    runs = _validation_runs(stream, engine, voices, seed, speech_minutes, noise_minutes)
    grid = [
        _score_setting(
            stream.labels,
            {
                "average_window_ms": float(window),
                "detection_threshold": float(threshold),
                "suppression_ms": float(suppression_ms),
                "minimum_count": int(minimum_count),
            },
            runs,
            tolerance_s,
        )
        for window in windows_ms
        for threshold in thresholds
    ]
    best, qualified = _choose_setting(grid, max_false_per_minute)
    keys = ("average_window_ms", "detection_threshold", "suppression_ms",
            "minimum_count")  # fmt: skip
    return {
        "model_dir": os.fspath(model_dir),
        "smoothing": {k: best[k] for k in keys},
        "chosen_by": {
            "engine": engine,
            "voices": voices,
            "seed": seed,
            "max_false_per_minute": max_false_per_minute,
            "qualified": qualified,
            "recall": best["recall"],
            "speech_false_per_minute": best["speech_false_per_minute"],
        },
        "grid": grid,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def write_smoothing(model_dir: str | os.PathLike, result: dict[str, Any]) -> str:
    """Stores ``result``'s choice as ``metadata.json``'s ``smoothing`` (atomically).

    The file is read and written as the contract's
    :class:`~lmuformer_keras.contract.ExportMetadata` (a version-1 file is written
    back as version 2).
    """
    path = os.path.join(os.fspath(model_dir), "metadata.json")
    metadata = ExportMetadata.load(path)
    smoothing = dict(result["smoothing"], chosen_by=result["chosen_by"])
    return metadata.replace(smoothing=smoothing).save(path)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lmuformer_apps.kws_stream.tune_smoothing --model_dir DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m lmuformer_apps.kws_stream.tune_smoothing",
        description="Choose the detection smoothing of an exported keyword spotter "
        "on validation voices (and optionally write it into its metadata.json).",
    )
    parser.add_argument("--model_dir", required=True, help="lmuformer-export folder")
    parser.add_argument("--engine", default="espeak",
                        help="engine of the validation voices")  # fmt: skip
    parser.add_argument("--voices", default=None, help="comma-separated; default: "
                        "the synthetic set's espeak-ng validation voices")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speech_minutes", type=float, default=3.0)
    parser.add_argument("--noise_minutes", type=float, default=10.0)
    parser.add_argument("--max_false_per_minute", type=float,
                        default=DEFAULT_MAX_FALSE_PER_MINUTE)  # fmt: skip
    parser.add_argument("--write", action="store_true",
                        help="write the choice into metadata.json")  # fmt: skip
    parser.add_argument("--out", default=None, help="write the whole grid JSON here")
    args = parser.parse_args(argv)
    voices = args.voices.split(",") if args.voices else None
    if args.engine == "espeak" and voices is None:
        voices = validation_voices()
    elif voices is None:
        voices = held_out.engine_voices(args.engine)
    try:
        result = tune(
            args.model_dir,
            engine=args.engine,
            voices=voices,
            seed=args.seed,
            speech_minutes=args.speech_minutes,
            noise_minutes=args.noise_minutes,
            max_false_per_minute=args.max_false_per_minute,
        )
    except (ValueError, ImportError, FileNotFoundError, RuntimeError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    c, s = result["chosen_by"], result["smoothing"]
    print(
        f"smoothing for {args.model_dir}: average_window_ms "
        f"{s['average_window_ms']:g}, detection_threshold "
        f"{s['detection_threshold']:g} (validation: {c['engine']}, "
        f"{len(c['voices'])} voices; mean keyword recall {c['recall']:.1%}, "
        f"{c['speech_false_per_minute']:.2f} false/min of non-keyword speech"
        + ("" if c["qualified"] else "; no setting met the false-detection budget")
        + ")"
    )
    if args.out:
        ev._write_report(args.out, result)
    if args.write:
        print(f"wrote {write_smoothing(args.model_dir, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
