"""The Legendre Memory Unit over a whole sequence at once (parallel form)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lmuformer_keras import backend_utils
from lmuformer_keras.layers import lmu_memory
from lmuformer_keras.layers.lmu_base import LMUBase, is_rnn_cell


@keras.saving.register_keras_serializable(package="lmuformer_keras")
class LMUParallel(LMUBase):
    """Legendre Memory Unit computed in parallel over ``(batch, time, features)``.

    Computes exactly what ``keras.layers.RNN(LMUCell(...))`` computes, with the same
    arguments and weights, but without a loop over time for the memory: the memory of
    a linear time-invariant system is the causal convolution of ``u`` with the
    impulse response ``H[k] = A^k B``::

        u = encoder_activation(x @ W_u + b_u)
        m_t[i] = sum_{k=0}^{t} H[t - k] u_k[i]
        h_t = hidden_cell([m_t ; x_t])

    A feed-forward ``hidden_cell`` (e.g. ``Dense``) is applied to every step at once;
    an RNN ``hidden_cell`` is run over the sequence of ``[m_t ; x_t]`` after the memory.

    Args:
        memory_d, order, theta, hidden_cell, input_to_hidden, discretizer,
        trainable_theta, kernel_initializer, use_bias, bias_initializer,
        encoder_activation, kernel_regularizer, bias_regularizer, kernel_constraint,
        bias_constraint: As for ``LMUCell``.
        return_sequences: Return every step ``(batch, T, units)`` rather than the
            last ``(batch, units)``.
        conv_mode: ``"fft"`` (``keras.ops.rfft`` / ``irfft``, zero-padded to avoid
            circular wrap-around; O(T log T)), ``"direct"`` (lower-triangular Toeplitz
            matrix product; O(T^2), loop-free) or ``"auto"`` (the faster of the two
            for the sequence length and backend, from the crossover measured by
            ``benchmarks/lmu_speed.py``).
        **kwargs: Base layer arguments.

    The sequence length may differ from call to call and be unknown at build time.
    """

    def __init__(
        self,
        memory_d: int,
        order: int,
        theta: float,
        hidden_cell: keras.layers.Layer | None = None,
        input_to_hidden: bool = False,
        discretizer: str = "zoh",
        trainable_theta: bool = False,
        kernel_initializer: Any = "glorot_uniform",
        use_bias: bool = False,
        bias_initializer: Any = "zeros",
        encoder_activation: Any = None,
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        return_sequences: bool = False,
        conv_mode: str = "auto",
        **kwargs: Any,
    ) -> None:
        if conv_mode not in lmu_memory.CONV_MODES:
            raise ValueError(
                f"LMUParallel: conv_mode must be one of {lmu_memory.CONV_MODES}, got "
                f"conv_mode={conv_mode!r}"
            )
        super().__init__(
            memory_d=memory_d,
            order=order,
            theta=theta,
            hidden_cell=hidden_cell,
            input_to_hidden=input_to_hidden,
            discretizer=discretizer,
            trainable_theta=trainable_theta,
            kernel_initializer=kernel_initializer,
            use_bias=use_bias,
            bias_initializer=bias_initializer,
            encoder_activation=encoder_activation,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )
        self.return_sequences = bool(return_sequences)
        self.conv_mode = conv_mode
        self._h_cache: dict[tuple[int, str], Any] = {}

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                f"{self.name}: LMUParallel takes (batch, time, features) inputs, got "
                f"input shape {tuple(input_shape)}"
            )
        features = self._check_features(input_shape)
        self._build_lmu(features)
        if is_rnn_cell(self.hidden_cell):
            # Runs the hidden RNN cell over [m_t ; x_t]; it shares the cell's weights.
            self._hidden_rnn = keras.layers.RNN(
                self.hidden_cell, return_sequences=self.return_sequences
            )
            hidden_in = self.memory_size + (features if self.input_to_hidden else 0)
            self._hidden_rnn.build((None, None, hidden_in))

    def impulse_response(self, length, dtype: str):
        """``H[k] = A^k B`` for ``k < length``: ``(length, order)``."""
        if isinstance(length, int) and not self.trainable_theta:
            key = (length, dtype)
            if key not in self._h_cache:
                from lmuformer_keras import lmu

                self._h_cache[key] = lmu.impulse_response(
                    self._a_np, self._b_np, length
                ).astype(dtype)
            return ops.convert_to_tensor(self._h_cache[key], dtype=dtype)
        a, b = self.discrete_matrices(dtype)
        if isinstance(length, int):
            return lmu_memory.impulse_response_static(a, b, length)
        return lmu_memory.impulse_response_dynamic(a, b, length)

    def memory(self, u, training: bool | None = False):
        """All memories ``(batch, T, memory_d * order)`` of an encoded ``u``."""
        static_length = u.shape[1]
        length = static_length if isinstance(static_length, int) else ops.shape(u)[1]
        h = self.impulse_response(length, self.compute_dtype)
        form = self._conv_form(static_length, training)
        if form == "fft":
            m = lmu_memory.causal_conv_fft(u, h)
        elif form == "convolution":
            m = lmu_memory.causal_conv_convolution(u, h)
        else:
            m = lmu_memory.causal_conv_direct(u, h)
        return ops.reshape(m, (-1, length, self.memory_size))

    def projected_memory(self, u, kernel, training: bool | None = False):
        """``memory(u) @ kernel``, ``(batch, T, units)``, for ``kernel`` of shape
        ``(memory_d * order, units)``.

        The memory is linear in ``u``, so the product folds into the impulse
        response: ``m_t @ W = sum_d sum_{k<=t} u[k, d] g[d, t - k]`` with
        ``g[d, k] = H[k] @ W_d`` (computed per call, ``T x order x units``
        multiply-adds, independent of the batch). That is a causal convolution of
        ``u`` with ``units`` outputs instead of ``order`` per memory, and no
        ``(batch * T, memory_d * order) @ (memory_d * order, units)`` product. It
        is used when it is the cheaper way (``units * T <= order * (T + units)``;
        the LMUFormer presets all qualify), else ``memory(u) @ kernel`` is
        computed as written. Both are the same function up to float rounding.
        """
        static_length = u.shape[1]
        length = static_length if isinstance(static_length, int) else ops.shape(u)[1]
        units = int(kernel.shape[-1])
        dtype = self.compute_dtype
        if isinstance(static_length, int) and units * static_length > self.order * (
            static_length + units
        ):
            return backend_utils.matmul(
                self.memory(u, training), ops.cast(kernel, dtype)
            )
        h = self.impulse_response(length, dtype)
        kernel = ops.cast(kernel, dtype)
        form = self._conv_form(static_length, training)
        if form == "convolution":  # Its kernel is g reversed in time: H reversed.
            g_reversed = lmu_memory.projected_impulse_response(
                ops.flip(h, axis=0), kernel, self.memory_d
            )
            return lmu_memory.projected_causal_conv_convolution(u, g_reversed)
        g = lmu_memory.projected_impulse_response(h, kernel, self.memory_d)
        if form == "fft":
            return lmu_memory.projected_causal_conv_fft(u, g)
        return lmu_memory.projected_causal_conv_direct(u, g)

    def _conv_form(self, static_length, training) -> str:
        return lmu_memory.resolve_conv_mode(
            self.conv_mode, static_length, keras.backend.backend(), training
        )

    def call(self, inputs, training: bool | None = None):
        u = self.encode(inputs)
        rnn_hidden = is_rnn_cell(self.hidden_cell)
        if not self.return_sequences and not rnn_hidden:
            # Only the last step is needed: m_{T-1} = sum_k H[T-1-k] u_k.
            static_length = inputs.shape[1]
            length = (
                static_length
                if isinstance(static_length, int)
                else ops.shape(inputs)[1]
            )
            h = self.impulse_response(length, self.compute_dtype)
            m = ops.reshape(lmu_memory.last_memory(u, h), (-1, self.memory_size))
            x_last = inputs[:, -1]
            if self.hidden_cell is None:
                return m
            hidden_in = ops.concatenate([m, x_last], -1) if self.input_to_hidden else m
            return self.hidden_cell(hidden_in, training=training)
        m = self.memory(u, training)
        if self.hidden_cell is None:
            return m if self.return_sequences else m[:, -1]
        hidden_in = ops.concatenate([m, inputs], -1) if self.input_to_hidden else m
        if not rnn_hidden:
            return self.hidden_cell(hidden_in, training=training)
        return self._run_hidden_rnn(hidden_in, training)

    def _run_hidden_rnn(self, hidden_in, training):
        return self._hidden_rnn(hidden_in, training=training)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if not self.built:
            self.build(input_shape)
        units = self._hidden_output_size()
        if self.return_sequences:
            return (input_shape[0], input_shape[1], units)
        return (input_shape[0], units)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {"return_sequences": self.return_sequences, "conv_mode": self.conv_mode}
        )
        return config
