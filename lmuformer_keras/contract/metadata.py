"""``ExportMetadata``: ``metadata.json``, the hand-off from the exporter to every app.

``lmuformer-export`` builds one and writes :meth:`ExportMetadata.to_json`; the Python
app reads it with :meth:`ExportMetadata.from_json` (the Java app and the MCU header
generator read the same fields, ``metadata.schema.json`` describes them). Format
version 2 spells each field once::

    {
      "format_version": 2,
      "model_file": "model.tflite", "c_array": "g_model_data",
      "quantization": "int8",
      "labels": ["_silence_", "_unknown_", "yes", ...],       # or null
      "frontend": {"name": "micro40", "params": {...}, "frame_hop_ms": 20.0},
      "frame":  {"position": 0, "name": "frame", "shape": [1, 40], "dtype": "int8",
                 "scale": 0.0087, "zero_point": -39},
      "logits": {"position": 0, "name": "Identity", "shape": [1, 12], ...},
      "states": [{"name": "block0_token_mixer/memory/m",
                  "input":  {"position": 4, "shape": [1, 64], ...},
                  "output": {"position": 4, "shape": [1, 64], ...},
                  "initial_value": 0.0, "initial_quantized": -3}, ...],
      "arena_bytes": 21328, "arena_bytes_min": 17056, "model_bytes": 56432,
      "ops": ["ADD", ...], "macs_per_frame": 41264,
      "smoothing": {...}                                      # optional
    }

Every shape has the batch axis; the number of features is ``frame.shape[1]``, of
classes ``logits.shape[1]``, the hop ``frontend.frame_hop_ms`` and a state's bytes
``prod(shape) * itemsize``. Version-1 files (the layout before) are upgraded on
reading (:func:`lmuformer_keras.contract.v1.upgrade_v1`).

This module holds the record; its checks are in :mod:`.metadata_checks`, the JSON
keys, reading and writing in :mod:`.metadata_json`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .fields import MetadataError
from .frontend import Frontend
from .metadata_checks import check_model_tensors, validate_metadata
from .metadata_json import (
    DEFAULT_C_ARRAY,
    DEFAULT_MODEL_FILE,
    FORMAT_VERSION,
    metadata_dict,
    metadata_fields,
    metadata_text,
)
from .state import StateSpec
from .tensor import ExportedState, QuantizedTensor


@dataclasses.dataclass(frozen=True)
class ExportMetadata:
    """Everything an app needs to run an exported step graph on a frame stream.

    Per frame an app quantizes the frontend's frame with ``frame``'s scale and zero
    point into input ``frame.position``, writes each state input, invokes, reads
    output ``logits.position`` (dequantized) and copies each state output's bytes to
    its input. States start from :meth:`ExportedState.initial_array`.

    Attributes:
        frame: The frame input ``(1, F)``.
        logits: The logits output ``(1, C)``.
        states: The states, in the step model's order.
        quantization: ``"int8"``, ``"int16x8"`` or ``"float32"``.
        labels: ``C`` class names, or ``None``.
        frontend: The frontend record, or ``None`` (not an audio model).
        model_file: The model file, relative to the export folder.
        c_array: The name of the model's C array in ``model_data.cc``.
        arena_bytes: TFLite Micro arena to allocate (the smallest plus a margin).
        arena_bytes_min: The smallest arena that works, or ``None``.
        model_bytes: Size of ``model_file``, or ``None``.
        ops: The builtin ops of the model.
        macs_per_frame: Multiply-accumulates per frame, or ``None``.
        smoothing: The detection smoothing chosen for the model
            (``tune_smoothing --write``), or ``None`` (the apps' defaults).
        note: Free text for people, or ``None``.
    """

    frame: QuantizedTensor
    logits: QuantizedTensor
    states: tuple[ExportedState, ...]
    quantization: str
    labels: tuple[str, ...] | None = None
    frontend: Frontend | None = None
    model_file: str = DEFAULT_MODEL_FILE
    c_array: str = DEFAULT_C_ARRAY
    arena_bytes: int = 0
    arena_bytes_min: int | None = None
    model_bytes: int | None = None
    ops: tuple[str, ...] = ()
    macs_per_frame: int | None = None
    smoothing: dict[str, Any] | None = None
    note: str | None = None

    format_version = FORMAT_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "states", tuple(self.states))
        object.__setattr__(self, "ops", tuple(self.ops))
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(self.labels))
        if self.frontend is not None and not isinstance(self.frontend, Frontend):
            object.__setattr__(self, "frontend", Frontend.from_record(self.frontend))

    # ----------------------------------------------------------------- derived
    @property
    def num_features(self) -> int:
        """``F``: the frame's last axis."""
        return int(self.frame.shape[-1])

    @property
    def num_classes(self) -> int:
        """``C``: the logits' last axis."""
        return int(self.logits.shape[-1])

    @property
    def class_labels(self) -> list[str]:
        """``labels``, or ``class_0 .. class_{C-1}`` when there are none."""
        if self.labels is not None:
            return list(self.labels)
        return [f"class_{i}" for i in range(self.num_classes)]

    @property
    def frame_hop_ms(self) -> float | None:
        """The frontend's hop, or ``None`` without a frontend."""
        return None if self.frontend is None else float(self.frontend.frame_hop_ms)

    @property
    def num_tensors(self) -> int:
        """Inputs (= outputs) of the model: the frame (logits) and one per state."""
        return 1 + len(self.states)

    @property
    def state_specs(self) -> list[StateSpec]:
        """The model-side state specs (shapes without the batch axis)."""
        return [s.spec for s in self.states]

    def initial_states(self) -> list[np.ndarray]:
        """Every state's initial input value, in :attr:`states` order."""
        return [s.initial_array() for s in self.states]

    # -------------------------------------------------------------- validation
    def validate(self) -> ExportMetadata:
        """Checks the metadata on its own (no model needed); returns ``self``.

        Checks every field's type and range, that the frame is ``(1, F)`` and the
        logits ``(1, C)``, that the positions of the frame and the state inputs (of
        the logits and the state outputs) are ``0 .. len(states)`` each used once,
        that each state's input and output are tied, that ``labels`` has ``C``
        names and that ``quantization`` is the frame's dtype.

        Raises:
            MetadataError: naming the field and its value.
        """
        validate_metadata(self)
        return self

    def check_model(
        self,
        inputs: Sequence[QuantizedTensor],
        outputs: Sequence[QuantizedTensor],
    ) -> None:
        """Checks that the metadata describes a model with these tensors.

        Args:
            inputs: The model's inputs in position order (e.g.
                :meth:`QuantizedTensor.from_tensor_detail` of LiteRT's
                ``get_input_details()``).
            outputs: The model's outputs in position order.

        Raises:
            MetadataError: naming the first mismatch (counts, shapes, dtypes, scales,
                zero points).
        """
        check_model_tensors(self, inputs, outputs)

    # -------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """The JSON object of format version 2 (``None`` optional fields left out)."""
        return metadata_dict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """``metadata.json``'s text (format version 2), ending in a newline."""
        return metadata_text(self, indent)

    @classmethod
    def from_json(cls, source: str | bytes | Mapping[str, Any]) -> ExportMetadata:
        """Reads ``metadata.json`` (its text or the parsed object) and validates it.

        A version-1 file is upgraded first
        (:func:`lmuformer_keras.contract.v1.upgrade_v1`, documented there).

        Raises:
            MetadataError: not JSON, an unknown ``format_version``, or a field with a
                wrong type or value (the message names the field and the value).
        """
        return cls(**metadata_fields(source)).validate()

    # ------------------------------------------------------------------- files
    @classmethod
    def load(cls, path: str | os.PathLike) -> ExportMetadata:
        """Reads and validates the file ``path``.

        Raises:
            MetadataError: as :meth:`from_json`, the message starting with the path.
            OSError: the file cannot be read.
        """
        path = os.fspath(path)
        with open(path, "rb") as fh:
            text = fh.read()
        try:
            return cls.from_json(text)
        except MetadataError as error:
            raise MetadataError(f"{path}: {error}") from error

    def save(self, path: str | os.PathLike) -> str:
        """Writes :meth:`to_json` to ``path`` atomically (a temporary file renamed)."""
        path = os.fspath(path)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(self.to_json())
        os.replace(tmp, path)
        return path

    def replace(self, **changes: Any) -> ExportMetadata:
        """A validated copy with ``changes`` (e.g. ``smoothing=...``)."""
        return dataclasses.replace(self, **changes).validate()
