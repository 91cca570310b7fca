"""Remove the shape ops of the step graph that move no data.

The step graph's shape bookkeeping converts to ops that cost a TFLite Micro node each
(64 bytes of arena on a 64-bit host, plus the op's data, plus its output tensor) and
their share of the flatbuffer, yet compute nothing:

- ``STRIDED_SLICE`` that keeps the whole tensor (``x_t[:, None, :]`` of a conv
  ring buffer becomes ``RESHAPE`` + such a slice) and ``RESHAPE`` to the same shape;
- ``RESHAPE`` of the window ``(1, k, C) -> (1, k C)`` before the conv's
  ``FULLY_CONNECTED``: the kernel flattens its input anyway (``batch = elements /
  weights.shape[1]``, in TFLite Micro and LiteRT);
- ``RESHAPE`` that only adds leading unit axes (``(1, 1) -> (1, 1, 1)``) before a
  broadcasting elementwise op (the LMU memory's ``B u``, ``(1, 1, 1) * (64,)``): the
  op broadcasts the smaller rank the same way, and the outputs downstream lose the
  unit axis too, until a ``RESHAPE`` back to it becomes the identity.

Every rewrite leaves the values and the quantization of every remaining tensor as
they were; graph inputs and outputs keep their shapes.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from .flatbuffer import TFLiteGraph

# Elementwise ops broadcasting their inputs numpy-style (TFLite Micro int8 kernels
# broadcast up to 4 or more dimensions).
_BROADCASTING = {
    "ADD",
    "SUB",
    "MUL",
    "SQUARED_DIFFERENCE",
    "MAXIMUM",
    "MINIMUM",
    "GREATER",
    "GREATER_EQUAL",
    "LESS",
    "LESS_EQUAL",
    "EQUAL",
    "NOT_EQUAL",
    "SELECT_V2",
}
_SHAPE_FREE_READERS = {"RESHAPE", "FULLY_CONNECTED"}


def _same_quantization(graph: TFLiteGraph, a: int, b: int) -> bool:
    qa, qb = graph.quantization_arrays(a), graph.quantization_arrays(b)
    return (
        graph.tensors[a].type == graph.tensors[b].type
        and np.array_equal(qa[0], qb[0])
        and np.array_equal(qa[1], qb[1])
    )


def _is_identity(graph: TFLiteGraph, op: schema.OperatorT) -> bool:
    name = graph.op_name(op)
    if name not in ("RESHAPE", "STRIDED_SLICE") or len(op.outputs) != 1:
        return False
    source, out = int(op.inputs[0]), int(op.outputs[0])
    if graph.tensor_shape(source) != graph.tensor_shape(out):
        return False
    if not _same_quantization(graph, source, out):
        return False
    if name == "STRIDED_SLICE":
        options = op.builtinOptions
        if options is not None and (
            options.ellipsisMask
            or options.newAxisMask
            or options.shrinkAxisMask
            or getattr(options, "offset", False)
        ):
            return False
        strides = graph.tensor_data(int(op.inputs[3])) if len(op.inputs) > 3 else None
        # Stride 1 and the same extent on every axis: the whole tensor.
        if strides is None or np.any(np.asarray(strides) != 1):
            return False
    return True


def _bypass(graph: TFLiteGraph, index: int) -> bool:
    """Drop data-preserving op ``index`` (input and output hold the same bytes)."""
    op = graph.operators[index]
    source, out = int(op.inputs[0]), int(op.outputs[0])
    inputs, outputs = set(graph.inputs), set(graph.outputs)
    if out not in outputs:
        graph.replace_tensor(out, source)
    elif (
        source not in inputs
        and source not in outputs
        and graph.consumers().get(source, []) == [index]
        and graph.producers().get(source) is not None
    ):
        graph.replace_tensor(source, out)
    else:
        return False
    graph.remove_operators([index])
    return True


def remove_identity_ops(graph: TFLiteGraph) -> int:
    """Remove ``RESHAPE``/``STRIDED_SLICE`` ops returning their input unchanged."""
    removed = 0
    index = 0
    while index < len(graph.operators):
        op = graph.operators[index]
        if _is_identity(graph, op) and _bypass(graph, index):
            removed += 1
            continue
        index += 1
    return removed


def merge_reshape_chains(graph: TFLiteGraph) -> int:
    """``a -RESHAPE-> b -RESHAPE-> c``: the second reads ``a`` (the same bytes).

    The first ``RESHAPE`` goes when nothing else reads ``b``; one that then maps a
    shape to itself is left to :func:`remove_identity_ops`. Returns the number of
    ops removed.
    """
    producers = graph.producers()
    for op in graph.operators:
        if graph.op_name(op) != "RESHAPE":
            continue
        middle = int(op.inputs[0])
        first = producers.get(middle)
        if first is None or graph.op_name(graph.operators[first]) != "RESHAPE":
            continue
        start = int(graph.operators[first].inputs[0])
        if _same_quantization(graph, start, middle):
            op.inputs = np.asarray([start, *op.inputs[1:]], dtype=np.int32)
    return graph.remove_dead_operators()


def remove_reshapes_before_dense(graph: TFLiteGraph) -> int:
    """Feed ``FULLY_CONNECTED`` the un-flattened tensor of a flattening ``RESHAPE``."""
    removed = 0
    while True:
        consumers = graph.consumers()
        found = None
        for index, op in enumerate(graph.operators):
            if graph.op_name(op) != "RESHAPE":
                continue
            source, out = int(op.inputs[0]), int(op.outputs[0])
            readers = consumers.get(out, [])
            if out in graph.outputs or not readers:
                continue
            if not all(
                graph.op_name(graph.operators[r]) == "FULLY_CONNECTED"
                and int(graph.operators[r].inputs[0]) == out
                and not getattr(graph.operators[r].builtinOptions, "keepNumDims", False)
                for r in readers
            ):
                continue
            depth = graph.tensor_shape(int(graph.operators[readers[0]].inputs[1]))[-1]
            shape = graph.tensor_shape(out)
            if len(shape) != 2 or shape[-1] != depth:
                continue
            if int(np.prod(graph.tensor_shape(source))) != int(np.prod(shape)):
                continue
            if not _same_quantization(graph, source, out):
                continue
            found = index, source, out
            break
        if found is None:
            return removed
        index, source, out = found
        graph.replace_tensor(out, source)
        graph.remove_operators([index])
        removed += 1


def _broadcast(shapes: list[tuple[int, ...]]) -> tuple[int, ...] | None:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        return None


def _plan_rank_drop(
    graph: TFLiteGraph, reshape_index: int
) -> dict[int, tuple[int, ...]] | None:
    """New shapes when the ``RESHAPE``'s leading unit axes are dropped, or ``None``.

    Returns ``{tensor: new_shape}`` for the outputs of the broadcasting ops reached.
    """
    op = graph.operators[reshape_index]
    source, out = int(op.inputs[0]), int(op.outputs[0])
    src_shape, out_shape = graph.tensor_shape(source), graph.tensor_shape(out)
    extra = len(out_shape) - len(src_shape)
    if (
        extra <= 0
        or out_shape[extra:] != src_shape
        or any(d != 1 for d in out_shape[:extra])
    ):
        return None
    consumers = graph.consumers()
    outputs = set(graph.outputs)
    if out in outputs:
        return None
    shapes = {out: src_shape}
    pending = [out]
    while pending:
        tensor = pending.pop()
        for reader in consumers.get(tensor, []):
            reader_op = graph.operators[reader]
            name = graph.op_name(reader_op)
            if name in _SHAPE_FREE_READERS:
                if name == "FULLY_CONNECTED" and int(reader_op.inputs[0]) != tensor:
                    return None
                continue
            if name not in _BROADCASTING or len(reader_op.outputs) != 1:
                return None
            new = _broadcast(
                [
                    shapes.get(int(t), graph.tensor_shape(int(t)))
                    for t in reader_op.inputs
                    if t >= 0
                ]
            )
            result = int(reader_op.outputs[0])
            old = graph.tensor_shape(result)
            if new is None or int(np.prod(new)) != int(np.prod(old)):
                return None
            if new == old or shapes.get(result) == new:
                continue
            if result in outputs:
                return None
            shapes[result] = new
            pending.append(result)
    return shapes


def drop_leading_unit_axes(graph: TFLiteGraph) -> int:
    """Remove ``RESHAPE``s adding leading unit axes before broadcasting ops.

    The output shapes downstream are recomputed; a ``RESHAPE`` that then maps a
    shape to itself is removed too. Returns the number of ops removed.
    """
    removed = 0
    while True:
        for index, op in enumerate(graph.operators):
            if graph.op_name(op) != "RESHAPE":
                continue
            shapes = _plan_rank_drop(graph, index)
            if shapes is None:
                continue
            source, out = int(op.inputs[0]), int(op.outputs[0])
            if not _same_quantization(graph, source, out):
                continue
            for tensor, shape in shapes.items():
                if tensor != out:
                    graph.tensors[tensor].shape = np.asarray(shape, np.int32)
            graph.replace_tensor(out, source)
            graph.remove_operators([index])
            removed += 1 + remove_identity_ops(graph)
            break
        else:
            return removed


def simplify_shape_ops(graph: TFLiteGraph) -> int:
    """All of the above, in place; return the number of ops removed."""
    removed = remove_identity_ops(graph)
    removed += drop_leading_unit_axes(graph)
    removed += remove_reshapes_before_dense(graph)
    if removed:
        graph.remove_unused_tensors()
    return removed
