"""A streaming keyword spotter judged on the voices of one text-to-speech engine.

``python -m lmuformer_apps.kws_stream.evaluate --model_dir DIR --engine E`` renders
four streams with engine ``E``'s voices (fresh draws, never the training renderings:
``evaluate.EVAL_K_OFFSET``; non-keyword text from the *evaluation* half of the
vocabulary, ``word_lists.vocabulary_split``, which the synthetic set never speaks)
and reports, through :class:`~.runner.KWSStream` with the given smoothing:

- **isolated keywords** (:func:`evaluate.keyword_stream`): recall within
  ``tolerance_s`` of each word's end;
- **keywords in phrases** (:func:`phrase_stream`): each keyword at the end of a short
  phrase or inside one (non-keyword words before and after), rendered as *one*
  utterance, so the keyword is coarticulated; its start and end are estimated from
  renderings of the phrase's prefix alone and of the prefix with the keyword
  (``PHRASE_START_SLACK_S`` earlier than the prefix's end);
- **non-keyword sentences** (:func:`sentence_stream`): false detections per minute;
- **noise only** (:func:`evaluate.noise_stream`): false detections per hour;
- the **confusion matrix** of the keywords of both keyword streams: per spoken
  keyword, the first detection in its window (or ``"miss"``).

``leave_one_out_table`` formats reports of models trained without the engine (see
``scripts/leave_one_engine_out.sh``) against the goals of the keyword-spotting issue:
recall >= 95 %, <= 0.2 false detections per minute of non-keyword speech, none in
noise.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import evaluate as ev
from . import scoring, synthetic_streams
from .confidence import poisson_rate_interval, wilson_interval

PHRASE_START_SLACK_S = 0.15
GOALS = {"recall": 0.95, "speech_false_per_minute": 0.2, "noise_false_per_hour": 0.0}
MIN_KEYWORDS = 50


def engine_voices(engine: str) -> list[str]:
    """The voices an engine is judged on: espeak-ng's held-out test voices, else all."""
    if engine == "espeak":
        return list(ev.default_test_voices())
    from lmuformer_keras.data import tts

    return list(tts.get_engine(engine).voices())


def _eval_sentences(count: int, rng: np.random.Generator, length=(3, 9)) -> list[str]:
    from lmuformer_keras.data import word_lists

    return word_lists.negative_sentences(
        ev.KEYWORDS, count, rng, split="eval", length=length
    )


