"""Multiply-accumulates per invocation (one frame), counted from the flatbuffer.

- ``FULLY_CONNECTED``: rows x units x in_features (weights ``(units, in)``);
- ``CONV_2D``: output elements x kh x kw x in_channels;
- ``DEPTHWISE_CONV_2D``: output elements x kh x kw;
- ``TRANSPOSE_CONV``: input elements x kh x kw x out_channels;
- ``BATCH_MATMUL``: output elements x contracted size;
- ``SVDF``: rank x (memory + input) x units, roughly (rarely used here);
- ``MUL`` / ``SQUARED_DIFFERENCE``: output elements (one multiply each).

Other elementwise ops (ADD, SUB, requantizations) are reported as
``elementwise_ops``, not as MACs.
"""

from __future__ import annotations

import math

from .flatbuffer import TFLiteGraph

_ELEMENTWISE = {"ADD", "SUB", "QUANTIZE", "SELECT_V2", "MAXIMUM", "MINIMUM", "RELU"}


def count_macs(graph: TFLiteGraph) -> dict:
    """``{"total": int, "by_op": {op: macs}, "elementwise_ops": int}`` per frame."""
    by_op: dict[str, int] = {}
    elementwise = 0
    for op in graph.operators:
        name = graph.op_name(op)
        ins = [int(t) for t in op.inputs]
        out_shape = graph.tensor_shape(int(op.outputs[0]))
        out_size = math.prod(out_shape) if out_shape else 1
        macs = 0
        if name == "FULLY_CONNECTED":
            units, depth = graph.tensor_shape(ins[1])
            macs = (out_size // units) * units * depth
        elif name == "CONV_2D":
            _, kh, kw, cin = graph.tensor_shape(ins[1])
            macs = out_size * kh * kw * cin
        elif name == "DEPTHWISE_CONV_2D":
            _, kh, kw, _ = graph.tensor_shape(ins[1])
            macs = out_size * kh * kw
        elif name == "TRANSPOSE_CONV":
            cout, kh, kw, _ = graph.tensor_shape(ins[1])
            macs = math.prod(graph.tensor_shape(ins[2])) * kh * kw * cout
        elif name == "BATCH_MATMUL":
            lhs = graph.tensor_shape(ins[0])
            options = op.builtinOptions
            adj_x = bool(getattr(options, "adjX", False))
            depth = lhs[-2] if adj_x else lhs[-1]
            macs = out_size * depth
        elif name in ("MUL", "SQUARED_DIFFERENCE"):
            macs = out_size
        elif name == "SVDF":
            feature_w = graph.tensor_shape(ins[1])
            time_w = graph.tensor_shape(ins[2])
            macs = math.prod(feature_w) + math.prod(time_w)
        elif name in _ELEMENTWISE:
            elementwise += out_size
        if macs:
            by_op[name] = by_op.get(name, 0) + macs
    return {
        "total": int(sum(by_op.values())),
        "by_op": dict(sorted(by_op.items())),
        "elementwise_ops": int(elementwise),
    }
