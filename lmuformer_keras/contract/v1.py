"""The one converter from ``metadata.json`` format version 1 to version 2.

Version 1 (written by ``lmuformer-export`` before the typed contract, e.g. the shipped
``apps/pretrained/*/metadata.json`` of that time) spelled several fields twice. The
upgrade maps, and checks that the two spellings agree where there were two:

========================================  =========================================
version 1                                 version 2
========================================  =========================================
``frame_input_index``, ``input``          ``frame`` (``position`` = the index)
``logits_output_index``, ``output``       ``logits``
``num_features``, ``num_classes``         ``frame.shape[1]``, ``logits.shape[1]``
``frame_hop_ms``, ``frontend``            ``frontend.frame_hop_ms``
state ``input_index``, ``input_name``     state ``input.position``, ``input.name``
state ``output_index``, ``output_name``   state ``output.position``, ``output.name``
state ``tensor_shape`` (with batch),      state ``input.shape`` / ``output.shape``
``shape`` (without), ``bytes``            (with the batch axis)
state ``dtype``, ``scale``,               state ``input`` / ``output`` (tied: the
``zero_point``                            same values)
``clip_decision``, ``streaming``          dropped (prose, see docs/ARCHITECTURE.md)
========================================  =========================================

A version-1 state without ``tensor_shape`` is read with ``shape`` as the exporter
wrote it: without the batch axis. A frontend record without ``params`` is completed
from the registered frontend of its name (as the version-1 apps did). Everything else
is carried over unchanged and then checked as version 2; keys that no version-1
reader used (anything not in :data:`V1_KEYS`) are dropped.

Command line (writes version 2 next to, or over, the file)::

    python -m lmuformer_keras.contract upgrade DIR/metadata.json [--out OUT]
"""

from __future__ import annotations

import math
from typing import Any

from .fields import (
    MetadataError,
    as_dict,
    as_int,
    as_list,
    as_number,
    as_shape,
    require,
)
from .frontend import Frontend

V1_KEYS = (
    "format_version",
    "model_file",
    "c_array",
    "quantization",
    "labels",
    "num_features",
    "num_classes",
    "frontend",
    "frame_hop_ms",
    "frame_input_index",
    "logits_output_index",
    "input",
    "output",
    "states",
    "clip_decision",
    "streaming",
    "arena_bytes",
    "arena_bytes_min",
    "model_bytes",
    "ops",
    "macs_per_frame",
    "smoothing",
    "note",
)
_CARRIED = (
    "c_array",
    "quantization",
    "labels",
    "arena_bytes_min",
    "model_bytes",
    "ops",
    "macs_per_frame",
    "smoothing",
    "note",
)


def _tensor(entry: dict, position: int, shape) -> dict[str, Any]:
    return {
        "position": position,
        "name": entry.get("name"),
        "shape": list(shape),
        "dtype": entry.get("dtype"),
        "scale": entry.get("scale") or None,
        "zero_point": entry.get("zero_point") if entry.get("scale") else None,
    }


def _io_tensor(data: dict, key: str, index_key: str, size_key: str) -> dict:
    where = f"metadata {key}"
    entry = as_dict(require(data, key, "metadata"), where)
    position = as_int(require(data, index_key, "metadata"), f"metadata {index_key}")
    if "position" in entry and as_int(entry["position"], where) != position:
        raise MetadataError(
            f"{where}: position {entry['position']} differs from the top-level "
            f"{index_key}={position}"
        )
    size = as_int(require(data, size_key, "metadata"), f"metadata {size_key}")
    shape = (1, size)
    if "shape" in entry and as_shape(entry["shape"], f"{where} shape") != shape:
        raise MetadataError(
            f"{where}: shape {list(entry['shape'])} but {size_key}={size} implies "
            f"{list(shape)}"
        )
    return _tensor(entry, position, shape)


