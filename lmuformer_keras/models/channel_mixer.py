"""The convolutional channel mixer of LMUFormer (two 1x1 convolutions)."""

from __future__ import annotations

from typing import Any

import keras

from lmuformer_keras.layers.dense import Dense
from lmuformer_keras.models.blocks import (
    batch_norm,
    bn_after,
    bn_step,
    dense_bn,
    lif_step,
    make_lif,
    per_frame,
    relu,
    spec,
)


@keras.saving.register_keras_serializable(package="lmuformer_keras")
class ChannelMixer(keras.layers.Layer):
    """Per-frame MLP ``dim -> hidden -> dim`` as two 1x1 convolutions.

    Non-spiking: ``y = ReLU(BN(W_2 ReLU(BN(W_1 x + b_1)) + b_2))``. The reference
    uses GELU after the first BN; TensorFlow Lite Micro has no GELU, so ReLU is used.

    Spiking: ``y = W_2 LIF(BN(W_1 LIF(BN(x)) + b_1)) + b_2``.

    A 1x1 convolution over frames is a per-frame ``Dense`` (same parameters).
    At inference each ``BN(W x + b)`` runs as one Dense with the BatchNormalization
    folded into its weights (``blocks.dense_bn``; equal up to float rounding).

    Args:
        dim: Channels in and out.
        hidden_dim: Expanded channels (``mlp_ratio * dim``).
        spiking: Spiking variant.
        lif_config: LIF arguments of the spiking variant.
        **kwargs: Base layer arguments.
    """

    def __init__(
        self,
        dim: int,
        hidden_dim: int,
        spiking: bool = False,
        lif_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dim = int(dim)
        self.hidden_dim = int(hidden_dim)
        self.spiking = bool(spiking)
        self.lif_config = dict(lif_config or {})
        self.fc1 = Dense(self.hidden_dim, name="fc1", dtype=self.dtype_policy)
        self.fc2 = Dense(self.dim, name="fc2", dtype=self.dtype_policy)
        self.bn1 = batch_norm("bn1", self.dtype_policy)
        self.bn2 = batch_norm("bn2", self.dtype_policy)
        if self.spiking:
            self.lif1 = make_lif("lif1", self.lif_config, self.dtype_policy)
            self.lif2 = make_lif("lif2", self.lif_config, self.dtype_policy)

    def build(self, input_shape: tuple) -> None:
        # Every layer but the LIFs runs per frame, on (batch * time, channels) rows.
        self.fc1.build((None, self.dim))
        self.fc2.build((None, self.hidden_dim))
        if self.spiking:
            self.bn1.build((None, self.dim))
            self.bn2.build((None, self.hidden_dim))
        else:
            self.bn1.build((None, self.hidden_dim))
            self.bn2.build((None, self.dim))

    def call(self, x, training: bool | None = None):
        if self.spiking:
            s = self.lif1(per_frame(bn_after(self.bn1, training), x))
            s = self.lif2(per_frame(dense_bn(self.fc1, self.bn2, training), s))
            return per_frame(self.fc2, s)

        fc1_bn1 = dense_bn(self.fc1, self.bn1, training)
        fc2_bn2 = dense_bn(self.fc2, self.bn2, training)

        def mlp(r):
            return relu(fc2_bn2(relu(fc1_bn1(r))))

        return per_frame(mlp, x)

    def state_specs(self) -> list:
        if not self.spiking:
            return []
        return [
            spec(self.lif1, "membrane", (self.dim,)),
            spec(self.lif2, "membrane", (self.hidden_dim,)),
        ]

    def step(self, x_t, states: list):
        """One frame: ``(x_t, states) -> (y_t, new_states)`` (inference mode)."""
        if self.spiking:
            v1, v2 = states
            s, v1 = lif_step(self.lif1, bn_step(self.bn1, x_t), v1)
            s, v2 = lif_step(self.lif2, bn_step(self.bn2, self.fc1(s)), v2)
            return self.fc2(s), [v1, v2]
        x = relu(bn_step(self.bn1, self.fc1(x_t)))
        return relu(bn_step(self.bn2, self.fc2(x))), []

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            dim=self.dim,
            hidden_dim=self.hidden_dim,
            spiking=self.spiking,
            lif_config=self.lif_config,
        )
        return config
