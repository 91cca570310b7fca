"""Give every state output exactly the quantization of its state input.

An app streams by copying the bytes of each state output into the matching state input
before the next frame, so both tensors must share one scale and zero point. The
converter calibrates them separately, so they usually differ.

Method (chosen after trying the alternatives on TF 2.21): after conversion, for each
state whose input and output parameters differ, a new graph input takes the OUTPUT's
scale and zero point and feeds a ``QUANTIZE`` op (int8 -> int8 or int16 -> int16: a
requantization, which TFLite Micro implements) that writes the original input tensor,
with its original parameters. So:

- the state travels between frames in the output's representation: the precision the
  graph computes it at (storing it on a finer grid would add no information, and
  would turn one-LSB kernel differences between runtimes into several LSB);
- every consumer of the state input keeps the parameters it was built for, including
  int32 biases the converter folded with the input scale;
- the output's calibrated range covers every state the float model produced (the
  inputs are previous outputs), and 0 (the initial state) is exact in it.

Why not the alternatives:

- ``CONCATENATION`` trick (``concat([state_in, new_state])`` sliced back): the shared
  scale comes from the converter's scale propagation, which silently resolves
  conflicting same-scale constraints (a state that also feeds a concat or a select)
  by inserting requantizations where it sees fit; it costs a concat buffer of twice
  the state and a slice per state.
- Rewriting parameters in place: wrong when the producing op is a same-scale op
  (reshape, slice, select, concat), when the tensor has other consumers, or for the
  input (biases were quantized with its scale).
- Fake-quant ops on the states: mixes quantization-aware semantics into
  post-training calibration.

The ``QUANTIZE`` op costs one state-sized tensor and a multiply per element per frame;
the result is exact by construction and checked after the edit.
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


def tie_states(graph: TFLiteGraph, pairs: list[tuple[str, int, int]]) -> list[dict]:
    """Tie each ``(name, input_position, output_position)`` pair in place.

    Positions index ``graph.inputs`` / ``graph.outputs``. Returns one record per state:
    ``{"name", "method": "shared"|"requantized_on_input"|"float", "scale",
    "zero_point"}`` (plus the input's parameters before the edit when requantized).

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
