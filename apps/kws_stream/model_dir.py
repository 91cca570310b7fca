"""What an export folder holds: ``metadata.json``, the model file, the frontend.

An ``lmuformer-export`` output folder (``model_dir``) holds ``metadata.json`` (the
typed :class:`lmuformer_keras.contract.ExportMetadata`: every field checked on
reading, a version-1 file upgraded) and the model file it names (``model.tflite``).
:func:`load_metadata` reads the one, :func:`model_file_path` finds the other (never
outside the folder) and :func:`validate_metadata` checks the metadata against the
interpreter's tensors (:class:`MetadataError` names a mismatch). The frontend and
the detection smoothing are the ones the metadata names
(:func:`frontend_from_metadata`, :func:`metadata_smoothing`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from lmuformer_keras.contract import (
    ExportedState,
    ExportMetadata,
    MetadataError,
    QuantizedTensor,
)

from .smoothing import smoothing_from_metadata

__all__ = [
    "as_metadata",
    "check_frontend",
    "frontend_from_metadata",
    "load_interpreter_class",
    "load_metadata",
    "metadata_smoothing",
    "model_file_path",
    "validate_metadata",
]

METADATA_FILE = "metadata.json"
DEFAULT_MODEL_FILE = "model.tflite"


def load_interpreter_class():
    """``Interpreter`` from ai-edge-litert, else from tflite-runtime.

    Raises:
        ImportError: when neither package is installed.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as error:
            raise ImportError(
                "lmuformer_apps.kws_stream needs a TFLite runtime: pip install "
                "ai-edge-litert (or tflite-runtime)"
            ) from error
    return Interpreter


def as_metadata(metadata: ExportMetadata | Mapping) -> ExportMetadata:
    """``metadata`` as the typed record (a dict is read with ``from_json``).

    Raises:
        MetadataError: naming the bad field and its value.
    """
    if isinstance(metadata, ExportMetadata):
        return metadata
    try:
        return ExportMetadata.from_json(metadata)
    except MetadataError:
        raise
    except (TypeError, KeyError, AttributeError, ValueError) as error:
        raise MetadataError(
            f"metadata is malformed ({type(error).__name__}: {error})"
        ) from error


def load_metadata(model_dir: str | os.PathLike) -> ExportMetadata:
    """Reads ``model_dir/metadata.json`` (format version 2, or 1 upgraded).

    Raises:
        MetadataError: ``model_dir`` is a file, ``metadata.json`` is a folder, not
            JSON, or has a bad field (the message names the file and the field).
        FileNotFoundError: no ``metadata.json``.
    """
    folder = os.fspath(model_dir)
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise MetadataError(
            f"model folder {folder!r} is a file, not a folder: expected an "
            "lmuformer-export output folder"
        )
    path = os.path.join(folder, METADATA_FILE)
    if os.path.isdir(path):
        raise MetadataError(f"{path!r} is a directory, not a {METADATA_FILE} file")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No {METADATA_FILE} in {os.fspath(model_dir)!r}: expected an "
            "lmuformer-export output folder"
        )
    return ExportMetadata.load(path)


def model_file_path(
    model_dir: str | os.PathLike, metadata: ExportMetadata | Mapping
) -> str:
    """``model_dir/<metadata model_file>``, refusing a path outside ``model_dir``.

    Raises:
        MetadataError: ``model_file`` is not a string, is absolute, or leaves the
            folder (e.g. ``../../x``); it is checked on the path as written, so a
            symlink placed inside the folder is still followed.
    """
    value = as_metadata(metadata).model_file
    folder = os.path.abspath(os.fspath(model_dir))
    path = os.path.normpath(os.path.join(folder, value))
    if (
        os.path.isabs(value)
        or os.path.commonpath([folder, path]) != folder
        or (path == folder)
    ):
        raise MetadataError(
            f"metadata model_file={value!r} is outside the model folder {folder!r}: "
            "refused (it must name a file inside the folder, e.g. 'model.tflite')"
        )
    return path


def metadata_smoothing(
    metadata: ExportMetadata | Mapping,
) -> dict[str, float | int]:
    """The model's own detection smoothing (``metadata.smoothing``), if any.

    Raises:
        MetadataError: a record :func:`.smoothing.smoothing_from_metadata` refuses.
    """
    record = as_metadata(metadata).smoothing
    try:
        return smoothing_from_metadata({"smoothing": record})
    except ValueError as error:
        raise MetadataError(f"metadata: {error}") from error


def validate_metadata(
    metadata: ExportMetadata | Mapping,
    input_details: list[dict],
    output_details: list[dict],
) -> tuple[QuantizedTensor, QuantizedTensor, list[ExportedState]]:
    """Checks ``metadata`` against the interpreter's tensor details (position order).

    A thin wrapper kept for compatibility: the metadata is read with
    :meth:`ExportMetadata.from_json` and compared with
    :meth:`ExportMetadata.check_model`.

    Returns:
        ``(frame, logits, states)`` of the metadata.

    Raises:
        MetadataError: naming the first bad field or mismatch.
    """
    meta = as_metadata(metadata)
    meta.check_model(
        [QuantizedTensor.from_tensor_detail(d, p) for p, d in enumerate(input_details)],
        [
            QuantizedTensor.from_tensor_detail(d, p)
            for p, d in enumerate(output_details)
        ],
    )
    return meta.frame, meta.logits, list(meta.states)


def frontend_from_metadata(metadata: ExportMetadata | Mapping):
    """The frontend built from the metadata's frontend record (its params).

    Raises:
        MetadataError: no frontend, or params the frontend refuses (naming the
            param and its value).
    """
    from lmuformer_keras.features import get_frontend

    record = as_metadata(metadata).frontend
    if record is None:
        raise MetadataError(
            "metadata has no 'frontend': pass frontend= explicitly (e.g. 'micro40')"
        )
    try:
        return get_frontend(dict(record.params))
    except (ValueError, KeyError, TypeError) as error:
        raise MetadataError(
            f"metadata frontend {record.name!r} is not usable: {error}"
        ) from error


def check_frontend(frontend, metadata: ExportMetadata | Mapping) -> None:
    """``MetadataError`` unless ``frontend`` gives the model's features and hop."""
    meta = as_metadata(metadata)
    if frontend.num_features != meta.num_features:
        raise MetadataError(
            f"frontend {frontend.name!r} gives {frontend.num_features} features, the "
            f"model needs {meta.num_features} (metadata frame shape "
            f"{list(meta.frame.shape)})"
        )
    hop = meta.frame_hop_ms
    if hop is not None and not math.isclose(hop, frontend.frame_hop_ms):
        raise MetadataError(
            f"metadata frontend frame_hop_ms={hop} but frontend {frontend.name!r} "
            f"hops {frontend.frame_hop_ms:g} ms"
        )
