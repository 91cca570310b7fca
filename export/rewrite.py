"""Step 4 of the export: the graph edits and checks on the converted flatbuffer.

:func:`rewrite` makes the float spike islands integer (:mod:`.bool_cast`), folds
per-channel ``MUL``/``ADD`` into the Dense before them (:mod:`.dense_fold`), folds LIF
neurons (:mod:`.lif_fold`), removes shape ops that move no data (:mod:`.simplify`),
merges equal constants, ties the state quantization (:mod:`.state_tying`), runs Dense
as 1x1 ``CONV_2D`` (:mod:`.dense_as_conv`), and checks the result with
:func:`check_graph`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from .bool_cast import fold_bool_casts
from .contract import num_classes, num_features
from .dense_as_conv import dense_as_conv as rewrite_dense_as_conv
from .dense_fold import fold_affine_into_dense
from .errors import UnsupportedOpError
from .flatbuffer import INTEGER_TYPES, TFLiteGraph
from .lif_fold import fold_lif_neurons
from .macs import count_macs
from .model_io import ModelIO, map_io, refresh_io
from .options import ExportOptions
from .simplify import simplify_shape_ops
from .state_tying import check_states_tied, tie_states
from .tensor_names import layer_name_from_tensor, short_tensor_name
from .tflm_ops import check_tflm_ops

if TYPE_CHECKING:
    from .inputs import ExportInputs

_LOOP_OPS = {
    "WHILE",
    "IF",
    "CALL_ONCE",
    "VAR_HANDLE",
    "READ_VARIABLE",
    "ASSIGN_VARIABLE",
}


def _describe_tensor(graph: TFLiteGraph, tensor: int, names) -> str:
    name = graph.tensor_name(tensor)
    producer = graph.tensor_producer_name(tensor) or "graph input"
    layer = layer_name_from_tensor(name, names)
    where = f"Keras layer '{layer}'" if layer else "no Keras layer matched"
    return (
        f"'{short_tensor_name(name)}' ({graph.tensor_dtype(tensor)}, written by "
        f"{producer}; {where})"
    )


def check_graph(graph: TFLiteGraph, quantization: str, names=()) -> list[str]:
    """Loop-free, TFLM builtins only, and (quantized) integer tensors only.

    Returns the sorted op names. Raises :class:`UnsupportedOpError`.
    """
    loops = sorted({graph.op_name(op) for op in graph.operators} & _LOOP_OPS)
    if loops:
        raise UnsupportedOpError(
            f"the step graph must be loop-free and stateless, but it converted to "
            f"{', '.join(loops)}: stream with explicit state inputs/outputs instead "
            "of a Keras RNN layer or variables"
        )
    ops = check_tflm_ops(graph, names)
    if quantization != "float32":
        floats = [
            t
            for t in range(len(graph.tensors))
            if graph.tensor_dtype(t) not in INTEGER_TYPES
        ]
        if floats:
            described = "; ".join(_describe_tensor(graph, t, names) for t in floats[:8])
            raise UnsupportedOpError(
                f"the {quantization} model still holds {len(floats)} non-integer "
                f"tensor(s) between input and output: {described}"
            )
    return ops


@dataclasses.dataclass(frozen=True)
class RewrittenGraph:
    """The flatbuffer after the graph edits, re-read and checked.

    Attributes:
        model_bytes: the ``model.tflite`` bytes.
        io: positions and quantization of frame, logits and states.
        ops: sorted op names.
        num_ops: operators in the graph.
        macs: :func:`count_macs` of the graph.
        tying: per state, how its output quantization was tied to its input's.
        edits: how many of each edit were made (report keys ``bool_casts_folded``,
            ``mul_add_folded_into_dense``, ``lif_neurons_folded``,
            ``shape_ops_removed``, ``constants_merged``, ``dense_as_conv``).
    """

    model_bytes: bytes
    io: ModelIO
    ops: list[str]
    num_ops: int
    macs: dict
    tying: list
    edits: dict


def rewrite(
    raw_bytes: bytes, io_names, inputs: ExportInputs, options: ExportOptions
) -> RewrittenGraph:
    """Step 4: the graph edits and checks on the converted flatbuffer.

    Raises:
        UnsupportedOpError: loops, ops TFLite Micro lacks, or float tensors left.
        StateTyingError: states whose quantization cannot be tied.
    """
    quantization, model = options.quantization, inputs.streaming_model
    graph = TFLiteGraph(raw_bytes)
    io = map_io(graph, io_names, num_features(model), num_classes(model), inputs.states)
    edits = {
        "bool_casts_folded": fold_bool_casts(graph) if quantization != "float32" else 0,
        "mul_add_folded_into_dense": (
            fold_affine_into_dense(graph) if quantization == "int8" else 0
        ),
        "lif_neurons_folded": 0,
        "shape_ops_removed": 0,
        "constants_merged": 0,
    }
    if options.optimize_graph:
        if quantization == "int8":
            edits["lif_neurons_folded"] = fold_lif_neurons(graph, io.pairs)
        edits["shape_ops_removed"] = simplify_shape_ops(graph)
        edits["constants_merged"] = graph.dedup_constants()
    check_graph(graph, quantization, inputs.names)
    tying = tie_states(graph, io.pairs)
    edits["dense_as_conv"] = (
        rewrite_dense_as_conv(graph)
        if options.dense_as_conv and quantization == "int8"
        else 0
    )
    if options.strip_names:  # flash: only the inputs/outputs keep their names
        graph.strip_tensor_names(keep=graph.inputs + graph.outputs)
    graph.share_empty_buffers()
    model_bytes = graph.to_bytes()

    final = TFLiteGraph(model_bytes)  # re-read what is written
    io = refresh_io(final, io)
    check_states_tied(final, io.pairs)
    return RewrittenGraph(
        model_bytes=model_bytes,
        io=io,
        ops=check_graph(final, quantization, inputs.names),
        num_ops=len(final.operators),
        macs=count_macs(final),
        tying=tying,
        edits=edits,
    )
