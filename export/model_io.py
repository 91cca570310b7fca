"""Where the frame, the logits and each state sit in the converted model.

The converter may reorder inputs and outputs, so they are mapped by tensor name (the
names given by :mod:`lmuformer_export.tf_convert`), falling back to a unique shape
match. Positions index the model's input/output lists: the ``index`` argument of
TFLite Micro's ``input(i)``/``output(i)`` and the order of LiteRT's
``get_input_details()``. Each tensor is the contract's
:class:`lmuformer_keras.contract.QuantizedTensor` (shape with the batch axis), the
record ``metadata.json`` writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmuformer_keras.contract import QuantizedTensor

from .errors import ExportError
from .flatbuffer import TFLiteGraph


@dataclass
class ModelIO:
    """Positions and quantization of the frame, logits and states."""

    frame: QuantizedTensor
    logits: QuantizedTensor
    states_in: list[QuantizedTensor]
    states_out: list[QuantizedTensor]
    state_names: list[str]

    @property
    def pairs(self) -> list[tuple[str, int, int]]:
        return [
            (n, i.position, o.position)
            for n, i, o in zip(
                self.state_names, self.states_in, self.states_out, strict=True
            )
        ]


def _clean(name: str) -> str:
    name = name.split(":")[0]
    for prefix in ("serving_default_",):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    return name


def _tensor_io(graph: TFLiteGraph, tensor: int, position: int) -> QuantizedTensor:
    q = graph.quantization(tensor)
    return QuantizedTensor(
        position=position,
        shape=graph.tensor_shape(tensor),
        dtype=graph.tensor_dtype(tensor),
        scale=None if q is None else q[0],
        zero_point=None if q is None else q[1],
        name=graph.tensor_name(tensor),
    )


def _match(graph, tensors, wanted_names, wanted_shapes, role) -> list[int]:
    names = [_clean(graph.tensor_name(t)) for t in tensors]
    positions: list[int | None] = []
    for want in wanted_names:
        hits = [p for p, n in enumerate(names) if n == want]
        positions.append(hits[0] if len(hits) == 1 else None)
    for k, position in enumerate(positions):
        if position is not None:
            continue
        taken = {p for p in positions if p is not None}
        shape_hits = [
            p
            for p, t in enumerate(tensors)
            if p not in taken and tuple(graph.tensor_shape(t)) == wanted_shapes[k]
        ]
        if len(shape_hits) != 1:
            raise ExportError(
                f"cannot map the step model's {role} {k} ('{wanted_names[k]}', shape "
                f"{wanted_shapes[k]}) to a tensor of the converted model "
                f"(its {role}s: {names})"
            )
        positions[k] = shape_hits[0]
    for k, position in enumerate(positions):
        if tuple(graph.tensor_shape(tensors[position])) != wanted_shapes[k]:
            raise ExportError(
                f"{role} '{wanted_names[k]}' maps to a tensor of shape "
                f"{graph.tensor_shape(tensors[position])}, expected {wanted_shapes[k]}"
            )
    return positions  # type: ignore[return-value]


def map_io(
    graph: TFLiteGraph,
    io_names: dict,
    num_features: int,
    num_classes: int,
    states,
) -> ModelIO:
    """Map the step model's inputs/outputs (Keras order) to model positions."""
    state_shapes = [(1, *s.shape) for s in states]
    in_pos = _match(
        graph,
        graph.inputs,
        io_names["inputs"],
        [(1, num_features), *state_shapes],
        "input",
    )
    out_pos = _match(
        graph,
        graph.outputs,
        io_names["outputs"],
        [(1, num_classes), *state_shapes],
        "output",
    )
    return ModelIO(
        frame=_tensor_io(graph, graph.inputs[in_pos[0]], in_pos[0]),
        logits=_tensor_io(graph, graph.outputs[out_pos[0]], out_pos[0]),
        states_in=[_tensor_io(graph, graph.inputs[p], p) for p in in_pos[1:]],
        states_out=[_tensor_io(graph, graph.outputs[p], p) for p in out_pos[1:]],
        state_names=[s.name for s in states],
    )


def refresh_io(graph: TFLiteGraph, io: ModelIO) -> ModelIO:
    """Re-read names and quantization at the same positions (after graph edits)."""
    return ModelIO(
        frame=_tensor_io(graph, graph.inputs[io.frame.position], io.frame.position),
        logits=_tensor_io(graph, graph.outputs[io.logits.position], io.logits.position),
        states_in=[
            _tensor_io(graph, graph.inputs[s.position], s.position)
            for s in io.states_in
        ],
        states_out=[
            _tensor_io(graph, graph.outputs[s.position], s.position)
            for s in io.states_out
        ],
        state_names=list(io.state_names),
    )
