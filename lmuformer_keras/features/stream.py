"""``FrontendStream``: a :class:`~.base.Frontend` fed audio in chunks (streaming)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lmuformer_keras.features.base import Frontend


class FrontendStream:
    """Incremental frontend: push audio chunks, get the frames that became complete.

    A frame is emitted as soon as its ``frame_length`` samples are buffered, then one
    per further ``frame_step`` samples. Frames are normalised and never padded. Equal to
    ``frontend(x, pad=False)`` on the concatenated audio (for ``remove_clip_mean``
    frontends only because they also remove the DC offset per frame, which cancels a
    constant offset exactly; the difference is float rounding).
    """

    def __init__(self, frontend: Frontend):
        self.frontend = frontend
        self._buffer = np.zeros(0, dtype=np.float64)

    def reset(self) -> None:
        """Drops buffered samples."""
        self._buffer = np.zeros(0, dtype=np.float64)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Adds samples; returns the new frames, shape ``(k, num_features)`` float32.

        Raises:
            ValueError: non-finite (NaN / inf) float samples in the chunk.
        """
        x = self.frontend._to_float(samples, "streamed chunk")
        self._buffer = np.concatenate([self._buffer, x])
        p = self.frontend.params
        n = self.frontend.num_frames(self._buffer.shape[0], pad=False)
        if n == 0:
            return np.zeros((0, self.frontend.num_features), dtype=np.float32)
        used = self._buffer[: (n - 1) * p["frame_step"] + p["frame_length"]]
        feats = self.frontend._normalise(self.frontend._log_mel(used))
        self._buffer = self._buffer[n * p["frame_step"] :]
        return feats.astype(np.float32)
