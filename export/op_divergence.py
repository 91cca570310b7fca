"""Where TFLite Micro and LiteRT part: the per-op difference of their outputs.

The per-step TFLM-vs-LiteRT difference of the logits is the end of a chain: each
requantizing op may round one LSB differently in the two runtimes (see
:mod:`lmuformer_export.verify`), and the ops after it carry and rescale that
difference. To show where it starts and where it grows, the model is rewritten so
that every op output is also a model output, and both runtimes run it on the same
inputs: every frame of a clip, with LiteRT's state inputs fed to TFLM too (teacher
forcing, as the per-step comparison). For each op this reports

- ``max_lsb``: the largest difference of its output, in LSB of that output;
- ``own_lsb``: the largest difference on frames where all its non-constant inputs
  were equal in the two runtimes, i.e. what the op's kernels alone make.

Only the extra outputs change; the arithmetic is the model's. The rewritten model is
used for this diagnosis only, never written out.
"""

from __future__ import annotations

import numpy as np

from .arena import round_up
from .flatbuffer import NUMPY_DTYPES, TFLiteGraph
from .model_io import ModelIO
from .runtimes import LiteRTRunner, TFLMRunner, feed, quantize, read_states


def with_op_outputs(model_bytes: bytes) -> tuple[bytes, list[dict], int]:
    """The model with every op output appended to the subgraph outputs.

    Returns ``(model_bytes, ops, extra_bytes)``: per op output in graph order,
    ``op_index``, ``op``, ``tensor``, ``name``, ``position`` (its output position in
    the new model: unchanged for the model's own outputs, appended after them
    otherwise) and ``inputs`` (tensor indices of the op's non-constant inputs);
    ``extra_bytes``: the appended outputs' sizes, each rounded up to the arena
    granularity. TFLM keeps every output allocated to the end of an invoke, so the
    model's arena plus ``extra_bytes`` always suffices.
    """
    graph = TFLiteGraph(model_bytes)
    outputs = graph.outputs
    ops, extra = [], []
    for index, op in enumerate(graph.operators):
        for tensor in (int(t) for t in op.outputs):
            if tensor in outputs:
                position = outputs.index(tensor)
            else:
                position = len(outputs) + len(extra)
                extra.append(tensor)
            ops.append(
                {
                    "op_index": index,
                    "op": graph.op_name(op),
                    "tensor": tensor,
                    "position": position,
                    "name": graph.tensor_name(tensor),
                    "inputs": [
                        int(t)
                        for t in op.inputs
                        if int(t) >= 0 and not graph.is_constant(int(t))
                    ],
                }
            )
    graph.subgraph.outputs = np.array(outputs + extra, dtype=np.int32)
    extra_bytes = sum(
        round_up(
            int(np.prod(graph.tensor_shape(t)))
            * np.dtype(NUMPY_DTYPES[graph.tensor_dtype(t)]).itemsize
        )
        for t in extra
    )
    return graph.to_bytes(), ops, extra_bytes


def op_divergence(
    model_bytes: bytes,
    io: ModelIO,
    clips: np.ndarray,
    initial_q: list[np.ndarray],
    arena_size: int,
    resolver: str = "reference",
) -> list[dict]:
    """Per-op TFLM-vs-LiteRT output differences over ``clips`` ``(N, T, F)``.

    Args:
        model_bytes: the integer ``.tflite`` flatbuffer.
        io: its frame, logits and state positions.
        clips: float frontend clips.
        initial_q: quantized initial states (batch 1).
        arena_size: the model's TFLM arena; room for the extra outputs is added.
        resolver: LiteRT's kernels (:class:`LiteRTRunner`).

    Returns:
        One dict per op output in graph order: ``op_index``, ``op``, ``name``,
        ``output`` (``"logits"``, ``"state:<name>"`` or ``""``), ``max_lsb``,
        ``own_lsb`` (see the module docstring).

    Raises:
        ValueError: ``clips`` not ``(N, T, F)`` with ``N >= 1``.
    """
    clips = np.asarray(clips, dtype=np.float32)
    if clips.ndim != 3 or clips.shape[0] == 0:
        raise ValueError(
            f"op_divergence: clips must be (N >= 1, T, F), got shape {clips.shape}"
        )
    probe_bytes, ops, extra_bytes = with_op_outputs(model_bytes)
    lite = LiteRTRunner(probe_bytes, resolver)
    micro = TFLMRunner(probe_bytes, arena_size + extra_bytes)
    max_lsb = np.zeros(len(ops))
    own_lsb = np.zeros(len(ops))
    for clip in clips:
        states = [s.copy() for s in initial_q]
        frames_q = quantize(clip, io.frame)
        for t in range(frames_q.shape[0]):
            for runner in (lite, micro):
                feed(runner, io, frames_q[t : t + 1], states)
            diff = {}
            for op in ops:
                a = lite.get_output(op["position"]).astype(np.int64)
                b = micro.get_output(op["position"]).astype(np.int64)
                diff[op["tensor"]] = int(np.max(np.abs(a - b))) if a.size else 0
            for k, op in enumerate(ops):
                d = diff[op["tensor"]]
                max_lsb[k] = max(max_lsb[k], d)
                if all(diff.get(i, 0) == 0 for i in op["inputs"]):
                    own_lsb[k] = max(own_lsb[k], d)
            states = read_states(lite, io)
    roles = {io.logits.position: "logits"}
    roles.update(
        {
            o.position: f"state:{n}"
            for n, o in zip(io.state_names, io.states_out, strict=True)
        }
    )
    return [
        {
            "op_index": op["op_index"],
            "op": op["op"],
            "name": op["name"],
            "output": roles.get(op["position"], ""),
            "max_lsb": int(max_lsb[k]),
            "own_lsb": int(own_lsb[k]),
        }
        for k, op in enumerate(ops)
    ]


def summarize(divergence: list[dict]) -> dict:
    """Counts for the report: ops whose kernels differ, and the largest values."""
    return {
        "ops": len(divergence),
        "ops_whose_kernels_differ": [
            f"{d['op_index']}:{d['op']}" for d in divergence if d["own_lsb"] > 0
        ],
        "largest_own_lsb": max((d["own_lsb"] for d in divergence), default=0),
        "largest_max_lsb": max((d["max_lsb"] for d in divergence), default=0),
    }
