"""PNG of posteriors over time with the detections marked (matplotlib, Agg canvas)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .smoothing import Detection, is_ignored_label


def save_posteriors_png(
    path: str | os.PathLike,
    times_ms: np.ndarray,
    posteriors: np.ndarray,
    smoothed: np.ndarray,
    labels: Sequence[str],
    detections: Sequence[Detection],
    threshold: float | None = None,
    title: str = "",
) -> str:
    """Two panels: per-frame posteriors and smoothed scores; detections as lines.

    Uses an Agg canvas directly (no pyplot, no global backend change).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t = np.asarray(times_ms, dtype=np.float64) / 1000.0
    fig = Figure(figsize=(10, 5.5), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1, sharex=True)
    for ax, values, name in (
        (axes[0], posteriors, "frame posterior"),
        (axes[1], smoothed, "smoothed score"),
    ):
        values = np.asarray(values, dtype=np.float64)
        for c, label in enumerate(labels):
            if values.shape[0]:
                ignored = is_ignored_label(label)
                # matplotlib hides legend labels starting with "_"
                name_shown = f"{label.strip('_')} (ignored)" if ignored else label
                style = ":" if ignored else "-"
                ax.plot(t, values[:, c], style, linewidth=1.0, label=name_shown)
        ax.set_ylabel(name)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(True, alpha=0.3)
        for d in detections:
            ax.axvline(d.time_ms / 1000.0, color="red", alpha=0.6, linewidth=1.0)
    if threshold is not None:
        axes[1].axhline(threshold, color="black", linestyle="--", linewidth=0.8)
    for d in detections:
        axes[1].annotate(
            d.label,
            (d.time_ms / 1000.0, 1.0),
            color="red",
            fontsize=8,
            rotation=90,
            va="top",
            ha="right",
        )
    axes[1].set_xlabel("time (s)")
    if len(labels) <= 16:
        axes[0].legend(loc="upper right", fontsize=7, ncol=min(len(labels), 6))
    fig.suptitle(title or f"{len(detections)} detection(s)")
    fig.tight_layout()
    path = os.fspath(path)
    fig.savefig(path)
    return path
