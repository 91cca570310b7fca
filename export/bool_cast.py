"""Quantize the float "spike islands" the converter leaves after ``CAST(bool)``.

A Heaviside written as ``ops.cast(x >= th, "float32")`` (the LIF neurons' spike) is
converted into ``GREATER_EQUAL -> CAST(bool -> float32)``, and the converter leaves
the ops fed by that float tensor in float32 (found on TF 2.21 with the real spiking
LMUFormer): ``QUANTIZE`` (the simple case), ``SUB(1, s)`` (the reset ``1 - s``),
``RESHAPE``/``STRIDED_SLICE``/``CONCATENATION`` (spikes shifted into a conv buffer or
concatenated with other spikes) and ``FULLY_CONNECTED`` with float weights (a Dense
on spikes), each island ending in ``QUANTIZE`` ops. This pass makes every such island
integer, exactly:

- ``CAST(c)`` and every elementwise op of a spike with a constant (``ADD``, ``SUB``,
  ``MUL``) become ``SELECT_V2(c, q(f(1)), q(f(0)))``: the two possible values,
  quantized with the output's parameters (exact: a spike is 0 or 1);
- shape ops and ``CONCATENATION`` of spikes stay as they are, on integer tensors;
  tensors linked by them share one scale/zero point, chosen so that every value the
  island can hold is represented exactly (the calibrated ``QUANTIZE`` parameters when
  they do, else ``[min, max]`` of the values over 255 steps);
- ``FULLY_CONNECTED`` on spikes gets int8 per-channel weights (symmetric), an int32
  bias at ``input_scale * weight_scale`` and its ``QUANTIZE`` consumer's output
  parameters, as the converter quantizes every other Dense;
- a ``QUANTIZE`` that now maps a tensor to the same parameters is removed.

An island holding any other op is left alone (the graph check then names its float
tensors).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from .flatbuffer import TFLiteGraph, bias_scales

_INT_TYPES = {
    schema.TensorType.INT8: (np.int8, -128, 127),
    schema.TensorType.INT16: (np.int16, -32768, 32767),
}
_SHAPE_OPS = {
    "RESHAPE",
    "SQUEEZE",
    "EXPAND_DIMS",
    "STRIDED_SLICE",
    "SLICE",
    "TRANSPOSE",
}
_ELEMENTWISE = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply}


@dataclass
class _Value:
    """What an island tensor can hold.

    ``cond`` set: the tensor is ``where(cond, true, false)`` elementwise (arrays
    broadcast against ``cond``); else only the set of values is known.
    """

    values: np.ndarray
    cond: int | None = None
    true: np.ndarray | None = None
    false: np.ndarray | None = None


@dataclass
class _Island:
    values: dict[int, _Value] = field(default_factory=dict)
    selects: list[int] = field(default_factory=list)  # CAST / elementwise op indices
    reshapes: list[int] = field(default_factory=list)  # shape ops and concatenations
    dense: list[int] = field(default_factory=list)  # FULLY_CONNECTED on spikes
    sinks: list[int] = field(default_factory=list)  # QUANTIZE ops reading the island
    problems: list[str] = field(default_factory=list)


def _is_bool_cast(graph: TFLiteGraph, op) -> bool:
    return (
        graph.op_name(op) == "CAST"
        and len(op.inputs) == 1
        and graph.tensor_dtype(int(op.inputs[0])) == "bool"
        and graph.tensor_dtype(int(op.outputs[0])) == "float32"
    )


def _float_const(graph: TFLiteGraph, tensor: int) -> np.ndarray | None:
    if tensor < 0 or graph.tensor_dtype(tensor) != "float32":
        return None
    data = graph.tensor_data(tensor)
    return None if data is None else np.asarray(data, np.float64)


def _analyse(graph: TFLiteGraph) -> _Island:
    island = _Island()
    dense_outputs: set[int] = set()
    for index, op in enumerate(graph.operators):
        name = graph.op_name(op)
        inputs = [int(t) for t in op.inputs if t >= 0]
        out = int(op.outputs[0]) if len(op.outputs) else -1
        if _is_bool_cast(graph, op):
            one, zero = np.asarray(1.0), np.asarray(0.0)
            island.values[out] = _Value(np.asarray([0.0, 1.0]), inputs[0], one, zero)
            island.selects.append(index)
            continue
        if not any(t in island.values or t in dense_outputs for t in inputs):
            continue
        if name == "QUANTIZE" and graph.tensor_dtype(out) in ("int8", "int16"):
            island.sinks.append(index)
            continue
        if any(t in dense_outputs for t in inputs):
            island.problems.append(f"{name} reads a float FULLY_CONNECTED on spikes")
            continue
        if name in _ELEMENTWISE and len(inputs) == 2:
            spike = [t for t in inputs if t in island.values]
            other = [t for t in inputs if t not in island.values]
            source = island.values[spike[0]] if len(spike) == 1 else None
            constant = _float_const(graph, other[0]) if other else None
            if source is None or source.cond is None or constant is None:
                island.problems.append(f"{name} on spikes")
                continue
            fn = _ELEMENTWISE[name]
            swap = inputs[0] != spike[0]
            true = fn(constant, source.true) if swap else fn(source.true, constant)
            false = fn(constant, source.false) if swap else fn(source.false, constant)
            values = np.unique(np.concatenate([np.ravel(true), np.ravel(false)]))
            island.values[out] = _Value(values, source.cond, true, false)
            island.selects.append(index)
        elif name in _SHAPE_OPS and inputs[0] in island.values:
            if any(graph.tensor_dtype(t) == "float32" for t in inputs[1:]):
                island.problems.append(f"{name} on spikes with float operands")
                continue
            island.values[out] = _Value(island.values[inputs[0]].values)
            island.reshapes.append(index)
        elif name == "CONCATENATION" and all(t in island.values for t in inputs):
            values = np.unique(
                np.concatenate([island.values[t].values for t in inputs])
            )
            island.values[out] = _Value(values)
            island.reshapes.append(index)
        elif (
            name == "FULLY_CONNECTED"
            and inputs[0] in island.values
            and _float_const(graph, int(op.inputs[1])) is not None
            and (
                len(op.inputs) < 3
                or op.inputs[2] < 0
                or _float_const(graph, int(op.inputs[2])) is not None
            )
        ):
            dense_outputs.add(out)
            island.dense.append(index)
        else:
            island.problems.append(f"{name} on spikes")
    consumers = graph.consumers()
    outputs = set(graph.outputs)
    sinks = set(island.sinks)
    for index in island.dense:
        out = int(graph.operators[index].outputs[0])
        users = consumers.get(out, [])
        if out in outputs or not users or not set(users) <= sinks:
            island.problems.append("FULLY_CONNECTED on spikes not followed by QUANTIZE")
    if any(t in outputs for t in island.values):
        island.problems.append("a float spike tensor is a graph output")
    return island


class _Groups:
    """Union-find over tensors that must share quantization parameters."""

    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, t: int) -> int:
        self.parent.setdefault(t, t)
        while self.parent[t] != t:
            self.parent[t] = self.parent[self.parent[t]]
            t = self.parent[t]
        return t

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def _exact(values: np.ndarray, scale: float, zero_point: int, low: int, high: int):
    q = values / scale + zero_point
    return bool(
        np.all(np.abs(q - np.round(q)) < 1e-3) and q.min() >= low and q.max() <= high
    )


def _quantize(values, scale: float, zero_point: int, dtype, low: int, high: int):
    q = np.round(np.asarray(values, np.float64) / scale) + zero_point
    return np.clip(q, low, high).astype(dtype)


def _params(graph, tensors, values, sink_outputs, tensor_type):
    """Shared ``(scale, zero_point)`` for a group: exact for every value."""
    _, low, high = _INT_TYPES[tensor_type]
    for out in sink_outputs:
        q = graph.quantization(out)
        if q is not None and _exact(values, q[0], q[1], low, high):
            return float(np.float32(q[0])), q[1]
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    if hi == lo:
        hi = lo + 1.0
    scale = float(np.float32((hi - lo) / (high - low)))
    zero_point = int(np.clip(np.round(low - lo / scale), low, high))
    return scale, zero_point


def fold_bool_casts(graph: TFLiteGraph) -> int:
    """Rewrite ``graph`` in place; return the number of ``CAST`` ops removed.

    Leaves the graph untouched when an island holds an op this pass does not
    handle (the caller's integer-only check then reports it).
    """
    island = _analyse(graph)
    casts = sum(_is_bool_cast(graph, graph.operators[i]) for i in island.selects)
    if not casts or island.problems:
        return 0
    ops = graph.operators
    consumers = graph.consumers()
    sink_set = set(island.sinks)
    sink_type = [int(graph.tensors[int(ops[i].outputs[0])].type) for i in island.sinks]
    tensor_type = sink_type[0] if sink_type else schema.TensorType.INT8
    params = _island_params(graph, island, consumers, sink_set, tensor_type)
    _rewrite_selects(graph, island, params, tensor_type)
    for index in island.dense:
        _quantize_dense(graph, ops[index], consumers, sink_set)
    graph.remove_operators(_identity_quantizes(graph, island, consumers))
    graph.remove_dead_operators()
    graph.remove_unused_tensors()
    return casts


def _island_params(
    graph: TFLiteGraph, island, consumers, sink_set, tensor_type: int
) -> dict[int, tuple[float, int]]:
    """One ``(scale, zero_point)`` per group of tensors joined by reshapes and
    concatenations, set on each of them; returned per tensor."""
    ops = graph.operators
    groups = _Groups()
    for t in island.values:
        groups.find(t)
    for index in island.reshapes:
        op = ops[index]
        data_inputs = (
            [int(t) for t in op.inputs]
            if graph.op_name(op) == "CONCATENATION"
            else [int(op.inputs[0])]
        )
        for t in data_inputs:
            groups.union(t, int(op.outputs[0]))
    members: dict[int, list[int]] = {}
    for t in island.values:
        members.setdefault(groups.find(t), []).append(t)
    params: dict[int, tuple[float, int]] = {}
    for tensors in members.values():
        values = np.unique(np.concatenate([island.values[t].values for t in tensors]))
        sink_outputs = [
            int(ops[u].outputs[0])
            for t in tensors
            for u in consumers.get(t, [])
            if u in sink_set
        ]
        p = _params(graph, tensors, values, sink_outputs, tensor_type)
        for t in tensors:
            params[t] = p
            graph.tensors[t].type = tensor_type
            graph.set_quantization(t, p[0], p[1])
    return params


def _rewrite_selects(
    graph: TFLiteGraph, island, params: dict[int, tuple[float, int]], tensor_type: int
) -> None:
    """Each bool ``SELECT`` becomes a ``SELECT_V2`` between two integer constants."""
    ops = graph.operators
    dtype, low, high = _INT_TYPES[tensor_type]
    select_code = graph.opcode_index(schema.BuiltinOperator.SELECT_V2)
    for index in island.selects:
        op = ops[index]
        out = int(op.outputs[0])
        value = island.values[out]
        scale, zero_point = params[out]
        name = graph.tensor_name(out)
        constants = []
        for label, data in (("one", value.true), ("zero", value.false)):
            q = _quantize(data, scale, zero_point, dtype, low, high)
            constants.append(
                graph.add_tensor(
                    f"{name}/{label}", q.shape, tensor_type, scale, zero_point, data=q
                )
            )
        op.opcodeIndex = select_code
        op.inputs = np.asarray([value.cond, *constants], dtype=np.int32)
        op.builtinOptionsType = schema.BuiltinOptions.SelectV2Options
        op.builtinOptions = schema.SelectV2OptionsT()


def _identity_quantizes(graph: TFLiteGraph, island, consumers) -> list[int]:
    """Rewires around the sink ``QUANTIZE`` ops that now map a tensor to its own
    parameters; returns their indices (to remove)."""
    ops = graph.operators
    removed = []
    outputs = set(graph.outputs)
    for index in island.sinks:
        op = ops[index]
        src, dst = int(op.inputs[0]), int(op.outputs[0])
        same = graph.tensors[src].type == graph.tensors[dst].type and np.array_equal(
            graph.quantization_arrays(src)[0], graph.quantization_arrays(dst)[0]
        )
        same = same and np.array_equal(
            graph.quantization_arrays(src)[1], graph.quantization_arrays(dst)[1]
        )
        if not same:
            continue  # an integer requantization, kept
        if src not in outputs and consumers.get(src, []) == [index]:
            removed.append(index)
            graph.replace_tensor(src, dst)
        elif dst not in outputs:
            removed.append(index)
            graph.replace_tensor(dst, src)
    return removed


def _quantize_dense(graph: TFLiteGraph, op, consumers, sink_set) -> None:
    """int8 per-channel weights, int32 bias, output at the QUANTIZE's parameters."""
    x, w = int(op.inputs[0]), int(op.inputs[1])
    bias = int(op.inputs[2]) if len(op.inputs) > 2 else -1
    out = int(op.outputs[0])
    sink = graph.operators[[u for u in consumers[out] if u in sink_set][0]]
    target = int(sink.outputs[0])
    in_scale = graph.quantization(x)[0]
    weights = _float_const(graph, w)
    absmax = np.abs(weights).max(axis=1)
    w_scale = (np.where(absmax > 0, absmax, 1.0) / 127.0).astype(np.float32)
    w_q = np.clip(np.round(weights / w_scale[:, None]), -127, 127).astype(np.int8)
    name = graph.tensor_name(w)
    new_w = graph.add_tensor(
        f"{name}/int8", w_q.shape, schema.TensorType.INT8, data=w_q
    )
    graph.set_quantization(new_w, w_scale, np.zeros_like(w_scale, np.int64), 0)
    inputs = [x, new_w]
    if bias >= 0:
        b_scale = bias_scales(in_scale, w_scale)
        b_q = np.round(_float_const(graph, bias) / b_scale.astype(np.float64))
        inputs.append(graph.add_bias(f"{graph.tensor_name(bias)}/int32", b_q, b_scale))
    elif len(op.inputs) > 2:
        inputs.append(-1)
    op.inputs = np.asarray(inputs, dtype=np.int32)
    graph.tensors[out].type = graph.tensors[target].type
    scales, zero_points = graph.quantization_arrays(target)
    graph.set_quantization(out, scales, zero_points)
