"""Fold ``CAST(bool -> float32) -> QUANTIZE`` into ``SELECT_V2`` (spike outputs).

A Heaviside written as ``ops.cast(x >= th, "float32")`` (the LIF neurons' spike) is
converted by the TFLite converter into ``GREATER_EQUAL -> CAST(bool -> float32) ->
QUANTIZE(float32 -> int8)``: a float32 tensor is left in the middle of an otherwise
integer graph. This pass replaces each such ``CAST``/``QUANTIZE`` pair with
``SELECT_V2(cond, q(1), q(0))`` whose two scalar constants are 1.0 and 0.0 quantized
with the ``QUANTIZE`` output's own parameters, which is exactly what the pair computes
(0/1 are represented exactly whenever the calibrated range covers them).
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from .flatbuffer import TFLiteGraph

_INT_TYPES = {
    schema.TensorType.INT8: (np.int8, -128, 127),
    schema.TensorType.INT16: (np.int16, -32768, 32767),
}


def fold_bool_casts(graph: TFLiteGraph) -> int:
    """Rewrite ``graph`` in place; return the number of ``CAST`` ops removed."""
    folded = 0
    while True:
        match = _find(graph)
        if match is None:
            break
        cast_index, quantize_indices = match
        cast = graph.operators[cast_index]
        condition = int(cast.inputs[0])
        for q_index in quantize_indices:
            quantize = graph.operators[q_index]
            out = int(quantize.outputs[0])
            dtype, low, high = _INT_TYPES[int(graph.tensors[out].type)]
            scale, zero_point = graph.quantization(out)
            one = int(np.clip(np.round(1.0 / scale) + zero_point, low, high))
            name = graph.tensor_name(out)
            t_one = graph.add_tensor(
                f"{name}/one",
                (),
                graph.tensors[out].type,
                scale,
                zero_point,
                data=np.asarray(one, dtype=dtype),
            )
            t_zero = graph.add_tensor(
                f"{name}/zero",
                (),
                graph.tensors[out].type,
                scale,
                zero_point,
                data=np.asarray(zero_point, dtype=dtype),
            )
            quantize.opcodeIndex = graph.opcode_index(schema.BuiltinOperator.SELECT_V2)
            quantize.inputs = np.asarray([condition, t_one, t_zero], dtype=np.int32)
            quantize.builtinOptionsType = schema.BuiltinOptions.SelectV2Options
            quantize.builtinOptions = schema.SelectV2OptionsT()
        del graph.subgraph.operators[cast_index]
        folded += 1
    if folded:
        graph.remove_unused_tensors()
    return folded


def _find(graph: TFLiteGraph):
    consumers = graph.consumers()
    outputs = set(graph.outputs)
    for index, op in enumerate(graph.operators):
        if graph.op_name(op) != "CAST" or len(op.inputs) != 1:
            continue
        source, target = int(op.inputs[0]), int(op.outputs[0])
        if (
            graph.tensor_dtype(source) != "bool"
            or graph.tensor_dtype(target) != "float32"
        ):
            continue
        users = consumers.get(target, [])
        if not users or target in outputs:
            continue
        if all(
            graph.op_name(graph.operators[u]) == "QUANTIZE"
            and int(graph.tensors[int(graph.operators[u].outputs[0])].type)
            in _INT_TYPES
            and graph.quantization(int(graph.operators[u].outputs[0])) is not None
            for u in users
        ):
            return index, users
    return None
