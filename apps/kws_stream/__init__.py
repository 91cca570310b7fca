"""Laptop streaming keyword spotting over an exported LMUFormer step graph.

Public API::

    from lmuformer_apps.kws_stream import KWSStream, StreamingInterpreter

    stream = KWSStream.from_dir("export_dir")        # metadata.json + model.tflite
    for detection in stream.push(int16_chunk):      # any chunk length
        print(detection.label, detection.time_ms, detection.score)

- :class:`StreamingInterpreter`: LiteRT interpreter + states, metadata validated
  against the model (:class:`MetadataError` names a mismatch);
- :class:`KWSStream`: frontend (from the metadata) + interpreter + smoothing;
- :class:`RecognizeCommands`: posterior smoothing -> :class:`Detection`;
- :func:`read_wav`: any integer-PCM WAV -> 16 kHz mono int16, reporting what it did;
- ``lmuformer-stream`` (:func:`lmuformer_apps.kws_stream.cli.main`).
"""

from lmuformer_keras.contract import MetadataError, dequantize, quantize

from .audio import AudioFileError, LoadedAudio, read_wav, write_wav
from .model_dir import load_metadata, validate_metadata
from .runner import KWSStream, StreamingInterpreter
from .smoothing import (
    DEFAULT_AVERAGE_WINDOW_MS,
    DEFAULT_DETECTION_THRESHOLD,
    DEFAULT_MINIMUM_COUNT,
    DEFAULT_SUPPRESSION_MS,
    Detection,
    RecognizeCommands,
    is_ignored_label,
    softmax,
)

__all__ = [
    "DEFAULT_AVERAGE_WINDOW_MS",
    "DEFAULT_DETECTION_THRESHOLD",
    "DEFAULT_MINIMUM_COUNT",
    "DEFAULT_SUPPRESSION_MS",
    "AudioFileError",
    "Detection",
    "KWSStream",
    "LoadedAudio",
    "MetadataError",
    "RecognizeCommands",
    "StreamingInterpreter",
    "dequantize",
    "is_ignored_label",
    "load_metadata",
    "quantize",
    "read_wav",
    "softmax",
    "validate_metadata",
    "write_wav",
]
