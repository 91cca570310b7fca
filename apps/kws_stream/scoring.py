"""Detections of a streaming keyword spotter matched with the keywords spoken.

:func:`score_detections` needs NumPy only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .smoothing import (
    Detection,
    is_ignored_label,
)

DEFAULT_TOLERANCE_S = 0.5


def _detection_label_time(
    detection: Detection | tuple[str, float],
) -> tuple[str, float]:
    if isinstance(detection, Detection):
        return detection.label, detection.time_ms / 1000.0
    label, time_s = detection
    return str(label), float(time_s)


def _kept_detections(
    detections: Iterable[Detection | tuple[str, float]],
) -> list[tuple[str, float]]:
    """``(label, time_s)`` of the detections in time order, ignored labels dropped."""
    found = sorted((_detection_label_time(d) for d in detections), key=lambda lt: lt[1])
    return [(label, t) for label, t in found if not is_ignored_label(label)]


def _checked_events(
    events: Sequence[tuple[str, float, float]],
) -> list[tuple[str, float, float]]:
    """The events as ``(str, float, float)`` in order of start; none may end early.

    Raises:
        ValueError: an event that ends before it starts.
    """
    events = sorted(
        ((str(label), float(a), float(b)) for label, a, b in events),
        key=lambda e: e[1],
    )
    for label, a, b in events:
        if b < a:
            raise ValueError(
                f"score_detections: event ({label!r}, {a}, {b}) ends before it starts"
            )
    return events


def _match(
    found: Sequence[tuple[str, float]],
    events: Sequence[tuple[str, float, float]],
    tolerance_s: float,
) -> tuple[
    dict[str, dict[str, int]],
    list[float],
    list[tuple[str, float, float]],
    list[tuple[str, float]],
]:
    """Each event hit by the earliest unused detection of its label in its window.

    Returns:
        ``(per_word, latencies, missed, false)``: counts per label, the latency of
        every hit, the missed events and the detections that hit nothing.
    """
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
    return per_word, latencies, missed, false


def _latency_summary(latencies: Sequence[float]) -> dict[str, float] | None:
    """``mean``, ``median``, ``min`` and ``max`` of the latencies; ``None`` if none."""
    if not latencies:
        return None
    lat = np.asarray(latencies)
    return {
        "mean": float(lat.mean()),
        "median": float(np.median(lat)),
        "min": float(lat.min()),
        "max": float(lat.max()),
    }


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
    found = _kept_detections(detections)
    events = _checked_events(events)
    per_word, latencies, missed, false = _match(found, events, tolerance_s)
    if duration_s is None:
        ends = [b + tolerance_s for _, _, b in events] + [t for _, t in found]
        duration_s = max(ends, default=0.0)
    if duration_s < 0:
        raise ValueError(
            f"score_detections: duration_s must be >= 0, got duration_s={duration_s}"
        )
    minutes = duration_s / 60.0
    hits = len(latencies)
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
        "latency_s": _latency_summary(latencies),
        "missed": missed,
        "false": false,
    }
