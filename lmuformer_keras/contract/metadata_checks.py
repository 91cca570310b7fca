"""The checks of :class:`~.metadata.ExportMetadata`: on its own and against a model.

:func:`validate_metadata` checks the record's fields and how they fit together (no
model needed); :func:`check_model_tensors` checks that a model's inputs and outputs
are the ones the record describes. :func:`check_model_file` is the one check of the
model file name, shared with the reader (:mod:`.metadata_json`).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .fields import MetadataError, as_count, as_str, shown
from .tensor import ExportedState, QuantizedTensor

if TYPE_CHECKING:
    from .metadata import ExportMetadata

QUANTIZATIONS = ("int8", "int16x8", "float32")
FRAME_DTYPES = {"int8": "int8", "int16x8": "int16", "float32": "float32"}
"""The frame (and logits) dtype each quantization mode gives."""


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


def check_smoothing(smoothing: Any) -> None:
    """``smoothing``: ``None`` or an object.

    Raises:
        MetadataError: anything else.
    """
    if smoothing is not None and not isinstance(smoothing, Mapping):
        raise MetadataError(
            "metadata 'smoothing' must be an object, got "
            f"{type(smoothing).__name__} {shown(smoothing)}"
        )


def validate_metadata(meta: ExportMetadata) -> None:
    """The checks of :meth:`ExportMetadata.validate` (documented there).

    Raises:
        MetadataError: naming the field and its value.
    """
    check_model_file(meta.model_file)
    as_str(meta.c_array, "metadata c_array")
    if meta.quantization not in QUANTIZATIONS:
        raise MetadataError(
            f"metadata quantization must be one of {list(QUANTIZATIONS)}, got "
            f"{shown(meta.quantization)}"
        )
    _check_frame_and_logits(meta)
    for k, state in enumerate(meta.states):
        if not isinstance(state, ExportedState):
            raise MetadataError(
                f"metadata states[{k}] must be an ExportedState, got "
                f"{type(state).__name__}"
            )
        state.validate(f"metadata states[{k}] ('{state.name}')")
    _check_positions(meta)
    if meta.labels is not None:
        for k, label in enumerate(meta.labels):
            as_str(label, f"metadata labels[{k}]")
        if len(meta.labels) != meta.num_classes:
            raise MetadataError(
                f"metadata: {len(meta.labels)} labels but the logits have "
                f"num_classes={meta.num_classes} (shape {list(meta.logits.shape)})"
            )
    if meta.frontend is not None:
        meta.frontend.validate("metadata frontend")
    as_count(meta.arena_bytes, "metadata arena_bytes")
    for key in ("arena_bytes_min", "model_bytes", "macs_per_frame"):
        if getattr(meta, key) is not None:
            as_count(getattr(meta, key), f"metadata {key}")
    for k, op in enumerate(meta.ops):
        as_str(op, f"metadata ops[{k}]")
    check_smoothing(meta.smoothing)
    if meta.note is not None:
        as_str(meta.note, "metadata note")


def _check_frame_and_logits(meta: ExportMetadata) -> None:
    """The frame and the logits: valid tensors ``(1, n)`` of the quantization's
    dtype."""
    meta.frame.validate("metadata frame")
    meta.logits.validate("metadata logits")
    for what, tensor in (("frame", meta.frame), ("logits", meta.logits)):
        if len(tensor.shape) != 2:
            raise MetadataError(
                f"metadata {what} shape must be [1, n], got {list(tensor.shape)}"
            )
    want = FRAME_DTYPES[meta.quantization]
    io = (("frame input", meta.frame), ("logits output", meta.logits))
    for what, tensor in io:
        if tensor.dtype != want or (want != "float32") != tensor.quantized:
            raise MetadataError(
                f"metadata quantization={meta.quantization!r} but the {what} is "
                f"{tensor.dtype} with scale {tensor.scale}"
            )


def _check_positions(meta: ExportMetadata) -> None:
    """Each side's positions (frame and state inputs; logits and state outputs) are
    ``0 .. len(states)``, each used once."""
    n = meta.num_tensors
    for side, first, tensors in (
        ("input", ("frame", meta.frame), [s.input for s in meta.states]),
        ("output", ("logits", meta.logits), [s.output for s in meta.states]),
    ):
        named = [first] + [
            (f"states[{k}] ('{s.name}') {side}", t)
            for k, (s, t) in enumerate(zip(meta.states, tensors, strict=True))
        ]
        used: dict[int, str] = {}
        for what, tensor in named:
            if not 0 <= tensor.position < n:
                raise MetadataError(
                    f"metadata {what} position={tensor.position} is out of range "
                    f"[0, {n}) (1 {first[0]} + {len(meta.states)} state(s))"
                )
            if tensor.position in used:
                raise MetadataError(
                    f"metadata {what} position={tensor.position} is already used "
                    f"by the {used[tensor.position]}"
                )
            used[tensor.position] = what


def check_model_tensors(
    meta: ExportMetadata,
    inputs: Sequence[QuantizedTensor],
    outputs: Sequence[QuantizedTensor],
) -> None:
    """The check of :meth:`ExportMetadata.check_model` (documented there).

    Raises:
        MetadataError: naming the first mismatch.
    """
    n = meta.num_tensors
    if len(inputs) != n or len(outputs) != n:
        raise MetadataError(
            f"metadata describes 1 frame + {len(meta.states)} state(s), i.e. {n} "
            f"inputs and outputs, but the model has {len(inputs)} inputs and "
            f"{len(outputs)} outputs"
        )
    f, g = meta.frame, meta.logits
    f.check_matches(inputs[f.position], f"frame input (model input {f.position})")
    g.check_matches(outputs[g.position], f"logits output (model output {g.position})")
    for k, s in enumerate(meta.states):
        where = f"state {k} ('{s.name}')"
        p, q = s.input.position, s.output.position
        s.input.check_matches(inputs[p], f"{where} input (model input {p})")
        s.output.check_matches(outputs[q], f"{where} output (model output {q})")
