"""What the commands print: quiet TensorFlow start-up, log-file-friendly progress.

The commands (``lmuformer-train``, ``lmuformer-export``, ``lmuformer-stream``,
``python -m lmuformer_apps.kws_stream.evaluate``) call :func:`quiet_tensorflow` before
TensorFlow is imported, so a user sees the command's own lines, not the runtime's:

- ``TF_CPP_MIN_LOG_LEVEL=2`` (unless set): no oneDNN/CPU-feature/CUDA start-up lines;
- absl logging at ERROR: no ``WARNING:absl:`` lines from the TFLite converter (the
  export converts without ``trackable_obj`` on purpose: with it, weights stay
  variables and int8 calibration fails, see :mod:`lmuformer_export.tf_convert`);
- warnings the converter gives on every export (inputs quantized from the
  representative set, not from given statistics) are ignored.

Lines the TFLite C++ code writes straight to the stderr descriptor (``fully_quantize:
...``, ``INFO: Created TensorFlow Lite XNNPACK delegate``) pass through
:func:`filtered_stderr`, which keeps every other line.

Progress: Keras' progress bar redraws with carriage returns; in a log file that is one
long line per epoch. :func:`keras_verbose` gives ``1`` (the bar) on a terminal and
``2`` (one line per epoch) otherwise, and :class:`lmuformer_keras.features.progress.
Progress` redraws only on a terminal.

This module imports no TensorFlow or Keras.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from typing import IO

# Lines TensorFlow / LiteRT write to the stderr descriptor that tell a user nothing.
NOISE_LINES = (
    r"^fully_quantize: \d+, inference_type: ",
    r"^INFO: Created TensorFlow Lite XNNPACK delegate",
    r"^INFO: Initialized TensorFlow Lite runtime",
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called",
    r"^I0000 00:00:",
    r"^W0000 00:00:",
    r"^To enable the following instructions: .* rebuild TensorFlow",
)
# Python warnings every export gives, for reasons the export handles.
NOISE_WARNINGS = (
    r"Statistics for quantized inputs were expected, but not specified",
    r"Please consider providing the trackable_obj argument",
)
_NOISE_ABSL = ("Please consider providing the trackable_obj argument",)


def is_tty(stream: IO | None = None) -> bool:
    """Whether ``stream`` (default ``sys.stdout``) is a terminal."""
    stream = sys.stdout if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced by a plain object
        return False


def keras_verbose(verbose: int | str | None = None) -> int:
    """Keras ``verbose`` for ``fit``/``evaluate``/``predict``.

    Args:
        verbose: an explicit level, or ``None``/``"auto"``: ``1`` (progress bar) when
            stdout is a terminal, else ``2`` (one line per epoch, no carriage
            returns).

    Returns:
        The level.
    """
    if verbose is None or verbose == "auto":
        return 1 if is_tty() else 2
    return int(verbose)


class _AbslNoiseFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in _NOISE_ABSL)


def _install_absl_filter() -> None:
    absl_logger = logging.getLogger("absl")
    if not any(isinstance(f, _AbslNoiseFilter) for f in absl_logger.filters):
        absl_logger.addFilter(_AbslNoiseFilter())


def quiet_tensorflow(import_now: bool = False) -> None:
    """Silences TensorFlow/absl start-up lines and the converter's routine warnings.

    Safe to call more than once and before or after TensorFlow is imported (the
    C++ log level only takes effect when set before the import).

    Args:
        import_now: import TensorFlow here, inside :func:`filtered_stderr`, if it is
            installed and not imported yet. TensorFlow 2.18+ writes its "oneDNN
            custom operations are on" line (and absl's "All log messages before
            absl::InitializeLog()" line) at import whatever ``TF_CPP_MIN_LOG_LEVEL``
            says; only filtering the descriptor during the import drops them. For
            the commands that import TensorFlow anyway (training: Keras' data
            adapters; export: the converter).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if import_now and "tensorflow" not in sys.modules:
        with filtered_stderr(), contextlib.suppress(ImportError):
            import tensorflow  # noqa: F401
    for pattern in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=f".*{pattern}")
    _install_absl_filter()
    with contextlib.suppress(ImportError):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)


def drop_noise(text: str, patterns: Iterable[str] = NOISE_LINES) -> str:
    """``text`` without the lines matching ``patterns``."""
    compiled = [re.compile(p) for p in patterns]
    kept = [
        line
        for line in text.splitlines(keepends=True)
        if not any(p.search(line) for p in compiled)
    ]
    return "".join(kept)


@contextlib.contextmanager
def filtered_stderr(patterns: Iterable[str] = NOISE_LINES) -> Iterator[None]:
    """Drops the noise lines C++ code writes to file descriptor 2 in the block.

    Everything else written to the descriptor in the block (an error's details)
    is written back to stderr when the block ends, also when it raises.

    Args:
        patterns: regular expressions of the lines to drop.
    """
    fd = 2  # the C++ runtimes write to the descriptor, whatever sys.stderr is
    try:
        os.fstat(fd)
    except OSError:  # no descriptor 2 (a daemon): nothing to filter
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            capture.seek(0)
            kept = drop_noise(capture.read().decode(errors="replace"), patterns)
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


@contextlib.contextmanager
def converter_notices_dropped() -> Iterator[None]:
    """The TFLite converter's routine notices dropped, in this block only.

    Drops the absl ``trackable_obj`` deprecation warning, the "Statistics for
    quantized inputs" ``UserWarning`` and the ``fully_quantize: ...`` line; any other
    warning or stderr line (a conversion error's details) is kept. Changes no
    global logging level.
    """
    _install_absl_filter()
    with warnings.catch_warnings():
        for pattern in NOISE_WARNINGS:
            warnings.filterwarnings("ignore", message=f".*{pattern}")
        with filtered_stderr():
            yield
