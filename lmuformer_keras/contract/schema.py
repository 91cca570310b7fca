"""``metadata.schema.json``: the JSON Schema of ``metadata.json`` format version 2.

Generated from the contract's key lists (:mod:`.metadata_json`, :mod:`.tensor`,
:mod:`.frontend`), so it cannot drift from what :meth:`ExportMetadata.to_json` writes
and :meth:`ExportMetadata.from_json` reads (``tests/test_contract.py`` checks both).
The Java app's tests check ``ModelMetadata`` against the checked-in copy
(``apps/android/kws-core/src/test/resources/metadata.schema.json``); regenerate it
with::

    python -m lmuformer_keras.contract schema \\
        apps/android/kws-core/src/test/resources/metadata.schema.json

The schema checks types and ranges; the cross-field rules (positions used once,
state input and output tied, ``len(labels) == logits.shape[1]``, quantization vs the
frame's dtype) are :meth:`ExportMetadata.validate`'s.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .frontend import FRONTEND_KEYS
from .metadata_checks import QUANTIZATIONS
from .metadata_json import FORMAT_VERSION, METADATA_KEYS, REQUIRED_KEYS
from .tensor import STATE_KEYS, TENSOR_DTYPES, TENSOR_KEYS

SCHEMA_ID = "urn:lmuformer-keras:metadata.schema.json:2"
SCHEMA_FILE = "metadata.schema.json"

_COUNT = {"type": "integer", "minimum": 0}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [{"type": "null"}, schema]}


def _object(
    properties: dict[str, Any], keys, required, description: str
) -> dict[str, Any]:
    assert list(properties) == list(keys), (list(properties), list(keys))
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


def metadata_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``metadata.json`` format version 2."""
    tensor = _object(
        {
            "position": dict(
                _COUNT, description="index in the model's inputs (outputs)"
            ),  # fmt: skip
            "name": _nullable({"type": "string"}),
            "shape": {
                "type": "array",
                "description": "with the batch axis (1)",
                "prefixItems": [{"const": 1}],
                "items": {"type": "integer", "minimum": 1},
                "minItems": 1,
            },
            "dtype": {"enum": list(TENSOR_DTYPES)},
            "scale": _nullable({"type": "number", "exclusiveMinimum": 0}),
            "zero_point": _nullable({"type": "integer"}),
        },
        TENSOR_KEYS,
        ("position", "shape", "dtype"),
        "A model input or output: q = round_half_away(x / scale) + zero_point",
    )
    state = _object(
        {
            "name": {"type": "string"},
            "input": {"$ref": "#/$defs/tensor"},
            "output": {"$ref": "#/$defs/tensor"},
            "initial_value": _nullable({"type": "number"}),
            "initial_quantized": _nullable({"type": "integer"}),
        },
        STATE_KEYS,
        ("name", "input", "output"),
        "A streaming state: copy output's bytes to input after each invoke",
    )
    frontend = _object(
        {
            "name": {"type": "string"},
            "params": {"type": "object"},
            "frame_hop_ms": {"type": "number", "exclusiveMinimum": 0},
        },
        FRONTEND_KEYS,
        FRONTEND_KEYS,
        "The frontend record (lmuformer_keras.features params)",
    )
    properties = {
        "format_version": {"const": FORMAT_VERSION},
        "model_file": {"type": "string", "minLength": 1},
        "quantization": {"enum": list(QUANTIZATIONS)},
        "labels": _nullable({"type": "array", "items": {"type": "string"}}),
        "frontend": _nullable({"$ref": "#/$defs/frontend"}),
        "frame": {"$ref": "#/$defs/tensor"},
        "logits": {"$ref": "#/$defs/tensor"},
        "states": {"type": "array", "items": {"$ref": "#/$defs/state"}},
        "arena_bytes": dict(_COUNT),
        "c_array": {"type": "string"},
        "arena_bytes_min": _nullable(dict(_COUNT)),
        "model_bytes": _nullable(dict(_COUNT)),
        "ops": {"type": "array", "items": {"type": "string"}},
        "macs_per_frame": _nullable(dict(_COUNT)),
        "smoothing": _nullable({"type": "object"}),
        "note": _nullable({"type": "string"}),
    }
    schema = _object(
        properties,
        METADATA_KEYS,
        REQUIRED_KEYS,
        "lmuformer-export metadata.json, format version 2",
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "lmuformer-export metadata.json",
        **schema,
        "$defs": {"tensor": tensor, "state": state, "frontend": frontend},
    }


def schema_json() -> str:
    """:func:`metadata_schema` as the text of ``metadata.schema.json``."""
    return json.dumps(metadata_schema(), indent=2) + "\n"


def write_schema(path: str | os.PathLike) -> str:
    """Writes :func:`schema_json` to ``path`` (a folder: its
    ``metadata.schema.json``)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, SCHEMA_FILE)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(schema_json())
    return path
