"""Run each int8 Dense as a 1x1 ``CONV_2D``, so TFLite Micro and LiteRT agree.

``y = act(W x + b)`` for one frame is the same sum as a 1x1 convolution of a
``(1, 1, 1, in)`` image with ``(units, 1, 1, in)`` filters. The two ops differ only
in the kernels that run them: for int8 per-channel ``FULLY_CONNECTED``, LiteRT's
reference kernel rounds the requantization of the int32 accumulator once and
TFLite Micro's twice, so they disagree by one LSB on about 0.1% of outputs, while
their int8 per-channel ``CONV_2D`` kernels compute the same bytes (measured on
random inputs and on every frame of the trained keyword spotter: see
``export/README.md``). Those one-LSB
differences are where the per-step TFLM-vs-LiteRT difference of the logits starts
(:mod:`lmuformer_export.op_divergence`).

The pass rewrites each int8 ``FULLY_CONNECTED`` whose input is one row into
``RESHAPE (1, 1, 1, in) -> CONV_2D (1x1, VALID, stride 1) -> RESHAPE`` back to the
Dense's output shape, with the same int8 weights (reshaped), the same per-channel
scales, the same int32 bias and the same fused activation: the arithmetic and the
quantization of every tensor the graph had are unchanged. Where one converted
Dense feeds only another, the ``RESHAPE`` pair between them is dropped and the
4-D tensor is passed on. ``RESHAPE`` moves no arithmetic; in TFLite Micro it copies
the row (at most a few hundred bytes).
"""

from __future__ import annotations

import math

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from .flatbuffer import TFLiteGraph, bias_scales
from .simplify import merge_reshape_chains, remove_identity_ops

_CONV = schema.BuiltinOperator.CONV_2D
_RESHAPE = schema.BuiltinOperator.RESHAPE


def _convertible(graph: TFLiteGraph, op) -> bool:
    """An int8 per-row Dense with constant 2-D weights and default options."""
    if graph.op_name(op) != "FULLY_CONNECTED" or len(op.outputs) != 1:
        return False
    source, weights = int(op.inputs[0]), int(op.inputs[1])
    if graph.tensor_dtype(source) != "int8" or graph.tensor_dtype(weights) != "int8":
        return False
    if not graph.is_constant(weights) or len(graph.tensor_shape(weights)) != 2:
        return False
    units, depth = graph.tensor_shape(weights)
    options = op.builtinOptions
    if options is not None and (
        getattr(options, "keepNumDims", False)
        or getattr(options, "weightsFormat", 0)
        or getattr(options, "asymmetricQuantizeInputs", False)
    ):
        return False
    rows = math.prod(graph.tensor_shape(source)) // max(depth, 1)
    out_elements = math.prod(graph.tensor_shape(int(op.outputs[0])))
    return rows == 1 and out_elements == units


def _shape_constant(graph: TFLiteGraph, shape: tuple[int, ...]) -> int:
    data = np.asarray(shape, np.int32)
    return graph.add_tensor("shape", data.shape, schema.TensorType.INT32, data=data)


def _copy_quantization(graph: TFLiteGraph, source: int, target: int) -> None:
    q = graph.tensors[source].quantization
    if q is not None:
        graph.set_quantization(
            target, q.scale, q.zeroPoint, int(q.quantizedDimension or 0)
        )


def _reshape(graph: TFLiteGraph, position: int, source: int, target: int) -> None:
    shape = _shape_constant(graph, graph.tensor_shape(target))
    options = schema.ReshapeOptionsT()
    options.newShape = np.asarray(graph.tensor_shape(target), np.int32)
    graph.insert_operator(
        position,
        _RESHAPE,
        [source, shape],
        [target],
        (schema.BuiltinOptions.ReshapeOptions, options),
    )


def _as_conv(graph: TFLiteGraph, index: int) -> int:
    """Rewrite operator ``index``; return how many operators were inserted."""
    op = graph.operators[index]
    source, weights, out = int(op.inputs[0]), int(op.inputs[1]), int(op.outputs[0])
    bias = int(op.inputs[2]) if len(op.inputs) > 2 else -1
    units, depth = graph.tensor_shape(weights)
    name = graph.tensor_name(out)
    if bias < 0:  # LiteRT's CONV_2D needs one: zeros, at the accumulator's scale
        w_scale = graph.quantization_arrays(weights)[0]
        b_scale = bias_scales(graph.quantization(source)[0], w_scale)
        bias = graph.add_bias(
            f"{name}/zero_bias", np.zeros(units), np.broadcast_to(b_scale, (units,))
        )

    filters = graph.add_tensor(
        f"{graph.tensor_name(weights)}/1x1",
        (units, 1, 1, depth),
        schema.TensorType.INT8,
        data=graph.tensor_data(weights).astype(np.int8).reshape(units, 1, 1, depth),
    )
    _copy_quantization(graph, weights, filters)
    image = graph.add_tensor(f"{name}/image", (1, 1, 1, depth), schema.TensorType.INT8)
    _copy_quantization(graph, source, image)
    result = graph.add_tensor(f"{name}/1x1", (1, 1, 1, units), schema.TensorType.INT8)
    _copy_quantization(graph, out, result)

    options = schema.Conv2DOptionsT()
    options.padding = schema.Padding.VALID
    options.strideW = options.strideH = 1
    options.dilationWFactor = options.dilationHFactor = 1
    options.fusedActivationFunction = int(
        getattr(op.builtinOptions, "fusedActivationFunction", 0) or 0
    )
    op.opcodeIndex = graph.opcode_index(_CONV, version=3)
    op.builtinOptionsType = schema.BuiltinOptions.Conv2DOptions
    op.builtinOptions = options
    op.inputs = np.asarray([image, filters, bias], dtype=np.int32)
    op.outputs = np.asarray([result], dtype=np.int32)
    _reshape(graph, index, source, image)
    _reshape(graph, index + 2, result, out)
    return 2


def dense_as_conv(graph: TFLiteGraph) -> int:
    """Rewrite in place; return the number of Dense ops now run as ``CONV_2D``."""
    converted = 0
    index = 0
    while index < len(graph.operators):
        if _convertible(graph, graph.operators[index]):
            index += _as_conv(graph, index)
            converted += 1
        index += 1
    if converted:
        merge_reshape_chains(graph)
        remove_identity_ops(graph)
        graph.remove_unused_tensors()
        graph.dedup_constants()
    return converted
