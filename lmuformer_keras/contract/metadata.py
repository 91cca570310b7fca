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
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

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
    shown,
)
from .frontend import Frontend
from .state import StateSpec
from .tensor import ExportedState, QuantizedTensor

FORMAT_VERSION = 2
QUANTIZATIONS = ("int8", "int16x8", "float32")
FRAME_DTYPES = {"int8": "int8", "int16x8": "int16", "float32": "float32"}
"""The frame (and logits) dtype each quantization mode gives."""
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


def check_model_file(value: Any, where: str = "metadata model_file") -> str:
    """A file name inside the model folder (relative, no ``..``).

    Raises:
        MetadataError: a non-string, an absolute path or one leaving the folder.
    """
    if not isinstance(value, str):
        raise MetadataError(
            f"{where} must be a file name inside the model folder, got "
            f"{type(value).__name__} {shown(value)}"
        )
    normal = posixpath.normpath(value.replace("\\", "/"))
    if (
        not value
        or os.path.isabs(value)
        or posixpath.isabs(normal)
        or normal in (".", "..")
        or normal.startswith("../")
    ):
        raise MetadataError(
            f"metadata model_file={value!r} is outside the model folder: refused (it "
            "must name a file inside the folder, e.g. 'model.tflite')"
        )
    return value


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
        check_model_file(self.model_file)
        as_str(self.c_array, "metadata c_array")
        if self.quantization not in QUANTIZATIONS:
            raise MetadataError(
                f"metadata quantization must be one of {list(QUANTIZATIONS)}, got "
                f"{shown(self.quantization)}"
            )
        self.frame.validate("metadata frame")
        self.logits.validate("metadata logits")
        for what, tensor in (("frame", self.frame), ("logits", self.logits)):
            if len(tensor.shape) != 2:
                raise MetadataError(
                    f"metadata {what} shape must be [1, n], got {list(tensor.shape)}"
                )
        want = FRAME_DTYPES[self.quantization]
        io = (("frame input", self.frame), ("logits output", self.logits))
        for what, tensor in io:
            if tensor.dtype != want or (want != "float32") != tensor.quantized:
                raise MetadataError(
                    f"metadata quantization={self.quantization!r} but the {what} is "
                    f"{tensor.dtype} with scale {tensor.scale}"
                )
        for k, state in enumerate(self.states):
            if not isinstance(state, ExportedState):
                raise MetadataError(
                    f"metadata states[{k}] must be an ExportedState, got "
                    f"{type(state).__name__}"
                )
            state.validate(f"metadata states[{k}] ('{state.name}')")
        self._check_positions()
        if self.labels is not None:
            for k, label in enumerate(self.labels):
                as_str(label, f"metadata labels[{k}]")
            if len(self.labels) != self.num_classes:
                raise MetadataError(
                    f"metadata: {len(self.labels)} labels but the logits have "
                    f"num_classes={self.num_classes} (shape {list(self.logits.shape)})"
                )
        if self.frontend is not None:
            self.frontend.validate("metadata frontend")
        as_count(self.arena_bytes, "metadata arena_bytes")
        for key in ("arena_bytes_min", "model_bytes", "macs_per_frame"):
            if getattr(self, key) is not None:
                as_count(getattr(self, key), f"metadata {key}")
        for k, op in enumerate(self.ops):
            as_str(op, f"metadata ops[{k}]")
        if self.smoothing is not None and not isinstance(self.smoothing, Mapping):
            raise MetadataError(
                "metadata 'smoothing' must be an object, got "
                f"{type(self.smoothing).__name__} {shown(self.smoothing)}"
            )
        if self.note is not None:
            as_str(self.note, "metadata note")
        return self

    def _check_positions(self) -> None:
        n = self.num_tensors
        for side, first, tensors in (
            ("input", ("frame", self.frame), [s.input for s in self.states]),
            ("output", ("logits", self.logits), [s.output for s in self.states]),
        ):
            named = [first] + [
                (f"states[{k}] ('{s.name}') {side}", t)
                for k, (s, t) in enumerate(zip(self.states, tensors, strict=True))
            ]
            used: dict[int, str] = {}
            for what, tensor in named:
                if not 0 <= tensor.position < n:
                    raise MetadataError(
                        f"metadata {what} position={tensor.position} is out of range "
                        f"[0, {n}) (1 {first[0]} + {len(self.states)} state(s))"
                    )
                if tensor.position in used:
                    raise MetadataError(
                        f"metadata {what} position={tensor.position} is already used "
                        f"by the {used[tensor.position]}"
                    )
                used[tensor.position] = what

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
        n = self.num_tensors
        if len(inputs) != n or len(outputs) != n:
            raise MetadataError(
                f"metadata describes 1 frame + {len(self.states)} state(s), i.e. {n} "
                f"inputs and outputs, but the model has {len(inputs)} inputs and "
                f"{len(outputs)} outputs"
            )
        f, g = self.frame, self.logits
        f.check_matches(inputs[f.position], f"frame input (model input {f.position})")
        g.check_matches(
            outputs[g.position], f"logits output (model output {g.position})"
        )
        for k, s in enumerate(self.states):
            where = f"state {k} ('{s.name}')"
            p, q = s.input.position, s.output.position
            s.input.check_matches(inputs[p], f"{where} input (model input {p})")
            s.output.check_matches(outputs[q], f"{where} output (model output {q})")

    # -------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """The JSON object of format version 2 (``None`` optional fields left out)."""
        data: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "model_file": self.model_file,
            "c_array": self.c_array,
            "quantization": self.quantization,
            "labels": None if self.labels is None else list(self.labels),
            "frontend": None if self.frontend is None else self.frontend.record(),
            "frame": self.frame.to_json(),
            "logits": self.logits.to_json(),
            "states": [s.to_json() for s in self.states],
            "arena_bytes": int(self.arena_bytes),
            "arena_bytes_min": self.arena_bytes_min,
            "model_bytes": self.model_bytes,
            "ops": list(self.ops),
            "macs_per_frame": self.macs_per_frame,
            "smoothing": None if self.smoothing is None else dict(self.smoothing),
            "note": self.note,
        }
        return {k: v for k, v in data.items() if k in REQUIRED_KEYS or v is not None}

    def to_json(self, indent: int | None = 2) -> str:
        """``metadata.json``'s text (format version 2), ending in a newline."""
        return json.dumps(self.to_dict(), indent=indent, default=_json_default) + "\n"

    @classmethod
    def from_json(cls, source: str | bytes | Mapping[str, Any]) -> ExportMetadata:
        """Reads ``metadata.json`` (its text or the parsed object) and validates it.

        A version-1 file is upgraded first
        (:func:`lmuformer_keras.contract.v1.upgrade_v1`, documented there).

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
            from .v1 import upgrade_v1

            data = upgrade_v1(data)
        elif version != FORMAT_VERSION:
            raise MetadataError(
                f"metadata format_version={version} is not supported: this reader "
                f"reads versions 1 and {FORMAT_VERSION} (a newer lmuformer-keras wrote "
                "it?)"
            )
        return cls._from_v2(data)

    @classmethod
    def _from_v2(cls, data: dict[str, Any]) -> ExportMetadata:
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
        if smoothing is not None and not isinstance(smoothing, Mapping):
            raise MetadataError(
                "metadata 'smoothing' must be an object, got "
                f"{type(smoothing).__name__} {shown(smoothing)}"
            )

        def optional_count(key: str) -> int | None:
            value = data.get(key)
            return None if value is None else as_count(value, f"metadata {key}")

        ops = as_list(data.get("ops", []), "metadata ops")
        note = data.get("note")
        meta = cls(
            frame=QuantizedTensor.from_json(data["frame"], "metadata frame"),
            logits=QuantizedTensor.from_json(data["logits"], "metadata logits"),
            states=tuple(parsed_states),
            quantization=as_str(data["quantization"], "metadata quantization"),
            labels=None if labels is None else tuple(labels),
            frontend=frontend,
            model_file=check_model_file(data["model_file"]),
            c_array=as_str(data.get("c_array", DEFAULT_C_ARRAY), "metadata c_array"),
            arena_bytes=as_count(data["arena_bytes"], "metadata arena_bytes"),
            arena_bytes_min=optional_count("arena_bytes_min"),
            model_bytes=optional_count("model_bytes"),
            ops=tuple(as_str(op, f"metadata ops[{k}]") for k, op in enumerate(ops)),
            macs_per_frame=optional_count("macs_per_frame"),
            smoothing=None if smoothing is None else dict(smoothing),
            note=None if note is None else as_str(note, "metadata note"),
        )
        return meta.validate()

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


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
