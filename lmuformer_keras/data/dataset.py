"""The common return type of every dataset loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Dataset:
    """Train / validation / test arrays plus what is needed to use them.

    Attributes:
        x_train, x_val, x_test: float32 ``(N, T, F)`` sequences (frames x features).
        y_train, y_val, y_test: int64 ``(N,)`` class indices into ``labels``.
        labels: class names, index = class id.
        frontend: the frontend params dict used for the features (``None`` for data
            that are not audio).
        summary: counts and provenance (files read / skipped, split sizes, seeds, ...).
        name: short dataset name.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels: list[str]
    frontend: dict[str, Any] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, ``(T, F)``."""
        return tuple(self.x_train.shape[1:])

    def splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{"train": (x, y), "val": (x, y), "test": (x, y)}``."""
        return {
            "train": (self.x_train, self.y_train),
            "val": (self.x_val, self.y_val),
            "test": (self.x_test, self.y_test),
        }

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={self.x_train.shape}, "
            f"val={self.x_val.shape}, test={self.x_test.shape}, "
            f"classes={self.num_classes})"
        )
