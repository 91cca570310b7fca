"""Fold a per-channel ``MUL``/``ADD`` by a constant into the Dense before it.

The step graph writes BatchNormalization after a Dense (and, in the patch embedding,
after its ReLU): ``y = g * relu(W x) + b``. The converter keeps the ``g`` and ``b``
as int8 ``MUL``/``ADD`` ops after the int8 ``FULLY_CONNECTED``, so every such Dense
output is rounded to int8 twice or three times. The intermediate rounding costs
precision, and it amplifies any one-LSB difference of the Dense between runtimes
(TFLite Micro and LiteRT round the Dense's requantization differently) by up to the
largest ``g`` over the tensor's scale: several LSB on the next state.

This pass folds them into the Dense, exactly in real arithmetic (the folded Dense
computes from the same int8 weights and the same int32 accumulator):

- ``MUL`` by ``g`` (per channel or scalar, dequantized from its int8 constant): the
  weights' per-channel scales become ``w_scale * |g|`` (the int8 weights are kept;
  a negative ``g`` negates that channel's int8 weights and bias), the bias scales
  follow. Allowed when the Dense has no fused activation, or a ReLU and ``g > 0``
  (``g relu(y) = relu(g y)``).
- ``ADD`` of ``b`` after a Dense without fused activation: ``b`` is added to the
  int32 bias (``round(b / bias_scale)``, an error below 1/2 of an accumulator LSB);
  the ``ADD``'s fused activation moves to the Dense.

The Dense then writes the ``MUL``/``ADD`` output tensor directly, with its
parameters. Only a Dense whose output has no other reader is folded.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from .flatbuffer import TFLiteGraph, bias_scales

_NONE = schema.ActivationFunctionType.NONE
_RELU = schema.ActivationFunctionType.RELU


def _activation(op) -> int:
    options = op.builtinOptions
    return int(getattr(options, "fusedActivationFunction", _NONE) or _NONE)


def _constant_vector(graph: TFLiteGraph, tensor: int, units: int):
    """Dequantized per-channel values ``(units,)`` of a constant, or ``None``."""
    if tensor < 0 or not graph.is_constant(tensor):
        return None
    data = graph.tensor_data(tensor)
    q = graph.quantization(tensor)
    if data is None or q is None or graph.tensor_dtype(tensor) not in ("int8", "int16"):
        return None
    scales, zero_points = graph.quantization_arrays(tensor)
    if scales.size != 1:
        return None
    values = (data.astype(np.float64) - float(zero_points[0])) * float(scales[0])
    values = values.reshape(-1)
    if values.size == 1:
        return np.full(units, values[0])
    if values.size == units:
        return values
    return None


def _foldable(graph: TFLiteGraph, op, consumers):
    """``(reader_index, kind, values)`` for the single MUL/ADD reading ``op``."""
    if graph.op_name(op) != "FULLY_CONNECTED" or len(op.inputs) < 2:
        return None
    weights = int(op.inputs[1])
    if graph.tensor_dtype(weights) != "int8" or not graph.is_constant(weights):
        return None
    if graph.tensor_dtype(int(op.inputs[0])) != "int8":
        return None
    out = int(op.outputs[0])
    readers = consumers.get(out, [])
    if len(readers) != 1 or out in graph.outputs:
        return None
    reader = graph.operators[readers[0]]
    name = graph.op_name(reader)
    if name not in ("MUL", "ADD") or len(reader.inputs) != 2:
        return None
    other = [int(t) for t in reader.inputs if int(t) != out]
    if len(other) != 1 or graph.tensor_dtype(int(reader.outputs[0])) != "int8":
        return None
    units = graph.tensor_shape(weights)[0]
    values = _constant_vector(graph, other[0], units)
    if values is None:
        return None
    activation = _activation(op)
    if name == "MUL":
        if _activation(reader) != _NONE or np.any(values == 0):
            return None
        if activation == _RELU and np.any(values < 0):
            return None
        if activation not in (_NONE, _RELU):
            return None
        if np.any(values < 0) and np.any(graph.tensor_data(weights) == -128):
            return None
    elif activation != _NONE:
        return None
    return readers[0], name, values


def fold_affine_into_dense(graph: TFLiteGraph) -> int:
    """Fold in place (repeatedly); return the number of ``MUL``/``ADD`` ops removed."""
    folded = 0
    while True:
        consumers = graph.consumers()
        for op in graph.operators:
            found = _foldable(graph, op, consumers)
            if found is not None:
                break
        else:
            break
        reader_index, kind, values = found
        reader = graph.operators[reader_index]
        if kind == "MUL":
            _fold_mul(graph, op, values)
        else:
            _fold_add(graph, op, values)
            op.builtinOptions.fusedActivationFunction = _activation(reader)
        op.outputs = np.asarray([int(reader.outputs[0])], dtype=np.int32)
        graph.remove_operators([reader_index])
        folded += 1
    if folded:
        graph.remove_unused_tensors()
    return folded


def _weights_and_bias(graph: TFLiteGraph, op):
    weights = int(op.inputs[1])
    units = graph.tensor_shape(weights)[0]
    w_scale = graph.quantization_arrays(weights)[0].astype(np.float64)
    w_scale = np.broadcast_to(w_scale, (units,)).copy()
    bias = int(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else -1
    b_q = (
        graph.tensor_data(bias).astype(np.int64).reshape(-1)
        if bias >= 0
        else np.zeros(units, np.int64)
    )
    return weights, w_scale, b_q


def _write(graph: TFLiteGraph, op, w_q, w_scale, b_q) -> None:
    """New weight and bias tensors for ``op`` (the old ones may be shared)."""
    weights = int(op.inputs[1])
    name = graph.tensor_name(weights)
    w_scale = w_scale.astype(np.float32)
    new_w = graph.add_tensor(
        f"{name}/folded", w_q.shape, schema.TensorType.INT8, data=w_q
    )
    graph.set_quantization(new_w, w_scale, np.zeros(w_scale.size, np.int64), 0)
    b_scale = bias_scales(graph.quantization(int(op.inputs[0]))[0], w_scale)
    new_b = graph.add_bias(f"{name}/folded_bias", b_q, b_scale)
    op.inputs = np.asarray([int(op.inputs[0]), new_w, new_b], dtype=np.int32)


def _fold_mul(graph: TFLiteGraph, op, gain: np.ndarray) -> None:
    weights, w_scale, b_q = _weights_and_bias(graph, op)
    w_q = graph.tensor_data(weights).astype(np.int8).copy()
    sign = np.where(gain < 0, -1, 1)
    w_q = (w_q.astype(np.int16) * sign[:, None]).astype(np.int8)
    _write(graph, op, w_q, w_scale * np.abs(gain), b_q * sign)


def _fold_add(graph: TFLiteGraph, op, shift: np.ndarray) -> None:
    weights, w_scale, b_q = _weights_and_bias(graph, op)
    in_scale = np.float64(np.float32(graph.quantization(int(op.inputs[0]))[0]))
    b_scale = in_scale * w_scale.astype(np.float32).astype(np.float64)
    b_q = b_q + np.round(shift / b_scale).astype(np.int64)
    _write(graph, op, graph.tensor_data(weights).astype(np.int8), w_scale, b_q)
