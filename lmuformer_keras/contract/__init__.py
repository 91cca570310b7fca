"""The deployment contract: one definition of a state, a tensor and the metadata.

NumPy only (no Keras, no TensorFlow), so every layer imports it: the models
(:class:`StateSpec`), the trainer and presets (:class:`Frontend`), the exporter (builds
an :class:`ExportMetadata`) and every app (reads one with
:meth:`ExportMetadata.from_json`; the Java app and the MCU generator read the same
fields, described by :func:`metadata_schema`).

- :class:`StateSpec`: a streaming state of a model (name, shape without batch, dtype);
- :class:`Frontend`: the frontend record ``{name, params, frame_hop_ms}``;
- :class:`QuantizedTensor`: an input or output of the exported model (position,
  shape with the batch axis, dtype, scale, zero point);
- :class:`ExportedState`: a state of the exported model (tied input and output
  tensors, initial value);
- :class:`ExportMetadata`: ``metadata.json`` (format version 2; version 1 is upgraded
  on reading by :func:`upgrade_v1`);
- :func:`quantize` / :func:`dequantize`: the one rounding (half away from zero).
"""

from .fields import MetadataError
from .frontend import Frontend
from .metadata import ExportMetadata
from .metadata_checks import QUANTIZATIONS, check_model_file
from .metadata_json import FORMAT_VERSION
from .quantization import dequantize, quantize
from .schema import metadata_schema, schema_json, write_schema
from .state import StateSpec
from .tensor import ExportedState, QuantizedTensor, same_scale
from .v1 import upgrade_v1

__all__ = [
    "FORMAT_VERSION",
    "QUANTIZATIONS",
    "ExportMetadata",
    "ExportedState",
    "Frontend",
    "MetadataError",
    "QuantizedTensor",
    "StateSpec",
    "check_model_file",
    "dequantize",
    "metadata_schema",
    "quantize",
    "same_scale",
    "schema_json",
    "upgrade_v1",
    "write_schema",
]
