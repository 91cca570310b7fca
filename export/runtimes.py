"""LiteRT and TFLite Micro runners, and the frame-by-frame streaming loop.

A runner is addressed by input/output position (:class:`~.model_io.ModelIO`). Each
clip is streamed frame by frame from the quantized initial states; after every frame
the state outputs are copied to the state inputs (the bytes, no requantization:
:mod:`lmuformer_export.state_tying` makes that exact).

LiteRT runs its reference kernels (``OpResolverType.BUILTIN_REF``) by default, its
optimized builtin kernels with ``"optimized"``, and its default set (optimized kernels
plus the XNNPACK delegate) with ``"default"`` (:data:`LITERT_RESOLVER_TYPES`).
"""

from __future__ import annotations

import numpy as np

from lmuformer_keras.console import filtered_stderr
from lmuformer_keras.contract import QuantizedTensor

from .model_io import ModelIO

__all__ = [
    "LITERT_RESOLVERS",
    "LITERT_RESOLVER_TYPES",
    "LiteRTRunner",
    "TFLMRunner",
    "dequantize",
    "feed",
    "initial_quantized_states",
    "quantize",
    "read_states",
    "stream",
]


def quantize(x: np.ndarray, tensor: QuantizedTensor) -> np.ndarray:
    """Float -> the tensor's dtype (:func:`lmuformer_keras.contract.quantize`: halves
    away from zero, as the apps and TFLite's QUANTIZE kernel)."""
    return tensor.quantize(x)


def dequantize(q: np.ndarray, tensor: QuantizedTensor) -> np.ndarray:
    """The tensor's values as float32 (:func:`lmuformer_keras.contract.dequantize`)."""
    return tensor.dequantize(q)


# LiteRT kernel sets: name -> ``OpResolverType`` member (``None``: the default
# interpreter, optimized kernels plus the XNNPACK delegate).
LITERT_RESOLVER_TYPES = {
    "reference": "BUILTIN_REF",
    "optimized": "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
    "default": None,
}
LITERT_RESOLVERS = tuple(LITERT_RESOLVER_TYPES)


class LiteRTRunner:
    """ai-edge-litert interpreter addressed by input/output position.

    Args:
        model_bytes: the ``.tflite`` flatbuffer.
        resolver: ``"reference"`` (``OpResolverType.BUILTIN_REF``: LiteRT's reference
            kernels, the closest to TFLite Micro's), ``"optimized"``
            (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``: LiteRT's optimized builtin
            kernels) or ``"default"`` (optimized kernels and the XNNPACK delegate,
            what ``Interpreter()`` gives).
        num_threads: interpreter threads.
    """

    def __init__(
        self, model_bytes: bytes, resolver: str = "reference", num_threads: int = 1
    ):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        if resolver not in LITERT_RESOLVERS:
            raise ValueError(
                f"LiteRTRunner: resolver must be one of {LITERT_RESOLVERS}, got "
                f"resolver={resolver!r}"
            )
        kind = LITERT_RESOLVER_TYPES[resolver]
        kwargs = (
            {}
            if kind is None
            else {"experimental_op_resolver_type": getattr(OpResolverType, kind)}
        )
        self.resolver = resolver
        with filtered_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate"
            self.interpreter = Interpreter(
                model_content=model_bytes, num_threads=num_threads, **kwargs
            )
            self.interpreter.allocate_tensors()
        self._in = [d["index"] for d in self.interpreter.get_input_details()]
        self._out = [d["index"] for d in self.interpreter.get_output_details()]

    def set_input(self, position: int, value: np.ndarray) -> None:
        self.interpreter.set_tensor(self._in[position], value)

    def invoke(self) -> None:
        self.interpreter.invoke()

    def get_output(self, position: int) -> np.ndarray:
        return self.interpreter.get_tensor(self._out[position])


class TFLMRunner:
    """TFLite Micro Python interpreter addressed by input/output position."""

    def __init__(self, model_bytes: bytes, arena_size: int):
        from tflite_micro import runtime

        self.interpreter = runtime.Interpreter.from_bytes(
            model_bytes, arena_size=int(arena_size)
        )

    def set_input(self, position: int, value: np.ndarray) -> None:
        self.interpreter.set_input(value, position)

    def invoke(self) -> None:
        self.interpreter.invoke()

    def get_output(self, position: int) -> np.ndarray:
        return np.array(self.interpreter.get_output(position), copy=True)


def initial_quantized_states(io: ModelIO, initial_states) -> list[np.ndarray]:
    """Initial float states (batch 1) in the state inputs' representation."""
    return [
        quantize(np.asarray(s, np.float32).reshape(t.shape), t)
        for s, t in zip(initial_states, io.states_in, strict=True)
    ]


def feed(runner, io: ModelIO, frame_q: np.ndarray, states: list[np.ndarray]) -> None:
    """Sets one quantized frame ``(1, F)`` and the state inputs, then invokes."""
    runner.set_input(io.frame.position, frame_q)
    for s_in, value in zip(io.states_in, states, strict=True):
        runner.set_input(s_in.position, value)
    runner.invoke()


def read_states(runner, io: ModelIO) -> list[np.ndarray]:
    """The state outputs of the last invoke (copies)."""
    return [runner.get_output(s.position).copy() for s in io.states_out]


def stream(
    runner,
    io: ModelIO,
    frames: np.ndarray,
    initial_q: list[np.ndarray],
    forced_states=None,
):
    """Stream ``frames`` ``(T, F)``; return raw logits ``(T, C)`` and the states.

    Returns ``(logits, states_in, states_out)``: per frame, the state inputs given and
    the state outputs produced (lists over states). The state outputs of a frame are
    the state inputs of the next one, unless ``forced_states`` (per frame, lists of
    state inputs, e.g. another runtime's ``states_in``) is given: then those are fed
    instead (teacher forcing), to compare kernels without recurrent drift.
    """
    states = [s.copy() for s in initial_q]
    frames_q = quantize(frames, io.frame)
    logits, given, produced = [], [], []
    for t in range(frames_q.shape[0]):
        if forced_states is not None:
            states = forced_states[t]
        feed(runner, io, frames_q[t : t + 1], states)
        logits.append(runner.get_output(io.logits.position).reshape(-1).copy())
        given.append(states)
        states = read_states(runner, io)
        produced.append(states)
    return np.stack(logits), given, produced
