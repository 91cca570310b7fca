"""Read and edit a ``.tflite`` flatbuffer (single subgraph) without TensorFlow.

Uses the object API of the TFLite schema shipped with ai-edge-litert
(``ai_edge_litert.schema_py_generated``). :meth:`TFLiteGraph.to_bytes` writes the
result back, 16-byte aligned and with every repeated vector and table stored once
(:mod:`.flatbuffer_writer`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from .flatbuffer_writer import model_to_bytes

BUILTIN_NAMES: dict[int, str] = {
    value: name
    for name, value in vars(schema.BuiltinOperator).items()
    if not name.startswith("_")
}
TENSOR_TYPE_NAMES: dict[int, str] = {
    value: name.lower()
    for name, value in vars(schema.TensorType).items()
    if not name.startswith("_")
}
NUMPY_DTYPES = {
    "float32": np.float32,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "bool": np.bool_,
}
INTEGER_TYPES = frozenset({"int8", "int16", "int32", "int64", "uint8", "bool"})


def bias_scales(input_scale, weight_scales) -> np.ndarray:
    """A Dense/conv bias's scales: ``input_scale * weight_scales`` as a float32
    product (the kernels check the bias scale against exactly that)."""
    return np.float32(input_scale) * np.asarray(weight_scales, np.float32)


class TFLiteGraph:
    """Mutable view of the first subgraph of a TFLite model.

    Args:
        model_bytes: the flatbuffer (``bytes``).
    """

    def __init__(self, model_bytes: bytes):
        raw = schema.Model.GetRootAsModel(bytearray(model_bytes), 0)
        self.model = schema.ModelT.InitFromObj(raw)
        if not self.model.subgraphs:
            raise ValueError("TFLiteGraph: the model has no subgraph")
        self.subgraph = self.model.subgraphs[0]

    # ----------------------------------------------------------------- reading
    @property
    def tensors(self) -> list:
        return self.subgraph.tensors

    @property
    def operators(self) -> list:
        return self.subgraph.operators or []

    @property
    def inputs(self) -> list[int]:
        return [int(i) for i in self.subgraph.inputs]

    @property
    def outputs(self) -> list[int]:
        return [int(i) for i in self.subgraph.outputs]

    def op_name(self, op) -> str:
        """Builtin operator name (e.g. ``"FULLY_CONNECTED"``) or ``"CUSTOM:<code>"``."""
        code = self.model.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        if builtin == schema.BuiltinOperator.CUSTOM:
            custom = code.customCode.decode() if code.customCode else "?"
            return f"CUSTOM:{custom}"
        return BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}")

    def op_names(self) -> list[str]:
        """Sorted unique operator names used by the subgraph."""
        return sorted({self.op_name(op) for op in self.operators})

    def tensor_name(self, index: int) -> str:
        name = self.tensors[index].name
        if name is None:
            return ""
        return name.decode() if isinstance(name, bytes) else str(name)

    def tensor_dtype(self, index: int) -> str:
        return TENSOR_TYPE_NAMES.get(int(self.tensors[index].type), "unknown")

    def tensor_shape(self, index: int) -> tuple[int, ...]:
        shape = self.tensors[index].shape
        return () if shape is None else tuple(int(d) for d in shape)

    def is_constant(self, index: int) -> bool:
        buffer_index = self.tensors[index].buffer
        if not buffer_index:
            return False
        data = self.model.buffers[buffer_index].data
        return data is not None and len(data) > 0

    def quantization(self, index: int) -> tuple[float, int] | None:
        """Per-tensor ``(scale, zero_point)``; ``None`` when not quantized.

        Per-channel parameters (weights) return the first channel's pair; use
        :meth:`quantization_arrays` for all of them.
        """
        scales, zero_points = self.quantization_arrays(index)
        if scales.size == 0:
            return None
        return float(scales[0]), int(zero_points[0])

    def quantization_arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        q = self.tensors[index].quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        zero_points = q.zeroPoint if q.zeroPoint is not None else [0] * len(q.scale)
        return (
            np.asarray(q.scale, dtype=np.float32),
            np.asarray(zero_points, dtype=np.int64),
        )

    def producers(self) -> dict[int, int]:
        """Map tensor index -> index of the operator that writes it."""
        return {
            int(t): i
            for i, op in enumerate(self.operators)
            for t in op.outputs
            if t >= 0
        }

    def consumers(self) -> dict[int, list[int]]:
        """Map tensor index -> indices of the operators that read it."""
        result: dict[int, list[int]] = {}
        for i, op in enumerate(self.operators):
            for t in op.inputs:
                if t >= 0:
                    result.setdefault(int(t), []).append(i)
        return result

    def tensor_data(self, index: int) -> np.ndarray | None:
        """Constant data of a tensor, shaped and typed; ``None`` when not constant."""
        if not self.is_constant(index):
            return None
        dtype = NUMPY_DTYPES[self.tensor_dtype(index)]
        raw = bytes(np.asarray(self.model.buffers[self.tensors[index].buffer].data))
        return np.frombuffer(raw, dtype=dtype).reshape(self.tensor_shape(index))

    def tensor_producer_name(self, index: int) -> str | None:
        op_index = self.producers().get(index)
        return None if op_index is None else self.op_name(self.operators[op_index])

    # ----------------------------------------------------------------- editing
    def opcode_index(self, builtin: int, version: int = 1) -> int:
        """Index of the operator code for ``builtin``, added when missing."""
        for i, code in enumerate(self.model.operatorCodes):
            if max(int(code.builtinCode), int(code.deprecatedBuiltinCode)) == builtin:
                return i
        code = schema.OperatorCodeT()
        code.builtinCode = builtin
        code.deprecatedBuiltinCode = min(builtin, 127)
        code.version = version
        self.model.operatorCodes.append(code)
        return len(self.model.operatorCodes) - 1

    def add_tensor(
        self,
        name: str,
        shape: Iterable[int],
        tensor_type: int,
        scale: float | None = None,
        zero_point: int | None = None,
        data: np.ndarray | None = None,
    ) -> int:
        """Append a tensor (with its own buffer) and return its index."""
        buffer = schema.BufferT()
        if data is not None:
            buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
        self.model.buffers.append(buffer)
        tensor = schema.TensorT()
        tensor.name = name.encode()
        tensor.shape = np.asarray(list(shape), dtype=np.int32)
        tensor.type = tensor_type
        tensor.buffer = len(self.model.buffers) - 1
        if scale is not None:
            q = schema.QuantizationParametersT()
            q.scale = [float(scale)]
            q.zeroPoint = [int(zero_point or 0)]
            tensor.quantization = q
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def set_quantization(
        self,
        index: int,
        scales,
        zero_points,
        quantized_dimension: int = 0,
    ) -> None:
        """Set per-tensor (one value) or per-channel quantization parameters."""
        q = schema.QuantizationParametersT()
        q.scale = [float(s) for s in np.atleast_1d(scales)]
        q.zeroPoint = [int(z) for z in np.atleast_1d(zero_points)]
        q.quantizedDimension = int(quantized_dimension)
        self.tensors[index].quantization = q

    def add_bias(self, name: str, values, scales) -> int:
        """An int32 per-channel bias tensor (clipped to int32), zero points 0.

        ``scales``: the accumulator's scales, :func:`bias_scales`.
        """
        values = np.clip(np.asarray(values), -(2**31), 2**31 - 1).astype(np.int32)
        index = self.add_tensor(
            name, values.shape, schema.TensorType.INT32, data=values
        )
        scales = np.asarray(scales, np.float32)
        self.set_quantization(index, scales, np.zeros(scales.size, np.int64), 0)
        return index

    def replace_tensor(self, old: int, new: int) -> None:
        """Make every operator, graph input and graph output use ``new`` for ``old``."""

        def _swap(indices):
            if indices is None:
                return None
            return np.asarray(
                [new if int(t) == old else int(t) for t in indices], dtype=np.int32
            )

        for op in self.operators:
            op.inputs = _swap(op.inputs)
            op.outputs = _swap(op.outputs)
        self.subgraph.inputs = _swap(self.subgraph.inputs)
        self.subgraph.outputs = _swap(self.subgraph.outputs)

    def remove_operators(self, indices: Iterable[int]) -> None:
        """Delete operators by position (tensors stay: see remove_unused_tensors)."""
        drop = set(int(i) for i in indices)
        self.subgraph.operators = [
            op for i, op in enumerate(self.operators) if i not in drop
        ]

    def strip_tensor_names(self, keep: Iterable[int] = ()) -> int:
        """Drop the names of all tensors but ``keep``; return the characters dropped.

        Names are for people and tools: the interpreters address tensors by index
        (LiteRT reports a tensor without a name as ``""``). The field is left out
        altogether, not set to an empty string (12 bytes less per tensor).
        """
        keep = set(int(t) for t in keep)
        saved = 0
        for index, tensor in enumerate(self.tensors):
            if index not in keep and tensor.name is not None:
                saved += len(tensor.name)
                tensor.name = None
        return saved

    def share_empty_buffers(self) -> int:
        """Point every tensor without data at buffer 0; return the buffers dropped.

        The converter gives each activation an empty buffer of its own; the schema's
        buffer 0 is the shared empty sentinel, so they all can use it.
        """
        for index, tensor in enumerate(self.tensors):
            if tensor.buffer and not self.is_constant(index):
                tensor.buffer = 0
        return self.remove_unused_buffers()

    def dedup_constants(self) -> int:
        """Merge constant tensors equal in type, shape, quantization and data.

        Each user then reads one tensor (fewer tensors in flash and fewer TFLite
        Micro ``TfLiteEvalTensor`` records in the arena). Returns the number merged.
        """
        seen: dict[tuple, int] = {}
        outputs = set(self.outputs) | set(self.inputs)
        merged = 0
        for index, tensor in enumerate(self.tensors):
            if index in outputs or not self.is_constant(index):
                continue
            scales, zero_points = self.quantization_arrays(index)
            q = tensor.quantization
            key = (
                int(tensor.type),
                self.tensor_shape(index),
                scales.tobytes(),
                zero_points.tobytes(),
                0 if q is None else int(q.quantizedDimension or 0),
                bytes(np.asarray(self.model.buffers[tensor.buffer].data, np.uint8)),
            )
            if key in seen:
                self.replace_tensor(index, seen[key])
                merged += 1
            else:
                seen[key] = index
        if merged:
            self.remove_unused_tensors()
        return merged

    def remove_dead_operators(self) -> int:
        """Delete operators none of whose outputs is read or a graph output."""
        removed = 0
        while True:
            read = set(self.outputs)
            for op in self.operators:
                read.update(int(t) for t in op.inputs if t >= 0)
            dead = [
                i
                for i, op in enumerate(self.operators)
                if not any(int(t) in read for t in op.outputs)
            ]
            if not dead:
                return removed
            self.remove_operators(dead)
            removed += len(dead)

    def insert_operator(
        self, position: int, builtin: int, inputs, outputs, options=None
    ):
        """Insert a builtin operator at ``position`` of the execution order."""
        op = schema.OperatorT()
        op.opcodeIndex = self.opcode_index(builtin)
        op.inputs = np.asarray(list(inputs), dtype=np.int32)
        op.outputs = np.asarray(list(outputs), dtype=np.int32)
        if options is not None:
            op.builtinOptionsType, op.builtinOptions = options
        if self.subgraph.operators is None:
            self.subgraph.operators = []
        self.subgraph.operators.insert(position, op)
        return op

    def remove_unused_tensors(self) -> int:
        """Drop tensors no operator, input or output refers to; re-index the rest."""
        used: set[int] = set(self.inputs) | set(self.outputs)
        for op in self.operators:
            used.update(int(t) for t in op.inputs if t >= 0)
            used.update(int(t) for t in op.outputs if t >= 0)
            if op.intermediates is not None:
                used.update(int(t) for t in op.intermediates if t >= 0)
        keep = [i for i in range(len(self.tensors)) if i in used]
        if len(keep) == len(self.tensors):
            return 0
        remap = {old: new for new, old in enumerate(keep)}

        def _map(indices):
            if indices is None:
                return None
            return np.asarray(
                [remap[int(t)] if t >= 0 else int(t) for t in indices], dtype=np.int32
            )

        removed = len(self.tensors) - len(keep)
        self.subgraph.tensors = [self.tensors[i] for i in keep]
        self.subgraph.inputs = _map(self.subgraph.inputs)
        self.subgraph.outputs = _map(self.subgraph.outputs)
        for op in self.operators:
            op.inputs = _map(op.inputs)
            op.outputs = _map(op.outputs)
            op.intermediates = _map(op.intermediates)
        for signature in self.model.signatureDefs or []:
            for tensor_map in (signature.inputs or []) + (signature.outputs or []):
                tensor_map.tensorIndex = remap[int(tensor_map.tensorIndex)]
        self.remove_unused_buffers()
        return removed

    def remove_unused_buffers(self) -> int:
        """Drop buffers no tensor or metadata entry refers to (they take flash)."""
        used = {0}  # buffer 0: the empty sentinel
        for subgraph in self.model.subgraphs:
            used.update(int(t.buffer) for t in subgraph.tensors)
        used.update(int(m.buffer) for m in self.model.metadata or [])
        keep = [i for i in range(len(self.model.buffers)) if i in used]
        if len(keep) == len(self.model.buffers):
            return 0
        remap = {old: new for new, old in enumerate(keep)}
        removed = len(self.model.buffers) - len(keep)
        self.model.buffers = [self.model.buffers[i] for i in keep]
        for subgraph in self.model.subgraphs:
            for tensor in subgraph.tensors:
                tensor.buffer = remap[int(tensor.buffer)]
        for entry in self.model.metadata or []:
            entry.buffer = remap[int(entry.buffer)]
        if self.model.metadataBuffer is not None:
            self.model.metadataBuffer = [
                remap[int(b)] for b in self.model.metadataBuffer if int(b) in remap
            ]
        return removed

    def to_bytes(self) -> bytes:
        """Serialize: constant buffers aligned to 16 bytes, equal objects shared
        (:func:`.flatbuffer_writer.model_to_bytes`)."""
        return model_to_bytes(self.model, self.subgraph)
