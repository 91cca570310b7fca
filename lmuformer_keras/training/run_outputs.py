"""What one ``lmuformer-train`` run writes into ``--out``, and its ``metrics.json``.

- the output file names, and :data:`RUN_OUTPUTS`: everything a run writes, which
  ``--overwrite`` removes before a new run;
- :func:`build_metrics`: the ``metrics.json`` record (step 5 of
  :func:`lmuformer_keras.training.run_steps.train_and_evaluate`).

Keras is not imported here.
"""

from __future__ import annotations

import time
from typing import Any

from lmuformer_keras.training.run_plan import RunPlan

METRICS_FILE = "metrics.json"
STREAMING_JSON = "streaming_accuracy.json"
STREAMING_PNG = "streaming_accuracy.png"
CURVES_PNG = "curves.png"

# What a run writes into --out (removed by --overwrite before the new run).
RUN_OUTPUTS = (
    "model.keras",
    "model.tmp.keras",
    "history.csv",
    "resume",
    METRICS_FILE,
    STREAMING_JSON,
    STREAMING_PNG,
    CURVES_PNG,
    "calibration.npz",
    "test.npz",
)
_STREAMING_KEYS = (
    "full_accuracy",
    "frames_within_1_point",
    "fraction_within_1_point",
    "frames_at_paper_fraction",
    "accuracy_at_paper_fraction",
    "streamed_clips",
    "max_abs_diff_streaming_vs_parallel",
    "clips_over_tolerance",
    "verified",
)


def build_metrics(
    plan: RunPlan,
    *,
    best: Any,
    ds: Any,
    result: dict,
    test: dict,
    stream: dict,
    clip_files: Any,
    config: dict,
    backend: str,
    dist: dict,
) -> dict[str, Any]:
    """Step 5: the ``metrics.json`` record (same keys and order as ever)."""
    from lmuformer_keras.training import datasets as dsets
    from lmuformer_keras.training import evaluate, trainer

    f = plan.flags
    return {
        "test_accuracy": test["test_accuracy"],
        "test_loss": test["test_loss"],
        "trainable_params": trainer.trainable_params(best),
        "test_clips": test["test_clips"],
        "best_val_accuracy": result["best_val_accuracy"],
        "best_epoch": result["best_epoch"],
        "epochs_completed": result["epochs_completed"],
        "resumed_from_epoch": result["initial_epoch"] if f["resume"] else None,
        "train_seconds": result["seconds"],
        "total_seconds": round(time.time() - plan.start, 2),
        "streaming": {k: stream[k] for k in _STREAMING_KEYS},
        "per_class_accuracy": test["per_class_accuracy"],
        "confusion_matrix": test["confusion_matrix"],
        "config": {
            "preset": plan.preset,
            "overrides": plan.overrides,
            "model": {
                k: v
                for k, v in best.get_config().items()
                if k not in ("labels", "frontend", "trainable", "dtype")
            },
            "labels": best.labels,
            "frontend": best.frontend,
            "flags": f,
            "backend": backend,
            "distribution": dist,
            "recipe": plan.recipe.to_dict(),
            "epochs": plan.epochs,
            "batch_size": plan.batch_size,
            "learning_rate": plan.lr,
            "augmenter": result["augmenter"],
            "distill": config.get("distill"),
            "dataset": dsets.dataset_summary(ds),
        },
        "files": {
            "model": trainer.MODEL_FILE,
            "history": trainer.HISTORY_FILE,
            "curves": CURVES_PNG,
            "streaming_json": STREAMING_JSON,
            "streaming_png": STREAMING_PNG,
            "calibration": evaluate.CALIBRATION_FILE,
            "test": evaluate.TEST_FILE,
            "clips": clip_files,
        },
    }
