"""Multiply what a quantized tensor means by ``k > 0`` without changing a byte.

An int8 tensor means ``scale * (q - zero_point)``. Multiplying its scale by ``k``
makes it mean ``k`` times as much; the op writing it then has to compute ``k`` times
its old result, which, for the ops below, is again a matter of scales only:

- ``FULLY_CONNECTED``: per-channel weight scales and bias scales times ``k`` (same
  int8 weights and int32 bias; fused ``NONE``/``RELU`` commute with ``k > 0``);
- ``MUL`` by a constant: the constant's scale times ``k``;
- ``ADD``/``SUB``: both operands times ``k`` (recursively; a constant operand gets a
  new scale);
- a constant: its scale times ``k``.

Every multiplier the kernels derive at prepare time (``input_scale * weight_scale /
output_scale``, the ``ADD`` input/output ratios, ...) is unchanged up to the float32
rounding of the scales (none for a power of two), so the int8 results are identical:
the pass is exact. It is used to move the LIF's input factor ``1 / tau`` into the op
that computes the LIF input (usually the Dense with its BatchNormalization folded).
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from .flatbuffer import TFLiteGraph

_FREE_ACTIVATIONS = (0, 1)  # NONE, RELU


def _activation(op: schema.OperatorT) -> int:
    options = op.builtinOptions
    return int(getattr(options, "fusedActivationFunction", 0) or 0)


class _Plan:
    """Tensors to rescale (``{tensor: k}``) and constant inputs to copy, rescaled."""

    def __init__(self) -> None:
        self.scales: dict[int, float] = {}
        self.copies: list[tuple[schema.OperatorT, int]] = []  # (reader, constant)


def _plan(
    graph: TFLiteGraph,
    tensor: int,
    k: float,
    reader: schema.OperatorT | None,
    plan: _Plan,
    producers: dict[int, int],
    consumers: dict[int, list[int]],
) -> bool:
    if tensor in plan.scales:
        return False  # reached twice (a diamond): not handled
    if graph.quantization(tensor) is None:
        return False
    if graph.is_constant(tensor):
        if reader is None:
            return False
        plan.copies.append((reader, tensor))  # a private copy: it may be shared
        return True
    if tensor in graph.inputs or tensor in graph.outputs:
        return False
    if reader is not None and consumers.get(tensor, []) != [
        graph.operators.index(reader)
    ]:
        return False
    op_index = producers.get(tensor)
    if op_index is None:
        return False
    op = graph.operators[op_index]
    name = graph.op_name(op)
    if _activation(op) not in _FREE_ACTIVATIONS or len(op.outputs) != 1:
        return False
    plan.scales[tensor] = k
    if name == "FULLY_CONNECTED":
        weights = int(op.inputs[1])
        if not graph.is_constant(weights):
            return False
        plan.copies.append((op, weights))
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            plan.copies.append((op, int(op.inputs[2])))
        return True
    if name == "MUL":
        constants = [int(t) for t in op.inputs if graph.is_constant(int(t))]
        if len(constants) != 1 or len(op.inputs) != 2:
            return False
        plan.copies.append((op, constants[0]))
        return True
    if name in ("ADD", "SUB") and len(op.inputs) == 2:
        return all(
            _plan(graph, int(t), k, op, plan, producers, consumers) for t in op.inputs
        )
    return False


def _scaled_copy(
    graph: TFLiteGraph, op: schema.OperatorT, tensor: int, k: float
) -> None:
    """Give ``op`` its own copy of constant ``tensor`` (same buffer), scales * k."""
    source = graph.tensors[tensor]
    scales, zero_points = graph.quantization_arrays(tensor)
    copy = graph.add_tensor(
        f"{graph.tensor_name(tensor)}/x{k:g}",
        graph.tensor_shape(tensor),
        source.type,
    )
    graph.tensors[copy].buffer = source.buffer
    dimension = source.quantization.quantizedDimension or 0
    graph.set_quantization(
        copy, (scales.astype(np.float64) * k).astype(np.float32), zero_points, dimension
    )
    op.inputs = np.asarray(
        [copy if int(t) == tensor else int(t) for t in op.inputs], dtype=np.int32
    )


def scale_tensor(
    graph: TFLiteGraph,
    tensor: int,
    k: float,
    reader: schema.OperatorT | None = None,
) -> bool:
    """Make ``tensor`` mean ``k`` times its value, in place; ``False`` if impossible.

    Args:
        graph: the graph (edited only when the whole rescale is possible).
        tensor: the tensor to rescale.
        k: the factor, ``> 0``.
        reader: the only operator allowed to read ``tensor`` (``None``: no check).

    Returns:
        Whether the graph was changed.
    """
    if not k > 0:
        return False
    plan = _Plan()
    if not _plan(graph, tensor, k, reader, plan, graph.producers(), graph.consumers()):
        return False
    for op, constant in plan.copies:
        _scaled_copy(graph, op, constant, k)
    for t, factor in plan.scales.items():
        scales, zero_points = graph.quantization_arrays(t)
        dimension = graph.tensors[t].quantization.quantizedDimension or 0
        graph.set_quantization(
            t,
            (scales.astype(np.float64) * factor).astype(np.float32),
            zero_points,
            dimension,
        )
    return True
