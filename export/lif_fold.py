"""Fold each int8 LIF neuron of the converted step graph into five ops.

``LIF.step`` (hard reset to 0, ``d = 1 / tau``) converts, after :mod:`.bool_cast`,
to eight int8 ops and five requantizations per neuron layer::

    e = SUB(x, v)        m = MUL(e, d)       h = ADD(v, m)
    z = SUB(h, th)       c = GREATER_EQUAL(z, 0)
    s = SELECT_V2(c, 1, 0)                   (the spikes, read by the next Dense)
    g = SELECT_V2(c, 0, 1)  or  SUB(1, s)    v' = MUL(h, g)

This pass rewrites them as the same neuron, ``h = (1 - d) v + d x``, in five ops::

    t = MUL(v, 1 - d)                        (exact: t holds v's bytes)
    h = ADD(t, x_d)                          (the only rounding)
    c = GREATER_EQUAL(h, th)                 (th quantized like h: integer compare)
    s = SELECT_V2(c, 1, 0)                   (kept)
    v' = SELECT_V2(c, 0, h)                  (exact hard reset)

``x_d = d x`` costs no op when the op computing ``x`` can take the factor in its
scales (:func:`.rescale.scale_tensor`: the Dense with its BatchNormalization folded,
or the BatchNormalization's ``MUL``/``ADD`` after a residual sum), else it is one
exact ``MUL``. The membrane ``h``, the state input ``v`` and the state output ``v'``
share one quantization (``SELECT_V2`` passes values through, and the state is tied):
it covers the calibrated range of ``v`` and ``h`` below the threshold; potentials
above the threshold spike and reset whatever their value, so they may saturate. The
threshold is the smallest int8 level whose value is ``>= th``, so the int8 neuron
fires exactly when its dequantized potential reaches the threshold.

A neuron whose ops differ from this pattern (another reset, a fused activation, a
membrane read elsewhere, ...) is left as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from .flatbuffer import TFLiteGraph
from .rescale import scale_tensor

_INT8_MIN, _INT8_MAX = -128, 127
# TFLite comparisons rescale int8 inputs by ``256 * scale`` before comparing, so two
# levels stay distinct only for scales above 1/256; 1/255 keeps a margin.
_MIN_MEMBRANE_SCALE = 1.0 / 255.0


@dataclass
class _Neuron:
    x: int  # LIF input (after BatchNormalization)
    v_in: int  # membrane state input
    v_out: int  # membrane state output
    h: int  # potential before the spike
    cond: int  # bool spike condition
    threshold: float
    decay: float  # d = 1 / tau
    input_op: schema.OperatorT  # SUB(x, v)
    update_op: schema.OperatorT  # ADD(v, MUL(SUB(x, v), d)) -> h
    compare_op: schema.OperatorT  # GREATER_EQUAL -> cond
    reset_op: schema.OperatorT  # MUL(h, 1 - s) -> v_out


def _activation(op: schema.OperatorT) -> int:
    options = op.builtinOptions
    return int(getattr(options, "fusedActivationFunction", 0) or 0)


def _dequantize(graph: TFLiteGraph, tensor: int, q: np.ndarray) -> np.ndarray:
    scales, zero_points = graph.quantization_arrays(tensor)
    if scales.size == 0:
        return np.asarray(q, np.float64)
    return (np.asarray(q, np.float64) - float(zero_points[0])) * float(scales[0])


def _scalar(graph: TFLiteGraph, tensor: int) -> float | None:
    """Value of a constant whose elements are all equal (dequantized), or ``None``."""
    if tensor < 0 or not graph.is_constant(tensor):
        return None
    if graph.quantization_arrays(tensor)[0].size > 1:
        return None
    values = _dequantize(graph, tensor, graph.tensor_data(tensor)).reshape(-1)
    if values.size == 0 or np.any(values != values[0]):
        return None
    return float(values[0])


_ARITHMETIC = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply}


def _cond_values(
    graph: TFLiteGraph,
    tensor: int,
    cond: int,
    producers: dict[int, int],
    depth: int = 0,
) -> tuple[float, float] | None:
    """``(value if cond, value if not)`` of a tensor computed from ``cond`` alone.

    The values are those of the model's arithmetic: the int8 rounding of the ops in
    between is left out (a ``QUANTIZE`` to parameters calibrated on spikes that never
    fired would otherwise turn ``1 - s`` into ``1``).
    """
    op_index = producers.get(tensor)
    if op_index is None or depth > 4:
        return None
    op = graph.operators[op_index]
    name = graph.op_name(op)
    if _activation(op) != 0:
        return None
    inputs = [int(t) for t in op.inputs]
    if name == "SELECT_V2" and len(inputs) == 3 and inputs[0] == cond:
        a, b = _scalar(graph, inputs[1]), _scalar(graph, inputs[2])
        return None if a is None or b is None else (a, b)
    if name == "QUANTIZE" and len(inputs) == 1:
        return _cond_values(graph, inputs[0], cond, producers, depth + 1)
    if name in _ARITHMETIC and len(inputs) == 2:
        constants = [_scalar(graph, t) for t in inputs]
        if sum(c is not None for c in constants) != 1:
            return None
        position = 0 if constants[0] is None else 1
        inner = _cond_values(graph, inputs[position], cond, producers, depth + 1)
        if inner is None:
            return None
        other = constants[1 - position]
        fn = _ARITHMETIC[name]
        return tuple(
            float(fn(v, other) if position == 0 else fn(other, v)) for v in inner
        )
    return None


class _Producers:
    """The graph's producer / consumer maps and a typed producer look-up."""

    def __init__(self, graph: TFLiteGraph) -> None:
        self.graph = graph
        self.ops = graph.operators
        self.producers, self.consumers = graph.producers(), graph.consumers()
        self.index = {id(op): i for i, op in enumerate(self.ops)}

    def op(self, tensor: int, name: str) -> schema.OperatorT | None:
        """The op ``name`` (no fused activation, one output) producing ``tensor``."""
        index = self.producers.get(tensor)
        if index is None:
            return None
        op = self.ops[index]
        if (
            self.graph.op_name(op) != name
            or _activation(op) != 0
            or len(op.outputs) != 1
        ):
            return None
        return op


