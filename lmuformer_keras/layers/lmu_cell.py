"""The Legendre Memory Unit as a Keras RNN cell (one step at a time)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lmuformer_keras.layers.lmu_base import LMUBase, is_rnn_cell


@keras.saving.register_keras_serializable(package="lmuformer_keras")
class LMUCell(LMUBase):
    """Legendre Memory Unit cell, for ``keras.layers.RNN``.

    One step, for each of the ``memory_d`` memories ``i``::

        u_t = encoder_activation(x_t @ W_u + b_u)             (or u_t = x_t)
        m_t[i] = A @ m_{t-1}[i] + B * u_t[i]                  (m_{-1} = 0)
        h_t = hidden_cell([m_t ; x_t])                        (or m_t)

    ``A``, ``B`` are :func:`lmuformer_keras.lmu.lmu_matrices` (``order`` Legendre
    coefficients of a window of ``theta`` steps). The memory does not depend on ``h``,
    so the same layer runs in parallel over a sequence as ``LMUParallel``, with the
    same weights.

    Args:
        memory_d: Number of independent memories (dimension of ``u``).
        order: Legendre coefficients per memory.
        theta: Window length in steps (> 0).
        hidden_cell: ``None`` (output the memory ``m_t`` flattened row-major to
            ``memory_d * order``), a feed-forward layer such as ``Dense``, or an RNN
            cell (its states are appended to the LMU's).
        input_to_hidden: Feed ``x_t`` to the hidden cell beside ``m_t``.
        discretizer: ``"zoh"`` or ``"euler"``.
        trainable_theta: Learn ``theta`` (kept >= 1/4 of its initial value).
        kernel_initializer: Initializer of the encoder ``W_u``; ``None`` means no
            encoder (``u_t = x_t``; the input's last dimension must be ``memory_d``).
        use_bias: Add an encoder bias ``b_u``.
        bias_initializer: Initializer of ``b_u``.
        encoder_activation: Activation of the encoder (LMUFormer uses ``"relu"``).
        kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint:
            For ``W_u`` and ``b_u``.
        **kwargs: Base layer arguments (``name``, ``dtype``, ...).
    """

    @property
    def state_size(self) -> list[int]:
        sizes = [self.memory_size]
        if is_rnn_cell(self.hidden_cell):
            cell_sizes = self.hidden_cell.state_size
            sizes += (
                list(cell_sizes)
                if isinstance(cell_sizes, (list, tuple))
                else [cell_sizes]
            )
        return sizes

    @property
    def output_size(self) -> int:
        if self.hidden_cell is None:
            return self.memory_size
        if not self.built:
            raise ValueError(f"{self.name}: output_size is known once built")
        return self._hidden_output_size()

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 2:
            raise ValueError(
                f"{self.name}: LMUCell takes (batch, features) inputs, got input "
                f"shape {tuple(input_shape)}"
            )
        self._build_lmu(self._check_features(input_shape))

    def get_initial_state(self, batch_size: int | None = None) -> list:
        states = [ops.zeros((batch_size, self.memory_size), dtype=self.compute_dtype)]
        if is_rnn_cell(self.hidden_cell):
            cell_states = self.hidden_cell.get_initial_state(batch_size)
            states += list(cell_states)
        return states

    def call(self, inputs, states, training: bool | None = None):
        m = self.memory_step(self.encode(inputs), states[0])
        if self.hidden_cell is None:
            return m, [m]
        hidden_in = ops.concatenate([m, inputs], -1) if self.input_to_hidden else m
        if is_rnn_cell(self.hidden_cell):
            h, cell_states = self.hidden_cell(hidden_in, states[1:], training=training)
            cell_states = (
                list(cell_states)
                if isinstance(cell_states, (list, tuple))
                else [cell_states]
            )
            return h, [m, *cell_states]
        h = self.hidden_cell(hidden_in, training=training)
        return h, [m]

    def get_config(self) -> dict[str, Any]:
        return super().get_config()