def phrase_stream(
    engine: str,
    voices: Sequence[str],
    seed: int = 0,
    repeats: int = 1,
    noise_dbfs: float = ev.DEFAULT_NOISE_DBFS,
    snr_db: tuple[float, float] = ev.DEFAULT_SNR_DB,
) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Keywords at the end of / inside phrases, 1-2 s apart over noise.

    Returns:
        ``(samples int16, events)`` with ``(keyword, start_s, end_s)`` per phrase.
    """
    rng = np.random.default_rng([int(seed), 5])
    plan = []
    for k in range(int(repeats)):
        for v_index, voice in enumerate(voices):
            for w_index, word in enumerate(ev.KEYWORDS):
                inside = bool((k + v_index + w_index) % 2)
                prefix, suffix = _eval_sentences(2, rng, length=(1, 4))
                plan.append((word, voice, k, prefix, suffix if inside else ""))
    items = []
    for i, (word, voice, _, prefix, suffix) in enumerate(plan):
        full = " ".join(t for t in (prefix, word, suffix) if t)
        items += [(full, voice, i), (prefix, voice, i), (f"{prefix} {word}", voice, i)]
    speech = ev.render_words(items, seed, engine=engine)
    order = rng.permutation(len(plan))
    noise_rms = 10.0 ** (noise_dbfs / 20.0)
    placed, events = [], []
    t = 0
    for i in order:
        word = plan[i][0]
        full, prefix, with_kw = speech[3 * i : 3 * i + 3]
        x = np.array(full)
        x *= noise_rms * 10.0 ** (rng.uniform(*snr_db) / 20.0) / np.sqrt(np.mean(x**2))
        x *= min(1.0, 10.0 ** (ev.PEAK_LIMIT_DBFS / 20.0) / np.abs(x).max())
        t += int(rng.uniform(*ev.DEFAULT_GAP_S) * ev.SAMPLE_RATE)
        start = max(prefix.size / ev.SAMPLE_RATE - PHRASE_START_SLACK_S, 0.0)
        end = min(with_kw.size, full.size) / ev.SAMPLE_RATE
        placed.append((t, x))
        base = t / ev.SAMPLE_RATE
        events.append((word, base + start, base + max(end, start)))
        t += x.size
    return _mix(placed, t, noise_rms, rng), events


def sentence_stream(
    engine: str,
    voices: Sequence[str],
    minutes: float,
    seed: int = 0,
    noise_dbfs: float = ev.DEFAULT_NOISE_DBFS,
    snr_db: tuple[float, float] = ev.DEFAULT_SNR_DB,
) -> np.ndarray:
    """``minutes`` of non-keyword sentences (evaluation vocabulary), 0.2-1.5 s apart."""
    if not minutes > 0:
        raise ValueError(f"sentence_stream: minutes must be > 0, got {minutes}")
    rng = np.random.default_rng([int(seed), 6])
    count = max(1, int(math.ceil(minutes * 60.0 / 3.0)))
    texts = _eval_sentences(count, rng)
    items = [(t, voices[i % len(voices)], i) for i, t in enumerate(texts)]
    speech = ev.render_words(items, seed, engine=engine)
    noise_rms = 10.0 ** (noise_dbfs / 20.0)
    target = int(minutes * 60.0 * ev.SAMPLE_RATE)
    placed, t, i = [], 0, 0
    while t < target:
        x = np.array(speech[i % len(speech)])
        i += 1
        x *= noise_rms * 10.0 ** (rng.uniform(*snr_db) / 20.0) / np.sqrt(np.mean(x**2))
        x *= min(1.0, 10.0 ** (ev.PEAK_LIMIT_DBFS / 20.0) / np.abs(x).max())
        t += int(rng.uniform(0.2, 1.5) * ev.SAMPLE_RATE)
        placed.append((t, x))
        t += x.size
    return _mix(placed, t, noise_rms, rng)


def _mix(placed, n: int, noise_rms: float, rng: np.random.Generator) -> np.ndarray:
    n += int(2.0 * ev.SAMPLE_RATE)
    out = noise_rms * synthetic_streams._noise_bed(n / ev.SAMPLE_RATE, rng)
    for start, x in placed:
        out[start : start + x.size] += x
    return synthetic_streams._to_int16(out)


def confusion(
    detections, events: Sequence[tuple[str, float, float]], tolerance_s: float
) -> dict[str, dict[str, int]]:
    """``{spoken: {detected or "miss": count}}``: the first keyword detection in each
    event's window ``[start, end + tolerance_s]``."""
    found = sorted(
        (scoring._detection_label_time(d) for d in detections), key=lambda lt: lt[1]
    )
    found = [(lab, t) for lab, t in found if not ev.is_ignored_label(lab)]
    table: dict[str, dict[str, int]] = {}
    for label, a, b in events:
        row = table.setdefault(label, {})
        hit = next((lab for lab, t in found if a <= t <= b + tolerance_s), "miss")
        row[hit] = row.get(hit, 0) + 1
    return dict(sorted(table.items()))


def keyword_repeats(min_keywords: int, voices: Sequence[str]) -> int:
    """How often a keyword stream speaks every keyword in every voice to hold at
    least ``min_keywords`` keywords (at least once).

    Raises:
        ValueError: ``min_keywords`` is not an integer >= 1.
    """
    if (
        isinstance(min_keywords, bool)
        or not isinstance(min_keywords, int)
        or (min_keywords < 1)
    ):
        raise ValueError(f"min_keywords must be an integer >= 1, got {min_keywords!r}")
    return max(1, math.ceil(min_keywords / (len(ev.KEYWORDS) * len(voices))))


