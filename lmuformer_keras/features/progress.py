"""A small stderr progress bar shared by the features and data packages."""

from __future__ import annotations

import sys
import time


class Progress:
    """Minimal stderr progress bar (no Keras import, so it is cheap in workers)."""

    def __init__(self, total: int, label: str):
        self.total, self.label = max(total, 1), label
        self._start = time.time()
        self._last = -1.0

    def update(self, done: int) -> None:
        """Redraws at most twice a second, and always at the end."""
        now = time.time()
        if done < self.total and now - self._last < 0.5:
            return
        self._last = now
        bar = "=" * int(30 * done / self.total)
        sys.stderr.write(
            f"\r{self.label} {done}/{self.total} [{bar:<30}] {now - self._start:.1f}s"
        )
        if done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()
