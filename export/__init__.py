"""lmuformer_export: int8 TFLite / TensorFlow Lite Micro export of streaming models.

Public API::

    from lmuformer_export import export_streaming_model
    report = export_streaming_model(model_or_streaming_model, calibration_x, "out/",
                                    quantization="int8", y=labels)

(a causal ``LMUFormer`` is wrapped with ``lmuformer_keras.streaming.StreamingModel``)

writes ``model.tflite``, ``model_data.cc``/``.h``, ``op_resolver.h``, ``metadata.json``
and ``report.json``. The CLI is ``lmuformer-export`` (:mod:`lmuformer_export.cli`).
Importing this package does not import TensorFlow or Keras.
"""

from .convert import check_graph, export_streaming_model, format_report
from .errors import (
    CalibrationDataError,
    ConversionError,
    ExportError,
    NotStreamableError,
    OutputDirError,
    StateTyingError,
    UnsupportedOpError,
)
from .flatbuffer import TFLiteGraph
from .model_io import ModelIO
from .verify import compare_runtimes, verify_model

__all__ = [
    "CalibrationDataError",
    "ConversionError",
    "ExportError",
    "ModelIO",
    "NotStreamableError",
    "OutputDirError",
    "StateTyingError",
    "TFLiteGraph",
    "UnsupportedOpError",
    "check_graph",
    "compare_runtimes",
    "export_streaming_model",
    "format_report",
    "verify_model",
]
