"""The frame-by-frame form of a causal LMUFormer, with every state explicit."""

from __future__ import annotations

import re
from typing import Any

import keras
import numpy as np
from keras import ops

from lmuformer_keras.models.blocks import StateSpec
from lmuformer_keras.models.lmuformer import LMUFormer


def frame_logits(model: LMUFormer, x, training: bool = False):
    """Per-frame logits ``(batch, T, classes)`` of the parallel model.

    The clip logits ``model(x)`` are their mean over frames.
    """
    return model.frame_logits(ops.convert_to_tensor(x), training=training)


def _input_name(name: str) -> str:
    return "state_" + re.sub(r"[^0-9A-Za-z_]", "_", name)


@keras.saving.register_keras_serializable(package="lmuformer_keras")
class StreamingStep(keras.layers.Layer):
    """Keras layer calling ``model.step``: ``[frame, *states] -> [logits, *states]``.

    Holds the model itself, so it shares (not copies) its weights.
    """

    def __init__(self, model: LMUFormer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        # Each block casts its own states (under mixed precision the LIF membranes
        # stay float32, the rest compute in bfloat16); Keras would round them all
        # to the compute dtype.
        self._convert_input_args = False

    def call(self, inputs: list):
        frame = ops.cast(inputs[0], self.compute_dtype)
        logits, states = self.model.step(frame, list(inputs[1:]))
        return [logits, *states]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["model"] = keras.saving.serialize_keras_object(self.model)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> StreamingStep:
        config = dict(config)
        model = keras.saving.deserialize_keras_object(config.pop("model"))
        return cls(model, **config)

    def compute_output_shape(self, input_shapes: list) -> list:
        batch = input_shapes[0][0]
        return [(batch, self.model.num_classes)] + [
            (batch, *spec.shape) for spec in self.model.state_specs()
        ]


class StreamingModel:
    """Runs a causal :class:`LMUFormer` one frame at a time.

    Every state is an explicit tensor: the patch-embedding convolutions' ring
    buffers (last ``k - 1`` frames), the LMU memories, and (spiking) the LIF
    membranes. BatchNormalization is in inference form. Streaming ``T`` frames gives
    the parallel model's ``frame_logits`` at every frame.

    Args:
        model: A built, causal ``LMUFormer``. Its weights are shared, not copied.

    Attributes:
        state_specs: ``StateSpec``s in the order of the step's state inputs/outputs.
        step_model: ``keras.Model`` with inputs ``[frame, *states]`` and outputs
            ``[frame_logits_t, *new_states]``; loop-free, no FFT, no GELU. This is
            the graph the int8 export converts.
        labels, frontend: Read from the model (may be ``None``).

    Raises:
        ValueError: The model is not an ``LMUFormer`` or is not causal.
    """

    def __init__(self, model: LMUFormer) -> None:
        if not isinstance(model, LMUFormer) or not hasattr(model, "step"):
            raise ValueError(
                f"StreamingModel needs an LMUFormer with a streaming form, got "
                f"{type(model).__name__}"
            )
        if not model.causal:
            raise ValueError(
                f"StreamingModel: model '{model.name}' has causal=False (its patch "
                "embedding looks ahead); only causal=True models stream exactly"
            )
        if not model.built:
            model.build((None, None, model.num_features))
        self.model = model
        self.state_specs: list[StateSpec] = model.state_specs()
        self.labels = model.labels
        self.frontend = model.frontend
        self.num_features = model.num_features
        self.num_classes = model.num_classes
        self._step_model: keras.Model | None = None
        self._compiled_step = None

    def initial_states(self, batch_size: int = 1) -> list[np.ndarray]:
        """Zero states (empty buffers, zero memories, membranes at rest 0)."""
        return [
            np.zeros((batch_size, *spec.shape), dtype=spec.dtype)
            for spec in self.state_specs
        ]

    def step(self, frame, states: list):
        """One frame ``(batch, features)``: ``(frame_logits_t, new_states)``."""
        frame = ops.convert_to_tensor(frame, dtype=self.model.compute_dtype)
        if tuple(frame.shape[1:]) != (self.num_features,):
            raise ValueError(
                f"StreamingModel.step: frame must have shape (batch, "
                f"{self.num_features}), got {tuple(frame.shape)}"
            )
        # Each block casts its own states: under mixed precision the LIF membranes
        # integrate in float32 (LIF.state_dtype), the rest in the compute dtype.
        states = [ops.convert_to_tensor(s) for s in states]
        return self.model.step(frame, states)

    @property
    def step_model(self) -> keras.Model:
        if self._step_model is None:
            frame = keras.Input((self.num_features,), name="frame")
            state_inputs = [
                keras.Input(spec.shape, name=_input_name(spec.name))
                for spec in self.state_specs
            ]
            outputs = StreamingStep(
                self.model, name="streaming_step", dtype=self.model.dtype_policy
            )([frame, *state_inputs])
            self._step_model = keras.Model(
                [frame, *state_inputs], outputs, name=f"{self.model.name}_step"
            )
        return self._step_model

    def run(self, x) -> np.ndarray:
        """Streams every frame of ``x`` ``(batch, T, features)``: ``(batch, T, C)``."""
        x = np.asarray(x, dtype="float32")
        if x.ndim != 3 or x.shape[-1] != self.num_features:
            raise ValueError(
                f"StreamingModel.run: expected (batch, time, {self.num_features}), "
                f"got {x.shape}"
            )
        states = self.initial_states(x.shape[0])
        outputs = []
        for t in range(x.shape[1]):
            logits, states = self.step(x[:, t], states)
            outputs.append(ops.convert_to_numpy(logits))
        return np.stack(outputs, axis=1)