def _state(entry: Any, k: int) -> dict[str, Any]:
    where = f"metadata states[{k}]"
    entry = as_dict(entry, where)
    name = entry.get("name", f"state_{k}")
    where = f"state {k} ('{name}')"
    if "tensor_shape" in entry:
        shape = as_shape(entry["tensor_shape"], f"{where} tensor_shape")
        if "shape" in entry:
            plain = as_shape(entry["shape"], f"{where} shape")
            if plain not in (shape[1:], shape):
                raise MetadataError(
                    f"{where}: shape {list(plain)} does not match tensor_shape "
                    f"{list(shape)}"
                )
    else:
        shape = (1, *as_shape(require(entry, "shape", where), f"{where} shape"))
    tensor_in = _tensor(
        {**entry, "name": entry.get("input_name")},
        as_int(require(entry, "input_index", where), f"{where} input_index"),
        shape,
    )
    tensor_out = dict(
        tensor_in,
        position=as_int(require(entry, "output_index", where), f"{where} output_index"),
        name=entry.get("output_name"),
    )
    state = {
        "name": name,
        "input": tensor_in,
        "output": tensor_out,
        "initial_value": entry.get("initial_value", 0.0),
        "initial_quantized": entry.get("initial_quantized"),
    }
    if "bytes" in entry and entry.get("dtype") in ("int8", "int16", "uint8", "float32"):
        size = {"int8": 1, "uint8": 1, "int16": 2, "float32": 4}[entry["dtype"]]
        want = math.prod(shape) * size
        if as_int(entry["bytes"], f"{where} bytes") != want:
            raise MetadataError(
                f"{where}: bytes={entry['bytes']} but shape {list(shape)} of "
                f"{entry['dtype']} has {want}"
            )
    return state


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-2 metadata object from a version-1 one (see the module docstring).

    Args:
        data: The parsed version-1 ``metadata.json``.

    Returns:
        The version-2 object (not yet validated: read it with
        :meth:`~lmuformer_keras.contract.ExportMetadata.from_json`).

    Raises:
        MetadataError: a version-1 field of the wrong type, or two spellings of one
            field that disagree.
    """
    data = as_dict(data, "metadata")
    if data.get("format_version") != 1:
        raise MetadataError(
            f"upgrade_v1: expected format_version 1, got {data.get('format_version')!r}"
        )
    states = as_list(require(data, "states", "metadata"), "metadata 'states'")
    for k, entry in enumerate(states):
        as_dict(entry, f"metadata states[{k}]")
    out: dict[str, Any] = {
        "format_version": 2,
        "model_file": data.get("model_file") or "model.tflite",
        "frame": _io_tensor(data, "input", "frame_input_index", "num_features"),
        "logits": _io_tensor(data, "output", "logits_output_index", "num_classes"),
        "states": [_state(entry, k) for k, entry in enumerate(states)],
        "arena_bytes": data.get("arena_bytes", 0),
        "labels": data.get("labels"),
        "frontend": None,
    }
    for key in _CARRIED:
        if key in data:
            out[key] = data[key]
    frontend = data.get("frontend")
    if frontend:
        record = Frontend.from_record(frontend, "metadata frontend", resolve_name=True)
        hop = data.get("frame_hop_ms")
        if hop is not None and not math.isclose(
            as_number(hop, "metadata frame_hop_ms"), record.frame_hop_ms
        ):
            raise MetadataError(
                f"metadata frame_hop_ms={hop} but its frontend record hops "
                f"{record.frame_hop_ms:g} ms"
            )
        out["frontend"] = record.record()
    labels = out["labels"]
    if labels is not None and not isinstance(labels, list):
        raise MetadataError(f"metadata labels must be a list, got {labels!r:.80}")
    if "quantization" not in out:
        dtype = out["frame"]["dtype"]
        out["quantization"] = {"int8": "int8", "int16": "int16x8"}.get(dtype, "float32")
    return out
