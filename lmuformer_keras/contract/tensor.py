"""``QuantizedTensor`` and ``ExportedState``: the tensors of an exported step graph.

A :class:`QuantizedTensor` is one input or output of the converted model: its
position in the model's input (or output) list, its shape WITH the batch axis (1),
dtype, scale and zero point. An :class:`ExportedState` is a streaming state: its name,
the state input and state output tensors (the exporter ties them: same shape, dtype,
scale and zero point, so an app copies the output's bytes to the input) and its
initial value.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .fields import (
    MetadataError,
    as_count,
    as_dict,
    as_int,
    as_number,
    as_optional_number,
    as_shape,
    as_str,
    only_keys,
    require,
)
from .quantization import dequantize, quantize
from .state import StateSpec

TENSOR_DTYPES = ("int8", "int16", "uint8", "float32")
"""Dtypes of the frame, logits and state tensors an app can feed and read."""
INTEGER_DTYPES = ("int8", "int16", "uint8")
TENSOR_KEYS = ("position", "name", "shape", "dtype", "scale", "zero_point")
STATE_KEYS = ("name", "input", "output", "initial_value", "initial_quantized")
SCALE_RTOL = 1e-6
"""Relative tolerance when comparing scales (float32 in the model, float64 in JSON)."""


def same_scale(a: float | None, b: float | None) -> bool:
    """Whether two scales are equal (``None`` and 0 both mean not quantized)."""
    if not a and not b:
        return True
    if not a or not b:
        return False
    return math.isclose(float(a), float(b), rel_tol=SCALE_RTOL, abs_tol=0.0)


@dataclasses.dataclass(frozen=True)
class QuantizedTensor:
    """One input or output tensor of the exported model.

    Attributes:
        position: Index in the model's inputs (or outputs): TFLite Micro's
            ``input(i)``/``output(i)``, LiteRT's ``get_input_details()[i]``.
        shape: Shape with the batch axis, e.g. ``(1, 40)``.
        dtype: ``"int8"``, ``"int16"``, ``"uint8"`` or ``"float32"``.
        scale: Quantization scale, ``None`` when not quantized.
        zero_point: Quantization zero point, ``None`` when not quantized.
        name: The tensor's name in the model (informative), or ``None``.
    """

    position: int
    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "position", int(self.position))
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        dtype = self.dtype if isinstance(self.dtype, str) else np.dtype(self.dtype).name
        object.__setattr__(self, "dtype", dtype)
        if not self.scale:  # 0.0 (LiteRT's "not quantized") or None
            object.__setattr__(self, "scale", None)
            object.__setattr__(self, "zero_point", None)
        else:
            object.__setattr__(self, "scale", float(self.scale))
            object.__setattr__(self, "zero_point", int(self.zero_point or 0))

    # ------------------------------------------------------------------ properties
    @property
    def quantized(self) -> bool:
        """Whether values are integers ``q`` for ``(q - zero_point) * scale``."""
        return self.scale is not None and self.dtype in INTEGER_DTYPES

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor (what an app copies between a state output and input)."""
        return self.elements * self.numpy_dtype.itemsize

    # ---------------------------------------------------------------- arithmetic
    def quantize(self, x) -> np.ndarray:
        """Float values -> this tensor's representation (halves away from zero)."""
        return quantize(x, self.scale, self.zero_point, self.dtype)

    def dequantize(self, q) -> np.ndarray:
        """This tensor's values -> float32."""
        return dequantize(q, self.scale, self.zero_point)

    # ---------------------------------------------------------------- validation
    def validate(self, where: str) -> None:
        """Checks the fields on their own.

        Raises:
            MetadataError: naming the field and its value.
        """
        as_count(self.position, f"{where} position")
        if not self.shape or self.shape[0] != 1 or min(self.shape) < 1:
            raise MetadataError(
                f"{where} shape must start with the batch axis 1 and have entries "
                f">= 1, got {list(self.shape)}"
            )
        if self.dtype not in TENSOR_DTYPES:
            raise MetadataError(
                f"{where} dtype {self.dtype!r} is not supported (one of "
                f"{list(TENSOR_DTYPES)})"
            )
        if self.scale is not None:
            if self.dtype not in INTEGER_DTYPES:
                raise MetadataError(
                    f"{where}: a {self.dtype} tensor cannot have scale {self.scale!r} "
                    "(only integer tensors are quantized)"
                )
            if not (math.isfinite(self.scale) and self.scale > 0):
                raise MetadataError(
                    f"{where} scale must be a finite number > 0, got {self.scale!r}"
                )
            info = np.iinfo(self.numpy_dtype)
            if not info.min <= self.zero_point <= info.max:
                raise MetadataError(
                    f"{where} zero_point={self.zero_point} is out of the {self.dtype} "
                    f"range [{info.min}, {info.max}]"
                )
        elif self.dtype in INTEGER_DTYPES:
            raise MetadataError(
                f"{where}: an {self.dtype} tensor needs a scale and a zero_point, got "
                "scale=None"
            )

    def check_matches(self, model: QuantizedTensor, what: str) -> None:
        """Checks that ``model`` (the interpreter's tensor) is this tensor.

        Raises:
            MetadataError: ``"<what>: ..."`` naming the first difference.
        """
        if model.shape != self.shape:
            raise MetadataError(
                f"{what}: the model's tensor has shape {list(model.shape)}, metadata "
                f"implies {list(self.shape)}"
            )
        if model.dtype != self.dtype:
            raise MetadataError(
                f"{what}: metadata dtype {self.dtype!r} but the model's tensor is "
                f"{model.dtype!r}"
            )
        if not same_scale(self.scale, model.scale):
            raise MetadataError(
                f"{what}: metadata scale {self.scale} but the model's tensor has scale "
                f"{model.scale}"
            )
        if model.scale and self.zero_point != model.zero_point:
            raise MetadataError(
                f"{what}: metadata zero_point {self.zero_point} but the model's tensor "
                f"has zero_point {model.zero_point}"
            )

    def same_layout(self, other: QuantizedTensor) -> bool:
        """Same shape, dtype, scale and zero point (the position may differ)."""
        return (
            self.shape == other.shape
            and self.dtype == other.dtype
            and same_scale(self.scale, other.scale)
            and self.zero_point == other.zero_point
        )

    # ---------------------------------------------------------------------- JSON
    def to_json(self) -> dict[str, Any]:
        """The JSON object (keys :data:`TENSOR_KEYS`)."""
        return {
            "position": self.position,
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "scale": self.scale,
            "zero_point": self.zero_point,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> QuantizedTensor:
        """Reads and validates a JSON object written by :meth:`to_json`.

        Raises:
            MetadataError: naming the field (``"<where> <key>"``) and its value.
        """
        data = as_dict(data, where)
        only_keys(data, TENSOR_KEYS, where)
        name = data.get("name")
        dtype = as_str(require(data, "dtype", where), f"{where} dtype")
        scale = as_optional_number(data.get("scale"), f"{where} scale")
        zero_point = data.get("zero_point")
        if zero_point is not None:
            zero_point = as_int(zero_point, f"{where} zero_point")
        if scale is not None and zero_point is None:
            raise MetadataError(f"{where}: scale {scale!r} without a zero_point")
        tensor = cls(
            position=as_count(require(data, "position", where), f"{where} position"),
            shape=as_shape(require(data, "shape", where), f"{where} shape"),
            dtype=dtype,
            scale=scale,
            zero_point=zero_point,
            name=None if name is None else as_str(name, f"{where} name"),
        )
        if scale == 0.0:
            raise MetadataError(f"{where} scale must be > 0 (or null), got 0")
        tensor.validate(where)
        return tensor

    @classmethod
    def from_tensor_detail(cls, detail: Mapping, position: int) -> QuantizedTensor:
        """The tensor of an interpreter's ``get_input_details()[position]`` (LiteRT:
        ``shape``, ``dtype``, ``quantization=(scale, zero_point)``, ``name``)."""
        scale, zero_point = detail.get("quantization", (0.0, 0))
        return cls(
            position=position,
            shape=tuple(int(d) for d in detail["shape"]),
            dtype=np.dtype(detail["dtype"]).name,
            scale=float(scale) if scale else None,
            zero_point=int(zero_point) if scale else None,
            name=detail.get("name"),
        )


@dataclasses.dataclass(frozen=True)
class ExportedState:
    """A streaming state of the exported model.

    Attributes:
        name: The state's name (its :class:`StateSpec` name).
        input: The state input tensor.
        output: The state output tensor: the same shape, dtype, scale and zero point
            as ``input`` (its position may differ); after each invoke an app copies
            its bytes to ``input``.
        initial_value: The float value every element starts from, when the initial
            state is constant (it is: zeros), else ``None``.
        initial_quantized: ``initial_value`` quantized with ``input``'s scale and
            zero point (``None`` for a float tensor or no ``initial_value``).
    """

    name: str
    input: QuantizedTensor
    output: QuantizedTensor
    initial_value: float | None = 0.0
    initial_quantized: int | None = None

    @property
    def spec(self) -> StateSpec:
        """The model-side :class:`StateSpec` (shape without the batch axis)."""
        return StateSpec(self.name, self.input.shape[1:])

    def initial_array(self) -> np.ndarray:
        """The initial state input, ``input.shape`` of ``input.dtype``.

        ``initial_quantized`` when given, else ``initial_value`` (default 0.0)
        quantized.
        """
        if self.initial_quantized is not None and self.input.quantized:
            value = np.array(self.initial_quantized, dtype=self.input.numpy_dtype)
        else:
            value = self.input.quantize(self.initial_value or 0.0)
        return np.full(self.input.shape, value, dtype=self.input.numpy_dtype)

    def validate(self, where: str) -> None:
        """Checks the state on its own: tied tensors, initial value in range.

        Raises:
            MetadataError: naming the field and its value.
        """
        as_str(self.name, f"{where} name")
        self.input.validate(f"{where} input")
        self.output.validate(f"{where} output")
        if not self.input.same_layout(self.output):
            a, b = self.input, self.output
            raise MetadataError(
                f"{where}: the input ({list(a.shape)} {a.dtype}, scale {a.scale}, "
                f"zero_point {a.zero_point}) and output ({list(b.shape)} {b.dtype}, "
                f"scale {b.scale}, zero_point {b.zero_point}) differ; a state's "
                "output bytes are copied to its input, so they must be the same"
            )
        if self.initial_value is not None:
            as_number(self.initial_value, f"{where} initial_value")
        if self.initial_quantized is not None:
            if not self.input.quantized:
                raise MetadataError(
                    f"{where} initial_quantized={self.initial_quantized} but the "
                    f"state tensor is {self.input.dtype}, not quantized"
                )
            info = np.iinfo(self.input.numpy_dtype)
            if not info.min <= self.initial_quantized <= info.max:
                raise MetadataError(
                    f"{where} initial_quantized={self.initial_quantized} is out of the "
                    f"{self.input.dtype} range [{info.min}, {info.max}]"
                )

    def to_json(self) -> dict[str, Any]:
        """The JSON object (keys :data:`STATE_KEYS`)."""
        return {
            "name": self.name,
            "input": self.input.to_json(),
            "output": self.output.to_json(),
            "initial_value": self.initial_value,
            "initial_quantized": self.initial_quantized,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> ExportedState:
        """Reads and validates a JSON object written by :meth:`to_json`.

        ``where`` is e.g. ``"metadata states[0]"``; the state's name is added to it
        in later messages.

        Raises:
            MetadataError: naming the field and its value.
        """
        data = as_dict(data, where)
        name = as_str(require(data, "name", where), f"{where} name")
        where = f"{where} ('{name}')"
        only_keys(data, STATE_KEYS, where)
        initial_quantized = data.get("initial_quantized")
        if initial_quantized is not None:
            initial_quantized = as_int(initial_quantized, f"{where} initial_quantized")
        state = cls(
            name=name,
            input=QuantizedTensor.from_json(
                require(data, "input", where), f"{where} input"
            ),
            output=QuantizedTensor.from_json(
                require(data, "output", where), f"{where} output"
            ),
            initial_value=as_optional_number(
                data.get("initial_value"), f"{where} initial_value"
            ),
            initial_quantized=initial_quantized,
        )
        state.validate(where)
        return state
