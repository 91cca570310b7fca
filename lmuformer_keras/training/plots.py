"""PNG plots of a run: learning curves and streaming accuracy (matplotlib, Agg)."""

from __future__ import annotations

from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_curves(
    history: list[dict[str, Any]], path: str, title: str = "", augmented: bool = False
) -> None:
    """Loss and accuracy (train / validation) per epoch.

    Training metrics are those of the (``augmented``) training batches, averaged
    over the epoch while the weights change.
    """
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            values = [row.get(key) for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, marker=".", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_title("loss")
    axes[1].set_title("accuracy" + (" (train: augmented batches)" if augmented else ""))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_streaming(result: dict[str, Any], path: str, title: str = "") -> None:
    """Accuracy versus frames seen, with the full accuracy and the 1-point band."""
    plt = _pyplot()
    frames = result["frames"]
    acc = [100 * a for a in result["accuracy"]]
    full = 100 * result["full_accuracy"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(frames, acc, label="causal prefix-mean decision")
    ax.axhline(full, color="gray", ls="--", lw=1, label=f"all frames: {full:.2f}%")
    ax.axhline(full - 1, color="gray", ls=":", lw=1, label="1 point below")
    t1 = result["frames_within_1_point"]
    ax.axvline(t1, color="C1", ls=":", lw=1, label=f"within 1 point from {t1} frames")
    tp = result["frames_at_paper_fraction"]
    ax.plot(
        [tp],
        [100 * result["accuracy_at_paper_fraction"]],
        "o",
        color="C2",
        label=f"{tp}/{result['num_frames']} frames (paper's 87/128)",
    )
    hop = result.get("frame_hop_ms")
    ax.set_xlabel("frames seen" + (f" ({hop:g} ms each)" if hop else ""))
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(max(0.0, min(acc) - 5), 100.5)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or "streaming accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
