"""``metadata.json``'s keys, and the reading and writing of format version 2.

:func:`metadata_fields` turns the text (or the parsed object) into the fields of an
:class:`~.metadata.ExportMetadata`, upgrading a version-1 file first
(:func:`.v1.upgrade_v1`); :func:`metadata_dict` and :func:`metadata_text` write one
back. The keys are shared with the JSON Schema (:mod:`.schema`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .fields import (
    MetadataError,
    as_count,
    as_dict,
    as_int,
    as_list,
    as_str,
    only_keys,
    require,
)
from .frontend import Frontend
from .metadata_checks import check_model_file, check_smoothing
from .tensor import ExportedState, QuantizedTensor
from .v1 import upgrade_v1

if TYPE_CHECKING:
    from .metadata import ExportMetadata

FORMAT_VERSION = 2
DEFAULT_MODEL_FILE = "model.tflite"
DEFAULT_C_ARRAY = "g_model_data"
REQUIRED_KEYS = (
    "format_version",
    "model_file",
    "quantization",
    "labels",
    "frontend",
    "frame",
    "logits",
    "states",
    "arena_bytes",
)
OPTIONAL_KEYS = (
    "c_array",
    "arena_bytes_min",
    "model_bytes",
    "ops",
    "macs_per_frame",
    "smoothing",
    "note",
)
METADATA_KEYS = REQUIRED_KEYS + OPTIONAL_KEYS


def metadata_dict(meta: ExportMetadata) -> dict[str, Any]:
    """The JSON object of format version 2 (``None`` optional fields left out)."""
    data: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model_file": meta.model_file,
        "c_array": meta.c_array,
        "quantization": meta.quantization,
        "labels": None if meta.labels is None else list(meta.labels),
        "frontend": None if meta.frontend is None else meta.frontend.record(),
        "frame": meta.frame.to_json(),
        "logits": meta.logits.to_json(),
        "states": [s.to_json() for s in meta.states],
        "arena_bytes": int(meta.arena_bytes),
        "arena_bytes_min": meta.arena_bytes_min,
        "model_bytes": meta.model_bytes,
        "ops": list(meta.ops),
        "macs_per_frame": meta.macs_per_frame,
        "smoothing": None if meta.smoothing is None else dict(meta.smoothing),
        "note": meta.note,
    }
    return {k: v for k, v in data.items() if k in REQUIRED_KEYS or v is not None}


def metadata_text(meta: ExportMetadata, indent: int | None = 2) -> str:
    """``metadata.json``'s text (format version 2), ending in a newline."""
    return json.dumps(metadata_dict(meta), indent=indent, default=_json_default) + "\n"


def metadata_fields(source: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`~.metadata.ExportMetadata` fields of ``metadata.json`` (its text
    or the parsed object), a version-1 file upgraded first; not yet validated as a
    whole (:meth:`ExportMetadata.from_json` does that).

    Raises:
        MetadataError: not JSON, an unknown ``format_version``, or a field with a
            wrong type or value (the message names the field and the value).
    """
    if isinstance(source, str | bytes | bytearray):
        try:
            source = json.loads(source)
        except ValueError as error:
            raise MetadataError(f"metadata: not valid JSON ({error})") from error
    data = as_dict(source, "metadata")
    version = data.get("format_version")
    if version is None:
        raise MetadataError(
            "metadata: missing key 'format_version' (not an lmuformer-export "
            "metadata.json?)"
        )
    version = as_int(version, "metadata format_version")
    if version == 1:
        data = upgrade_v1(data)
    elif version != FORMAT_VERSION:
        raise MetadataError(
            f"metadata format_version={version} is not supported: this reader "
            f"reads versions 1 and {FORMAT_VERSION} (a newer lmuformer-keras wrote "
            "it?)"
        )
    return _fields_v2(data)


def _fields_v2(data: dict[str, Any]) -> dict[str, Any]:
    """The fields of a format-version-2 object, each checked on its own."""
    only_keys(data, METADATA_KEYS, "metadata")
    for key in REQUIRED_KEYS:
        require(data, key, "metadata")
    labels = data["labels"]
    if labels is not None:
        labels = as_list(labels, "metadata labels")
        labels = [as_str(x, f"metadata labels[{k}]") for k, x in enumerate(labels)]
    frontend = data["frontend"]
    if frontend is not None:
        frontend = Frontend.from_record(
            frontend, "metadata frontend", resolve_name=False
        )
    states = as_list(data["states"], "metadata 'states'")
    parsed_states = []
    for k, entry in enumerate(states):
        where = f"metadata states[{k}]"
        parsed_states.append(ExportedState.from_json(as_dict(entry, where), where))
    smoothing = data.get("smoothing")
    check_smoothing(smoothing)

    def optional_count(key: str) -> int | None:
        value = data.get(key)
        return None if value is None else as_count(value, f"metadata {key}")

    ops = as_list(data.get("ops", []), "metadata ops")
    note = data.get("note")
    return {
        "frame": QuantizedTensor.from_json(data["frame"], "metadata frame"),
        "logits": QuantizedTensor.from_json(data["logits"], "metadata logits"),
        "states": tuple(parsed_states),
        "quantization": as_str(data["quantization"], "metadata quantization"),
        "labels": None if labels is None else tuple(labels),
        "frontend": frontend,
        "model_file": check_model_file(data["model_file"]),
        "c_array": as_str(data.get("c_array", DEFAULT_C_ARRAY), "metadata c_array"),
        "arena_bytes": as_count(data["arena_bytes"], "metadata arena_bytes"),
        "arena_bytes_min": optional_count("arena_bytes_min"),
        "model_bytes": optional_count("model_bytes"),
        "ops": tuple(as_str(op, f"metadata ops[{k}]") for k, op in enumerate(ops)),
        "macs_per_frame": optional_count("macs_per_frame"),
        "smoothing": None if smoothing is None else dict(smoothing),
        "note": None if note is None else as_str(note, "metadata note"),
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
