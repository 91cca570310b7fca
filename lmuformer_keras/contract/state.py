"""``StateSpec``: one streaming state of a model, as the step graph carries it."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class StateSpec:
    """One streaming state: its name, shape without the batch axis, and dtype.

    The step graph's state input ``i`` has shape ``(batch, *state_specs[i].shape)``;
    in an export (batch 1) its tensor is ``(1, *shape)``.

    Attributes:
        name: Unique name, e.g. ``"block0_token_mixer/memory/m"``.
        shape: Shape without the batch axis (ints).
        dtype: Float dtype of the state in the Keras model (``"float32"``).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"StateSpec: name must be a non-empty string, got "
                             f"name={self.name!r}")  # fmt: skip
        try:
            shape = tuple(int(d) for d in self.shape)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"StateSpec '{self.name}': shape must be a sequence of integers, got "
                f"shape={self.shape!r}"
            ) from error
        if any(d < 1 for d in shape):
            raise ValueError(f"StateSpec '{self.name}': shape entries must be >= 1, "
                             f"got shape={shape}")  # fmt: skip
        object.__setattr__(self, "shape", shape)
        dtype = self.dtype if isinstance(self.dtype, str) else np.dtype(self.dtype).name
        object.__setattr__(self, "dtype", dtype)

    def tensor_shape(self, batch_size: int = 1) -> tuple[int, ...]:
        """The state tensor's shape with the batch axis."""
        return (int(batch_size), *self.shape)
