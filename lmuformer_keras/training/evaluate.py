"""Test-set evaluation, and the clip files that ``lmuformer-export`` reads.

``calibration.npz`` / ``test.npz`` hold ``x`` float32 ``(N, T, F)`` (the model's input
features, unaugmented), ``y`` int64 ``(N,)`` and ``labels`` (class names).
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np

from lmuformer_keras.data import Dataset, one_hot

CALIBRATION_FILE = "calibration.npz"
TEST_FILE = "test.npz"


def predict_frame_logits(
    model: keras.Model, x: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """Per-frame logits ``(N, T, C)`` of the parallel model (compiled ``predict``)."""
    x = np.asarray(x, dtype=np.float32)
    inputs = keras.Input(x.shape[1:], name="features")
    wrapper = keras.Model(inputs, model.frame_logits(inputs, training=False))
    return np.asarray(wrapper.predict(x, batch_size=batch_size, verbose=0))


def evaluate_test(
    model: keras.Model,
    frame_logits: np.ndarray,
    y: np.ndarray,
    loss: keras.losses.Loss,
) -> dict[str, Any]:
    """Accuracy, loss, per-class accuracy and confusion matrix of the clip logits.

    The clip logits are the mean of ``frame_logits`` over frames (``model(x)``);
    the loss is the training loss (``loss``) on one-hot labels.
    """
    logits = frame_logits.mean(axis=1)
    num_classes = logits.shape[-1]
    pred = logits.argmax(axis=-1)
    y = np.asarray(y)
    test_loss = float(
        keras.ops.convert_to_numpy(
            loss(
                keras.ops.convert_to_tensor(one_hot(y, num_classes)),
                keras.ops.convert_to_tensor(logits),
            )
        )
    )
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    labels = getattr(model, "labels", None) or [str(i) for i in range(num_classes)]
    per_class = {
        labels[c]: (
            float(confusion[c, c] / confusion[c].sum()) if confusion[c].sum() else None
        )
        for c in range(num_classes)
    }
    return {
        "test_accuracy": float((pred == y).mean()),
        "test_loss": test_loss,
        "test_clips": int(len(y)),
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
    }


def write_clips(path: str, x: np.ndarray, y: np.ndarray, labels: list[str]) -> None:
    """Writes ``x`` (N, T, F) float32, ``y`` (N,) int64, ``labels`` to ``path``."""
    tmp = path + ".tmp.npz"
    np.savez(
        tmp,
        x=np.asarray(x, dtype=np.float32),
        y=np.asarray(y, dtype=np.int64),
        labels=np.asarray(labels, dtype=str),
    )
    os.replace(tmp, path)


def write_export_clips(
    out: str,
    ds: Dataset,
    calibration_clips: int = 200,
    max_test_clips: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """``out/calibration.npz`` (random training clips) and ``out/test.npz``.

    Args:
        calibration_clips: training clips drawn without replacement (all if fewer).
        max_test_clips: the whole test set if it has at most this many clips, else a
            seeded random subset of this size (``<= 0``: always the whole set).
        seed: the draws' seed.

    Returns:
        What was written (paths, clip counts, whether the test file is a subset).
    """
    rng = np.random.default_rng([seed, 7])
    cal = np.sort(rng.permutation(len(ds.x_train))[:calibration_clips])
    cal_path = os.path.join(out, CALIBRATION_FILE)
    write_clips(cal_path, ds.x_train[cal], ds.y_train[cal], ds.labels)
    n_test = len(ds.x_test)
    if 0 < max_test_clips < n_test:
        keep = np.sort(rng.permutation(n_test)[:max_test_clips])
    else:
        keep = np.arange(n_test)
    test_path = os.path.join(out, TEST_FILE)
    write_clips(test_path, ds.x_test[keep], ds.y_test[keep], ds.labels)
    return {
        "calibration": {"path": cal_path, "clips": int(len(cal)), "split": "train"},
        "test": {
            "path": test_path,
            "clips": int(len(keep)),
            "split": "test",
            "subset": bool(len(keep) < n_test),
        },
    }
