"""Stateless spiking activation layer."""

from __future__ import annotations

import keras
from keras import ops

from lmuformer_keras.spiking import _spike, validate_spike_args


@keras.saving.register_keras_serializable(package="lmuformer_keras")
class SpikeActivation(keras.layers.Layer):
    """Stateless spiking activation ``S = H(x - threshold)``.

    Forward: ``S = 1.0 if x - threshold >= 0 else 0.0``. Backward: the surrogate
    derivative ``g'(x - threshold)`` of :func:`lmuformer_keras.spiking.spike`.

    Args:
        threshold: Firing threshold.
        surrogate: ``"sigmoid"``, ``"atan"`` or ``"ste"``.
        alpha: Sharpness of the ``"sigmoid"`` / ``"atan"`` surrogates (``> 0``).
        clip_value: Half-width of the ``"ste"`` window (``> 0``).
        **kwargs: Base ``keras.layers.Layer`` arguments.

    Raises:
        ValueError: Unknown ``surrogate``, ``alpha <= 0``, ``clip_value <= 0`` or a
            non-finite ``threshold``.
    """

    def __init__(
        self,
        threshold: float = 0.0,
        surrogate: str = "sigmoid",
        alpha: float = 4.0,
        clip_value: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.surrogate, self.alpha, self.clip_value = validate_spike_args(
            surrogate, alpha, clip_value, owner="SpikeActivation"
        )
        try:
            self.threshold = float(threshold)
        except (TypeError, ValueError):
            raise ValueError(
                "SpikeActivation: threshold must be a finite number, "
                f"got threshold={threshold!r}"
            ) from None
        if self.threshold != self.threshold or abs(self.threshold) == float("inf"):
            raise ValueError(
                "SpikeActivation: threshold must be a finite number, "
                f"got threshold={threshold!r}"
            )
        self.supports_masking = True

    def call(self, inputs):
        x = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
        if self.threshold != 0.0:
            x = x - self.threshold
        return _spike(x, self.surrogate, self.alpha, self.clip_value)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "threshold": self.threshold,
                "surrogate": self.surrogate,
                "alpha": self.alpha,
                "clip_value": self.clip_value,
            }
        )
        return config
