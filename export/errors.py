"""Errors raised by the export pipeline.

Every error is a ``ValueError`` subclass carrying a message that names what was wrong
(the argument, the file, the TFLite op and the Keras layer it came from), so the CLI
can print it without a traceback.
"""

from __future__ import annotations


class ExportError(ValueError):
    """Base class of every error the export pipeline raises on purpose."""


class NotStreamableError(ExportError):
    """The model has no streaming form, or the object does not meet the contract."""


class CalibrationDataError(ExportError):
    """Calibration or test clips are missing, empty or mis-shaped."""


class ConversionError(ExportError):
    """The TFLite converter failed on the step graph."""


class UnsupportedOpError(ExportError):
    """The converted graph holds an op TFLite Micro lacks, or a float tensor."""


class StateTyingError(ExportError):
    """A state output could not be given the quantization of its state input."""


class OutputDirError(ExportError):
    """``--out`` cannot receive an export (a file, or a folder of other files)."""


ERROR_CLASSES = {
    cls.__name__: cls
    for cls in (
        ExportError,
        NotStreamableError,
        CalibrationDataError,
        ConversionError,
        UnsupportedOpError,
        StateTyingError,
        OutputDirError,
    )
}