def _find(graph: TFLiteGraph, state_outputs: dict[int, int]) -> _Neuron | None:
    """The first LIF neuron in ``graph`` (a ``GREATER_EQUAL`` spike test on a
    membrane update of a state input), or ``None``."""
    p = _Producers(graph)
    for compare_index, compare in enumerate(p.ops):
        if graph.op_name(compare) != "GREATER_EQUAL" or len(compare.inputs) != 2:
            continue
        neuron = _match_neuron(p, compare_index, compare, state_outputs)
        if neuron is not None:
            return neuron
    return None


def _match_neuron(
    p: _Producers, compare_index: int, compare, state_outputs: dict[int, int]
) -> _Neuron | None:
    """The neuron whose spike test is ``compare``: ``h >= threshold`` (or
    ``h - k >= bound``) on ``h = v + (x - v) d``, reset ``v_out = h (1 - s)``."""
    graph, consumers = p.graph, p.consumers
    a, b = int(compare.inputs[0]), int(compare.inputs[1])
    bound = _scalar(graph, b)
    if bound is None or graph.is_constant(a):
        return None
    h, threshold = a, bound
    shift = p.op(a, "SUB")
    if shift is not None and consumers.get(a) == [compare_index]:
        k = _scalar(graph, int(shift.inputs[1]))
        if k is not None:
            h, threshold = int(shift.inputs[0]), bound + k
    charge = _match_charge(p, h, state_outputs)
    if charge is None:
        return None
    x, v_in, decay, input_op, update = charge
    v_out = state_outputs[v_in]
    reset = p.op(v_out, "MUL")
    if reset is None or h not in [int(t) for t in reset.inputs]:
        return None
    reset_ins = [int(t) for t in reset.inputs]
    gate = reset_ins[1] if reset_ins[0] == h else reset_ins[0]
    cond = int(compare.outputs[0])
    values = _cond_values(graph, gate, cond, p.producers)
    if values is None or abs(values[0]) > 1e-3 or abs(values[1] - 1.0) > 1e-3:
        return None
    allowed = {p.index[id(reset)], compare_index}
    if shift is not None and h != a:
        allowed = {p.index[id(reset)], p.index[id(shift)]}
    if not set(consumers.get(h, [])) <= allowed:
        return None
    if any(
        graph.tensor_dtype(t) != "int8" for t in (x, v_in, v_out, h)
    ) or graph.tensor_shape(v_in) != graph.tensor_shape(v_out):
        return None
    return _Neuron(
        x=x,
        v_in=v_in,
        v_out=v_out,
        h=h,
        cond=cond,
        threshold=threshold,
        decay=decay,
        input_op=input_op,
        update_op=update,
        compare_op=compare,
        reset_op=reset,
    )


