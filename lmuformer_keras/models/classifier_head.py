"""The per-frame classifier head of LMUFormer."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lmuformer_keras.layers.dense import Dense
from lmuformer_keras.models.blocks import (
    batch_norm,
    bn_after,
    bn_step,
    lif_step,
    make_lif,
    per_frame,
    spec,
)


@keras.saving.register_keras_serializable(package="lmuformer_keras")
class ClassifierHead(keras.layers.Layer):
    """Per-frame classifier: ``logits_t = W x_t + b`` (spiking: ``W LIF(BN(x_t)) + b``).

    Args:
        num_classes: Output classes.
        spiking: Spiking variant.
        lif_config: LIF arguments of the spiking variant.
        **kwargs: Base layer arguments.
    """

    def __init__(
        self,
        num_classes: int,
        spiking: bool = False,
        lif_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.spiking = bool(spiking)
        self.lif_config = dict(lif_config or {})
        self.fc = Dense(self.num_classes, name="fc", dtype=self.dtype_policy)
        if self.spiking:
            self.bn = batch_norm("bn", self.dtype_policy)
            self.lif = make_lif("lif", self.lif_config, self.dtype_policy)

    def build(self, input_shape: tuple) -> None:
        self.dim = int(input_shape[-1])
        self.fc.build((None, self.dim))  # per frame, on rows
        if self.spiking:
            self.bn.build((None, self.dim))

    def call(self, x, training: bool | None = None):
        if self.spiking:
            x = self.lif(per_frame(bn_after(self.bn, training), x))
        return per_frame(self.fc, x)

    def mean_logits(self, x, training: bool | None = None):
        """``mean_t logits_t``, ``(batch, num_classes)``.

        The non-spiking head is affine, so the mean over frames is taken first:
        ``mean_t (W x_t + b) = W mean_t(x_t) + b``, one ``(batch, dim)`` product
        instead of ``(batch * time, dim)`` (the same up to float rounding).
        """
        if self.spiking:
            return ops.mean(self(x, training=training), axis=1)
        return self.fc(ops.mean(x, axis=1))

    def state_specs(self) -> list:
        return [spec(self.lif, "membrane", (self.dim,))] if self.spiking else []

    def step(self, x_t, states: list):
        """One frame: ``(x_t, states) -> (logits_t, new_states)`` (inference mode)."""
        if self.spiking:
            (v,) = states
            s, v = lif_step(self.lif, bn_step(self.bn, x_t), v)
            return self.fc(s), [v]
        return self.fc(x_t), []

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], self.num_classes)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            spiking=self.spiking,
            lif_config=self.lif_config,
        )
        return config
