"""The LMU token mixer of LMUFormer: scalar encoder, Legendre memory, hidden layer."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lmuformer_keras import backend_utils
from lmuformer_keras.layers.dense import Dense
from lmuformer_keras.layers.lmu_parallel import LMUParallel
from lmuformer_keras.models.blocks import (
    batch_norm,
    bn_after,
    bn_step,
    dense_bn,
    is_affine_dense,
    lif_step,
    make_lif,
    per_frame,
    relu,
    spec,
)


@keras.saving.register_keras_serializable(package="lmuformer_keras")
class LMUTokenMixer(keras.layers.Layer):
    """Mixes information across frames with a Legendre Memory Unit.

    Non-spiking::

        u_t = ReLU(w_u . x_t + b_u)                   (memory_d scalars)
        m_t = A m_{t-1} + B u_t                        (LMUParallel, in parallel)
        h_t = ReLU(W_h [m_t ; x_t] + b_h)
        y_t = BN(W_o h_t + b_o)                        (1x1 conv == per-frame Dense)

    Spiking (``s`` are spikes; ``m_t`` stays real-valued)::

        s_t = LIF_0.5(BN(x_t));  u_t = LIF(BN(w_u . s_t + b_u))
        m_t = A m_{t-1} + B u_t; m^s_t = LIF(BN(m_t))
        h_t = LIF(BN(W_h [m^s_t ; s_t] + b_h));  y_t = BN(W_o h_t + b_o)

    At inference each ``BN(W x + b)`` runs as one Dense with the BatchNormalization
    folded into its weights (``blocks.dense_bn``; equal up to float rounding). In
    the non-spiking mixer ``W_h [m_t ; x_t]`` is computed as ``W_m m_t + W_x x_t``
    with ``W_m`` folded into the memory's impulse response, training and
    inference (``LMUParallel.projected_memory``); the memories are never formed.

    Args:
        dim: Channels in and out.
        order: Legendre coefficients per memory.
        theta: Memory window in frames.
        memory_d: Number of scalar memories ``u``.
        spiking: Spiking variant.
        conv_mode: ``LMUParallel`` convolution mode.
        lif_config: LIF arguments of the spiking variant.
        input_v_threshold: Threshold of the LIF before the cell (0.5 in the paper).
        **kwargs: Base layer arguments.
    """

    def __init__(
        self,
        dim: int,
        order: int,
        theta: float,
        memory_d: int = 1,
        spiking: bool = False,
        conv_mode: str = "auto",
        lif_config: dict[str, Any] | None = None,
        input_v_threshold: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dim = int(dim)
        self.order = int(order)
        self.theta = float(theta)
        self.memory_d = int(memory_d)
        self.spiking = bool(spiking)
        self.conv_mode = conv_mode
        self.lif_config = dict(lif_config or {})
        self.input_v_threshold = float(input_v_threshold)
        self.encoder = Dense(self.memory_d, name="encoder", dtype=self.dtype_policy)
        self.memory = LMUParallel(
            self.memory_d,
            self.order,
            self.theta,
            kernel_initializer=None,
            return_sequences=True,
            conv_mode=conv_mode,
            name="memory",
            dtype=self.dtype_policy,
        )
        self.hidden = Dense(self.dim, name="hidden", dtype=self.dtype_policy)
        self.proj = Dense(self.dim, name="proj", dtype=self.dtype_policy)
        self.proj_bn = batch_norm("proj_bn", self.dtype_policy)
        if self.spiking:
            self.input_bn = batch_norm("input_bn", self.dtype_policy)
            self.input_lif = make_lif(
                "input_lif",
                self.lif_config,
                self.dtype_policy,
                v_threshold=self.input_v_threshold,
            )
            self.u_bn = batch_norm("u_bn", self.dtype_policy)
            self.u_lif = make_lif("u_lif", self.lif_config, self.dtype_policy)
            self.m_bn = batch_norm("m_bn", self.dtype_policy)
            self.m_lif = make_lif("m_lif", self.lif_config, self.dtype_policy)
            self.h_bn = batch_norm("h_bn", self.dtype_policy)
            self.h_lif = make_lif("h_lif", self.lif_config, self.dtype_policy)

    def build(self, input_shape: tuple) -> None:
        m_size = self.memory_d * self.order
        # Every layer but the memory and the LIFs runs per frame, on
        # (batch * time, channels) rows.
        self.encoder.build((None, self.dim))
        self.memory.build((None, None, self.memory_d))
        self.hidden.build((None, m_size + self.dim))
        self.proj.build((None, self.dim))
        self.proj_bn.build((None, self.dim))
        if self.spiking:
            self.input_bn.build((None, self.dim))
            self.u_bn.build((None, self.memory_d))
            self.m_bn.build((None, m_size))
            self.h_bn.build((None, self.dim))

    def call(self, x, training: bool | None = None):
        if self.spiking:
            x = self.input_lif(per_frame(bn_after(self.input_bn, training), x))
            u = self.u_lif(per_frame(dense_bn(self.encoder, self.u_bn, training), x))
            m = self.m_lif(
                per_frame(
                    bn_after(self.m_bn, training), self.memory(u, training=training)
                )
            )
            mx = ops.concatenate([m, x], axis=-1)
            h = self.h_lif(per_frame(dense_bn(self.hidden, self.h_bn, training), mx))
        else:
            u = per_frame(lambda r: relu(self.encoder(r)), x)
            h = relu(self._hidden_of_memory(u, x, training))
        return per_frame(dense_bn(self.proj, self.proj_bn, training), h)

    def _hidden_of_memory(self, u, x, training):
        """``W_h [m_t ; x_t] + b_h`` with ``m = memory(u)``, without the memories.

        ``W_h [m ; x] = W_m m + W_x x`` (``W_h``'s row blocks), and ``W_m m`` is
        :meth:`LMUParallel.projected_memory`: the memory's convolution with ``W_m``
        folded into its impulse response. This skips the ``(batch * T, order)``
        memories, their concatenation with ``x`` and a third of the hidden
        layer's product; the same function up to float rounding. A quantized
        hidden layer (or one with an activation) runs as written.
        """
        hidden = self.hidden
        if not is_affine_dense(hidden):
            mx = ops.concatenate([self.memory.memory(u, training), x], axis=-1)
            return per_frame(hidden, mx)
        m_size = self.memory_d * self.order
        kernel = hidden.kernel
        dtype = hidden.compute_dtype
        w_x = ops.cast(kernel[m_size:], dtype)

        def input_part(rows):
            y = backend_utils.matmul(ops.cast(rows, dtype), w_x)
            return y if hidden.bias is None else y + ops.cast(hidden.bias, dtype)

        return per_frame(input_part, x) + self.memory.projected_memory(
            u, kernel[:m_size], training
        )

    def state_specs(self) -> list:
        specs = [spec(self.memory, "m", (self.memory_d * self.order,))]
        if self.spiking:
            specs += [
                spec(self.input_lif, "membrane", (self.dim,)),
                spec(self.u_lif, "membrane", (self.memory_d,)),
                spec(self.m_lif, "membrane", (self.memory_d * self.order,)),
                spec(self.h_lif, "membrane", (self.dim,)),
            ]
        return specs

    def step(self, x_t, states: list):
        """One frame: ``(x_t, states) -> (y_t, new_states)`` (inference mode)."""
        if self.spiking:
            m_prev, v_in, v_u, v_m, v_h = states
            x_t, v_in = lif_step(self.input_lif, bn_step(self.input_bn, x_t), v_in)
            u, v_u = lif_step(self.u_lif, bn_step(self.u_bn, self.encoder(x_t)), v_u)
            m = self.memory.memory_step(u, m_prev)
            ms, v_m = lif_step(self.m_lif, bn_step(self.m_bn, m), v_m)
            h = self.hidden(ops.concatenate([ms, x_t], axis=-1))
            h, v_h = lif_step(self.h_lif, bn_step(self.h_bn, h), v_h)
            new_states = [m, v_in, v_u, v_m, v_h]
        else:
            (m_prev,) = states
            m = self.memory.memory_step(relu(self.encoder(x_t)), m_prev)
            h = relu(self.hidden(ops.concatenate([m, x_t], axis=-1)))
            new_states = [m]
        return bn_step(self.proj_bn, self.proj(h)), new_states

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            dim=self.dim,
            order=self.order,
            theta=self.theta,
            memory_d=self.memory_d,
            spiking=self.spiking,
            conv_mode=self.conv_mode,
            lif_config=self.lif_config,
            input_v_threshold=self.input_v_threshold,
        )
        return config
