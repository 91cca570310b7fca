"""A small stderr progress bar shared by the features and data packages."""

from __future__ import annotations

import sys
import time
from typing import IO

from lmuformer_keras.console import is_tty


class Progress:
    """Minimal stderr progress bar (no Keras import, so it is cheap in workers).

    On a terminal the bar is redrawn in place (carriage returns), at most twice a
    second. Anywhere else (a log file, a pipe) it writes no carriage return: one
    line when about a tenth more is done, at most every 10 seconds, and the last
    line at the end.

    Args:
        total: the number of items.
        label: printed before the count.
        stream: where to write (default: ``sys.stderr`` at each update).
    """

    def __init__(self, total: int, label: str, stream: IO | None = None):
        self.total, self.label = max(total, 1), label
        self._stream = stream
        self._start = time.time()
        self._last = -1.0
        self._last_done = 0

    @property
    def stream(self) -> IO:
        return sys.stderr if self._stream is None else self._stream

    def update(self, done: int) -> None:
        """Redraws (terminal) or logs a line (elsewhere); always at the end."""
        stream, now = self.stream, time.time()
        finished = done >= self.total
        if is_tty(stream):
            if not finished and now - self._last < 0.5:
                return
            bar = "=" * int(30 * done / self.total)
            line = f"\r{self.label} {done}/{self.total} [{bar:<30}]"
            stream.write(f"{line} {now - self._start:.1f}s")
            if finished:
                stream.write("\n")
        else:
            step = max(self.total // 10, 1)
            if not finished and (
                done - self._last_done < step or now - self._last < 10.0
            ):
                return
            if done == self._last_done and self._last >= 0:
                return
            self._last_done = done
            stream.write(f"{self.label} {done}/{self.total} {now - self._start:.1f}s\n")
        self._last = now
        stream.flush()
