"""Give every state output exactly the quantization of its state input.

An app streams by copying the bytes of each state output into the matching state input
before the next frame, so both tensors must share one scale and zero point. The
converter calibrates them separately, so they usually differ (for the LMU memory the
output is even forced to the coarse scale of the activations it is concatenated with).

Methods, tried in this order for each state whose parameters differ:

1. ``retargeted_output`` (no op added on the recurrent path): the state output is
   written directly at the state INPUT's parameters. The output tensor is walked back
   through reshapes to the arithmetic op that computes it (``ADD``, ``MUL``,
   ``FULLY_CONNECTED``, ...); every tensor of that chain gets the input's
   parameters. Those kernels derive their requantization multipliers from the tensor
   parameters when the interpreter prepares the model, so nothing stored changes.
   Other readers of a retargeted tensor keep working unchanged when they are
   multiplier-based too (``ADD``, ``SUB``, ``MUL``, comparisons, ``QUANTIZE``); any
   other reader (``CONCATENATION``, ``SELECT_V2``, a Dense whose int32 bias was folded
   with the old scale, ...) is given a ``QUANTIZE`` back to the old parameters, off the
   recurrent path. The input's calibrated range covers every state the float model
   produced (the representative set holds the extremes of every state input,
   including the states after the last frame of each clip).
2. ``requantized_on_input`` (fallback, when the output comes from an op with fixed
   output parameters or from a same-scale op such as a concatenation): a new graph
   input with the OUTPUT's parameters feeds a ``QUANTIZE`` (int8 -> int8 or int16 ->
   int16) into the original input tensor.

Method 1 is preferred: the state keeps the precision of its own calibrated range, and
the recurrent loop holds one requantization fewer, so the one-LSB rounding
differences between runtimes (TFLite Micro rounds twice where LiteRT rounds once) do
not get an extra place to appear on every frame.

Why not the ``CONCATENATION`` trick (``concat([state_in, new_state])`` sliced back):
the shared scale comes from the converter's scale propagation, which silently resolves
conflicting same-scale constraints with requantizations of its own choosing, and it
costs a concat buffer of twice the state and a slice per state.

Either way the input and the output end with bit-identical parameters; this is
checked after the edit (:func:`check_states_tied`).
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from .errors import StateTyingError
from .flatbuffer import TFLiteGraph


def _same(a, b) -> bool:
    return (
        a is not None
        and b is not None
        and np.float32(a[0]) == np.float32(b[0])
        and int(a[1]) == int(b[1])
    )


# Ops whose output parameters are free: their kernels compute the requantization
# multipliers from the tensors' parameters at prepare time.
_ARITHMETIC = {
    "ADD",
    "SUB",
    "MUL",
    "FULLY_CONNECTED",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "BATCH_MATMUL",
    "QUANTIZE",
}
# Ops passing values through unchanged (output parameters == input parameters).
_PASS_THROUGH = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}
# Readers unaffected by a change of their input's parameters.
_PARAMETER_FREE_READERS = {
    "ADD",
    "SUB",
    "MUL",
    "QUANTIZE",
    "GREATER",
    "GREATER_EQUAL",
    "LESS",
    "LESS_EQUAL",
}


def _output_chain(graph: TFLiteGraph, tensor: int) -> list[int] | None:
    """``[state_output, ..., arithmetic_output]`` or ``None`` when not retargetable."""
    producers = graph.producers()
    consumers = graph.consumers()
    chain = [tensor]
    while True:
        op_index = producers.get(chain[-1])
        if op_index is None:
            return None
        op = graph.operators[op_index]
        name = graph.op_name(op)
        if name in _ARITHMETIC:
            if name == "QUANTIZE" and graph.tensor_dtype(int(op.inputs[0])) not in (
                "int8",
                "int16",
            ):
                return None
            return chain
        if name not in _PASS_THROUGH:
            return None
        source = int(op.inputs[0])
        if source in graph.inputs or consumers.get(source, []) != [op_index]:
            return None
        chain.append(source)


def _retarget_output(graph: TFLiteGraph, t_in: int, t_out: int) -> bool:
    """Method 1 (module docstring). Returns ``False`` (graph untouched) if unusable."""
    chain = _output_chain(graph, t_out)
    if chain is None or t_in in chain:
        return False
    scales, zero_points = graph.quantization_arrays(t_in)
    consumers = graph.consumers()
    outputs = graph.outputs
    fixes = []  # (operator, tensor): readers needing the old parameters
    for tensor in chain:
        for op_index in consumers.get(tensor, []):
            op = graph.operators[op_index]
            name = graph.op_name(op)
            if name in _PASS_THROUGH and int(op.outputs[0]) in chain:
                continue
            if name not in _PARAMETER_FREE_READERS:
                fixes.append((op, tensor))
        if tensor != t_out and tensor in outputs:
            return False
    for op, tensor in fixes:
        old_scales, old_zero_points = graph.quantization_arrays(tensor)
        copy = graph.add_tensor(
            f"{graph.tensor_name(tensor)}/old_scale",
            graph.tensor_shape(tensor),
            graph.tensors[tensor].type,
        )
        graph.set_quantization(copy, old_scales, old_zero_points)
        graph.tensors[copy].quantization.scale = list(
            graph.tensors[tensor].quantization.scale
        )
        op.inputs = np.asarray(
            [copy if int(t) == tensor else int(t) for t in op.inputs], dtype=np.int32
        )
        position = graph.operators.index(op)
        graph.insert_operator(
            position, schema.BuiltinOperator.QUANTIZE, [tensor], [copy]
        )
    for tensor in chain:
        graph.set_quantization(tensor, scales, zero_points)
        # Bit-identical scale: copy the input's stored float32 values.
        graph.tensors[tensor].quantization.scale = list(
            graph.tensors[t_in].quantization.scale
        )
    return True


def tie_states(graph: TFLiteGraph, pairs: list[tuple[str, int, int]]) -> list[dict]:
    """Tie each ``(name, input_position, output_position)`` pair in place.

    Positions index ``graph.inputs`` / ``graph.outputs``. Returns one record per state:
    ``{"name", "method": "shared"|"retargeted_output"|"requantized_on_input"|"float",
    "scale", "zero_point"}`` (plus the parameters the edit replaced).

    Raises:
        StateTyingError: when the dtypes or shapes of a pair differ, or the
            parameters still differ after the edit.
    """
    records = []
    for name, in_pos, out_pos in pairs:
        t_in, t_out = graph.inputs[in_pos], graph.outputs[out_pos]
        dtype_in, dtype_out = graph.tensor_dtype(t_in), graph.tensor_dtype(t_out)
        shape_in, shape_out = graph.tensor_shape(t_in), graph.tensor_shape(t_out)
        if dtype_in != dtype_out or shape_in != shape_out:
            raise StateTyingError(
                f"state '{name}': input is {dtype_in}{list(shape_in)} but output is "
                f"{dtype_out}{list(shape_out)}"
            )
        q_in, q_out = graph.quantization(t_in), graph.quantization(t_out)
        record = {"name": name}
        if q_in is None and q_out is None:
            record.update(method="float", scale=None, zero_point=None)
            records.append(record)
            continue
        if q_in is None or q_out is None:
            raise StateTyingError(
                f"state '{name}': one of its input/output tensors is quantized and "
                "the other is not"
            )
        if _same(q_in, q_out):
            record.update(method="shared", scale=q_in[0], zero_point=q_in[1])
            records.append(record)
            continue
        if _retarget_output(graph, t_in, t_out):
            record.update(
                method="retargeted_output",
                scale=q_in[0],
                zero_point=q_in[1],
                output_scale_before=q_out[0],
                output_zero_point_before=q_out[1],
            )
            records.append(record)
            continue
        name_in = graph.tensor_name(t_in)
        graph.tensors[t_in].name = f"{name_in}/requantized".encode()
        new_input = graph.add_tensor(
            name_in, shape_in, graph.tensors[t_in].type, q_out[0], q_out[1]
        )
        # Bit-identical scale: copy the output's stored float32 values.
        graph.tensors[new_input].quantization.scale = list(
            graph.tensors[t_out].quantization.scale
        )
        graph.insert_operator(0, schema.BuiltinOperator.QUANTIZE, [new_input], [t_in])
        inputs = graph.inputs
        inputs[in_pos] = new_input
        graph.subgraph.inputs = np.asarray(inputs, dtype=np.int32)
        record.update(
            method="requantized_on_input",
            scale=q_out[0],
            zero_point=q_out[1],
            input_scale_before=q_in[0],
            input_zero_point_before=q_in[1],
        )
        records.append(record)
    check_states_tied(graph, pairs)
    return records


def check_states_tied(graph: TFLiteGraph, pairs: list[tuple[str, int, int]]) -> None:
    """Raise :class:`StateTyingError` unless every pair shares scale and zero point."""
    for name, in_pos, out_pos in pairs:
        t_in, t_out = graph.inputs[in_pos], graph.outputs[out_pos]
        a, b = graph.quantization_arrays(t_in), graph.quantization_arrays(t_out)
        if a[0].size == 0 and b[0].size == 0:
            continue
        if not (np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])):
            raise StateTyingError(
                f"state '{name}': input scale/zero point {a[0].tolist()}/"
                f"{a[1].tolist()} differ from output {b[0].tolist()}/{b[1].tolist()}"
            )