def _match_charge(p: _Producers, h: int, state_outputs: dict[int, int]):
    """``h = ADD(v, MUL(SUB(x, v), d))`` with ``v`` a state input and ``0 < d < 1``.

    Returns:
        ``(x, v, d, the SUB op, the ADD op)``, or ``None``.
    """
    graph, consumers = p.graph, p.consumers
    update = p.op(h, "ADD")
    if update is None:
        return None
    ins = [int(t) for t in update.inputs]
    states = [t for t in ins if t in state_outputs]
    if len(ins) != 2 or len(states) != 1:
        return None
    v_in = states[0]
    m = ins[1] if ins[0] == v_in else ins[0]
    scale_op = p.op(m, "MUL")
    if scale_op is None:
        return None
    scale_ins = [int(t) for t in scale_op.inputs]
    decays = [_scalar(graph, t) for t in scale_ins]
    if len(scale_ins) != 2 or sum(d is not None for d in decays) != 1:
        return None
    decay = decays[0] if decays[0] is not None else decays[1]
    e = scale_ins[1] if decays[0] is not None else scale_ins[0]
    input_op = p.op(e, "SUB")
    if input_op is None or int(input_op.inputs[1]) != v_in:
        return None
    x = int(input_op.inputs[0])
    if (
        consumers.get(e) != [p.index[id(scale_op)]]
        or consumers.get(m) != [p.index[id(update)]]
        or sorted(consumers.get(v_in, []))
        != sorted([p.index[id(input_op)], p.index[id(update)]])
        or not 0.0 < decay < 1.0
        or graph.is_constant(x)
    ):
        return None
    return x, v_in, decay, input_op, update


def _range(graph: TFLiteGraph, tensor: int) -> tuple[float, float]:
    scales, zero_points = graph.quantization_arrays(tensor)
    scale, zero_point = float(scales[0]), int(zero_points[0])
    return scale * (_INT8_MIN - zero_point), scale * (_INT8_MAX - zero_point)


def _threshold_level(scale: float, zero_point: int, threshold: float) -> int:
    """Smallest int8 level ``q`` with ``scale * (q - zero_point) >= threshold``."""
    return math.ceil(zero_point + threshold / scale - 1e-6)


def membrane_params(
    low: float, high: float, threshold: float
) -> tuple[np.float32, int, int]:
    """``(scale, zero_point, threshold_level)`` for a membrane in ``[low, high]``.

    ``low <= 0`` and ``high >= max(threshold, 0)`` are assumed; the threshold level
    is within int8 (levels at or above it spike).
    """
    width = max(high - low, 255.0 * _MIN_MEMBRANE_SCALE)
    low = min(low, high - width)
    scale = np.float32(width / 255.0)
    while True:
        zero_point = int(np.clip(round(_INT8_MIN - low / float(scale)), -128, 127))
        level = _threshold_level(float(scale), zero_point, threshold)
        if level <= _INT8_MAX:
            return scale, zero_point, max(level, _INT8_MIN)
        scale = np.float32(float(scale) * (1.0 + 1.0 / 255.0))