def evaluate_engine(
    model_dir: str | os.PathLike,
    engine: str,
    voices: Sequence[str] | None = None,
    seed: int = 0,
    speech_minutes: float = 5.0,
    noise_minutes: float = 60.0,
    tolerance_s: float = ev.DEFAULT_TOLERANCE_S,
    min_keywords: int = MIN_KEYWORDS,
    **smoothing: Any,
) -> dict[str, Any]:
    """All four streams of ``engine`` through the model; a JSON-ready report.

    Each keyword stream speaks every keyword in every voice, repeated (each time a
    fresh rendering) until it holds at least ``min_keywords`` keywords.
    """
    from .runner import KWSStream

    voices = list(voices) if voices else engine_voices(engine)
    repeats = keyword_repeats(min_keywords, voices)
    stream = KWSStream.from_dir(model_dir, history_frames=0, **smoothing)
    t0 = time.perf_counter()
    iso, iso_events = ev.keyword_stream(
        ev.KEYWORDS, voices, seed, repeats=repeats, engine=engine
    )
    phr, phr_events = phrase_stream(engine, voices, seed, repeats)
    sent = sentence_stream(engine, voices, speech_minutes, seed)
    noise = ev.noise_stream(noise_minutes, seed)
    build_s = time.perf_counter() - t0
    report: dict[str, Any] = {"model_dir": os.fspath(model_dir), "engine": engine,
                              "voices": voices, "seed": seed}  # fmt: skip
    t0 = time.perf_counter()
    matrix: dict[str, dict[str, int]] = {}
    for name, samples, events in (
        ("isolated", iso, iso_events),
        ("phrases", phr, phr_events),
        ("sentences", sent, []),
        ("noise", noise, []),
    ):
        found = ev.run_stream(stream, samples)
        result = ev.score_detections(
            found, events, tolerance_s, duration_s=samples.size / ev.SAMPLE_RATE
        )
        result.pop("missed")
        result["false"] = result["false"][:50]
        report[name] = result
        for spoken, row in confusion(found, events, tolerance_s).items():
            for got, n in row.items():
                matrix.setdefault(spoken, {})
                matrix[spoken][got] = matrix[spoken].get(got, 0) + n
    sm = stream.smoother
    report.update(
        confusion=dict(sorted(matrix.items())),
        smoothing={
            "average_window_ms": sm.average_window_ms,
            "detection_threshold": sm.detection_threshold,
            "suppression_ms": sm.suppression_ms,
            "minimum_count": sm.minimum_count,
        },
        summary=summarize(report),
        build_seconds=round(build_s, 1),
        stream_seconds=round(time.perf_counter() - t0, 1),
    )
    return report


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The figures the goals are stated in, and whether each is met."""
    iso, phr = report["isolated"], report["phrases"]
    out = {
        "isolated_recall": iso["recall"],
        "phrase_recall": phr["recall"],
        "keywords": iso["keywords"] + phr["keywords"],
        "keyword_stream_false_per_minute": (
            (iso["false_detections"] + phr["false_detections"])
            / max(iso["minutes"] + phr["minutes"], 1e-9)
        ),
        "speech_false_per_minute": report["sentences"]["false_per_minute"],
        "speech_minutes": report["sentences"]["minutes"],
        "noise_false_per_hour": report["noise"]["false_per_minute"] * 60.0,
        "noise_hours": report["noise"]["minutes"] / 60.0,
        **intervals(report),
    }
    out["meets"] = {
        "recall": min(out["isolated_recall"], out["phrase_recall"]) >= GOALS["recall"],
        "speech_false_per_minute": out["speech_false_per_minute"]
        <= GOALS["speech_false_per_minute"],
        "noise_false_per_hour": out["noise_false_per_hour"]
        <= GOALS["noise_false_per_hour"],
    }
    return out


def intervals(report: dict[str, Any]) -> dict[str, list[float]]:
    """95 % intervals of the summary's figures, from the report's counts.

    Recall: Wilson score intervals of hits / keywords; false detections: exact
    Poisson intervals per minute of non-keyword speech and per hour of noise
    (:mod:`.confidence`).
    """
    out = {}
    for name in ("isolated", "phrases"):
        r = report[name]
        key = "isolated_recall" if name == "isolated" else "phrase_recall"
        out[f"{key}_ci95"] = list(wilson_interval(r["hits"], r["keywords"]))
    for name, key, per in (
        ("sentences", "speech_false_per_minute", 1.0),
        ("noise", "noise_false_per_hour", 60.0),
    ):
        r = report[name]
        out[f"{key}_ci95"] = list(
            poisson_rate_interval(r["false_detections"], r["minutes"] / per)
        )
    return out


def format_report(report: dict[str, Any]) -> str:
    """Human-readable lines: the summary and the confusion matrix."""
    s, ci = report["summary"], intervals(report)
    iso, phr = ci["isolated_recall_ci95"], ci["phrase_recall_ci95"]
    speech = ci["speech_false_per_minute_ci95"]
    lines = [
        f"engine {report['engine']} ({len(report['voices'])} voices): isolated "
        f"keywords {report['isolated']['hits']}/{report['isolated']['keywords']} "
        f"({s['isolated_recall']:.1%}, 95% interval {iso[0]:.1%}-{iso[1]:.1%}), in "
        f"phrases {report['phrases']['hits']}/{report['phrases']['keywords']} "
        f"({s['phrase_recall']:.1%}, {phr[0]:.1%}-{phr[1]:.1%}); false "
        f"detections: {s['speech_false_per_minute']:.2f}/min ({speech[0]:.2f}-"
        f"{speech[1]:.2f}) in {s['speech_minutes']:.1f} min of non-keyword sentences, "
        f"{s['noise_false_per_hour']:.1f}/h in {s['noise_hours']:.2f} h of noise, "
        f"{s['keyword_stream_false_per_minute']:.2f}/min in the keyword streams",
        "confusion (spoken -> first detection in its window):",
    ]
    cols = [*ev.KEYWORDS, "miss"]
    lines.append("  " + " " * 6 + "".join(f"{c:>6}" for c in cols))
    for spoken, row in report["confusion"].items():
        lines.append(f"  {spoken:>6}" + "".join(f"{row.get(c, 0):>6}" for c in cols))
    return "\n".join(lines)


SEPARABILITY_BUDGETS: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)


def best_recall_within(
    grid: Sequence[dict[str, Any]], budgets: Sequence[float] = SEPARABILITY_BUDGETS
) -> list[float | None]:
    """Per budget, the best ``recall`` of a ``tune_smoothing`` grid within it.

    ``grid`` is the ``grid`` of ``tune_smoothing --out``: one entry per smoothing
    setting with its ``recall`` and ``speech_false_per_minute``; ``None`` where no
    setting has at most that many false detections per minute.
    """
    out: list[float | None] = []
    for budget in budgets:
        within = [g["recall"] for g in grid if g["speech_false_per_minute"] <= budget]
        out.append(max(within) if within else None)
    return out


def leave_one_out_table(
    reports: Sequence[dict[str, Any]], models: Sequence[str] | None = None
) -> str:
    """A Markdown table, one row per held-out engine report.

    Args:
        reports: :func:`evaluate_engine` reports, each of a model trained without
            its ``engine``.
        models: a name per report (e.g. its training mode) for a ``model`` column.
    """
    if models is not None and len(models) != len(reports):
        raise ValueError(
            f"leave_one_out_table: {len(models)} model names for {len(reports)} reports"
        )
    first = "| held-out engine | model " if models is not None else "| held-out engine "
    head = (
        f"{first}| voices | isolated recall | recall in phrases | false / "
        "min, non-keyword speech | false / h, noise | goals met |\n"
        + "|---" * (8 if models is not None else 7)
        + "|"
    )
    rows = [head]
    for i, r in enumerate(reports):
        s, ci = r["summary"], intervals(r)
        met = [k for k, ok in s["meets"].items() if ok]
        model = f" {models[i]} |" if models is not None else ""
        iso, phr = ci["isolated_recall_ci95"], ci["phrase_recall_ci95"]
        speech = ci["speech_false_per_minute_ci95"]
        rows.append(
            f"| {r['engine']} |{model} {len(r['voices'])} | "
            f"{s['isolated_recall']:.1%} ({iso[0]:.0%}-{iso[1]:.0%}) | "
            f"{s['phrase_recall']:.1%} ({phr[0]:.0%}-{phr[1]:.0%}) | "
            f"{s['speech_false_per_minute']:.2f} ({speech[0]:.2f}-{speech[1]:.2f}) | "
            f"{s['noise_false_per_hour']:.1f} | {len(met)}/3 |"
        )
    return "\n".join(rows)