def _int8_scalar(
    graph: TFLiteGraph, name: str, q: int, scale: float, zero_point: int
) -> int:
    return graph.add_tensor(
        name,
        (),
        schema.TensorType.INT8,
        float(scale),
        int(zero_point),
        data=np.asarray(q, np.int8),
    )


def _factor(graph: TFLiteGraph, name: str, value: float) -> int:
    """Exact int8 constant ``value > 0`` (level 127)."""
    return _int8_scalar(graph, name, 127, np.float32(value / 127.0), 0)


def _insert_before(
    graph: TFLiteGraph,
    anchor: schema.OperatorT,
    builtin: int,
    inputs: list[int],
    outputs: list[int],
) -> schema.OperatorT:
    position = graph.operators.index(anchor)
    return graph.insert_operator(position, builtin, inputs, outputs)


def _rewrite(graph: TFLiteGraph, n: _Neuron) -> None:
    d = n.decay
    low = min(*(_range(graph, t)[0] for t in (n.h, n.v_in, n.v_out)), 0.0)
    high = max(_range(graph, n.v_in)[1], _range(graph, n.v_out)[1], n.threshold, 0.0)
    scale, zero_point, level = membrane_params(low, high, n.threshold)
    for tensor in (n.h, n.v_in, n.v_out):
        graph.set_quantization(tensor, scale, zero_point)
    name = graph.tensor_name(n.h) or "lif"

    decayed = graph.add_tensor(
        f"{name}/decayed",
        graph.tensor_shape(n.v_in),
        schema.TensorType.INT8,
        float(np.float32(float(scale) * (1.0 - d))),
        zero_point,
    )
    _insert_before(
        graph,
        n.update_op,
        schema.BuiltinOperator.MUL,
        [n.v_in, _factor(graph, f"{name}/keep", 1.0 - d)],
        [decayed],
    )
    if scale_tensor(graph, n.x, d, reader=n.input_op):
        x_d = n.x
    else:
        x_scale, x_zero_point = graph.quantization(n.x)
        x_d = graph.add_tensor(
            f"{name}/input",
            graph.tensor_shape(n.x),
            schema.TensorType.INT8,
            float(np.float32(x_scale * d)),
            x_zero_point,
        )
        _insert_before(
            graph,
            n.update_op,
            schema.BuiltinOperator.MUL,
            [n.x, _factor(graph, f"{name}/gain", d)],
            [x_d],
        )
    n.update_op.inputs = np.asarray([decayed, x_d], dtype=np.int32)
    n.compare_op.inputs = np.asarray(
        [n.h, _int8_scalar(graph, f"{name}/threshold", level, scale, zero_point)],
        dtype=np.int32,
    )
    zero = _int8_scalar(graph, f"{name}/reset", zero_point, scale, zero_point)
    n.reset_op.opcodeIndex = graph.opcode_index(schema.BuiltinOperator.SELECT_V2)
    n.reset_op.inputs = np.asarray([n.cond, zero, n.h], dtype=np.int32)
    n.reset_op.builtinOptionsType = schema.BuiltinOptions.SelectV2Options
    n.reset_op.builtinOptions = schema.SelectV2OptionsT()


def fold_lif_neurons(graph: TFLiteGraph, pairs: list[tuple[str, int, int]]) -> int:
    """Rewrite every matching LIF neuron layer in place; return how many.

    Args:
        graph: an int8 graph after :func:`.bool_cast.fold_bool_casts`.
        pairs: ``(name, input_position, output_position)`` of the states.
    """
    state_outputs = {graph.inputs[i]: graph.outputs[o] for _, i, o in pairs}
    folded = 0
    while True:
        neuron = _find(graph, state_outputs)
        if neuron is None:
            break
        _rewrite(graph, neuron)
        folded += 1
        graph.remove_dead_operators()
    if folded:
        graph.remove_unused_tensors()
    return folded
