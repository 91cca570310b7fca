"""The Legendre Memory Unit over a whole sequence at once (parallel form)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lmuformer_keras import backend_utils
from lmuformer_keras.layers import (
    lmu_conv_chunked,
    lmu_conv_direct,
    lmu_conv_fft,
    lmu_memory,
    lmu_response,
)
from lmuformer_keras.layers.dense import Dense
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

    or, in chunks of ``C`` steps (``conv_mode="chunked"``), with ``s_n = m_{nC-1}``
    carried from chunk to chunk by ``s_{n+1} = A^C s_n + sum_{k<C} H[C-1-k]
    u_{nC+k}``::

        m_{nC+i} = sum_{k<=i} H[i-k] u_{nC+k} + A^{i+1} s_n,   0 <= i < C.

    A feed-forward ``hidden_cell`` (e.g. ``Dense``) is applied to every step at once
    (a plain ``Dense`` after the chunked memory is folded into it:
    ``m_t @ W_m`` without forming ``m_t``, when that is fewer multiply-adds); an RNN
    ``hidden_cell`` is run over the sequence of ``[m_t ; x_t]`` after the memory.

    Args:
        memory_d, order, theta, hidden_cell, input_to_hidden, discretizer,
        trainable_theta, kernel_initializer, use_bias, bias_initializer,
        encoder_activation, kernel_regularizer, bias_regularizer, kernel_constraint,
        bias_constraint: As for ``LMUCell``.
        return_sequences: Return every step ``(batch, T, units)`` rather than the
            last ``(batch, units)``.
        conv_mode: ``"fft"`` (``keras.ops.rfft`` / ``irfft``, zero-padded to avoid
            circular wrap-around; O(T log T)), ``"direct"`` (lower-triangular Toeplitz
            matrix product; O(T^2), loop-free), ``"chunked"`` (the chunk form above:
            one ``(batch * T / C, C + order) @ (C + order, C * order)`` product and
            ``T / C`` dependent ``(batch, order)`` steps; needs a static ``T``, else
            it runs as ``"fft"``) or ``"auto"`` (the fastest for the sequence length
            and backend, from the table measured by ``benchmarks/lmu_speed.py
            --crossover``: ``lmu_memory.AUTO_MEMORY_FORMS``).
        chunk_length: Target chunk length ``C`` of ``"chunked"`` (``None``: the
            backend's measured default, ``lmu_memory.CHUNK_LENGTH``); ``T`` is
            spread over ``ceil(T / C)`` equal chunks.
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
        chunk_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        if conv_mode not in lmu_memory.CONV_MODES:
            raise ValueError(
                f"LMUParallel: conv_mode must be one of {lmu_memory.CONV_MODES}, got "
                f"conv_mode={conv_mode!r}"
            )
        if chunk_length is not None and (
            isinstance(chunk_length, bool)
            or not isinstance(chunk_length, int)
            or chunk_length < 1
        ):
            raise ValueError(
                "LMUParallel: chunk_length must be None or an integer >= 1, got "
                f"chunk_length={chunk_length!r}"
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
        self.chunk_length = chunk_length
        self._h_cache: dict[tuple[int, str], Any] = {}
        self._chunk_cache: dict[tuple[int, str], tuple] = {}

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
            return lmu_response.impulse_response_static(a, b, length)
        return lmu_response.impulse_response_dynamic(a, b, length)

    def chunk_operators(self, length: int, dtype: str) -> tuple:
        """The operators of :func:`lmu_conv_chunked.causal_conv_chunked` for a static
        ``length``: ``(operator, h_end, a_chunk_t)``, for the chunk length
        :func:`lmu_memory.chunk_length_for` gives ``length`` on this backend."""
        target = self.chunk_length or lmu_memory.CHUNK_LENGTH.get(
            keras.backend.backend(), 32
        )
        chunk = lmu_memory.chunk_length_for(length, target)
        if self.trainable_theta:
            a, b = self.discrete_matrices(dtype)
            return lmu_conv_chunked.chunk_operators(a, b, chunk)
        key = (chunk, dtype)
        if key not in self._chunk_cache:
            self._chunk_cache[key] = tuple(
                op.astype(dtype)
                for op in lmu_conv_chunked.chunk_operators_np(
                    self._a_np, self._b_np, chunk
                )
            )
        return tuple(
            ops.convert_to_tensor(op, dtype=dtype) for op in self._chunk_cache[key]
        )

    def memory(self, u, training: bool | None = False):
        """All memories ``(batch, T, memory_d * order)`` of an encoded ``u``."""
        static_length = u.shape[1]
        length = static_length if isinstance(static_length, int) else ops.shape(u)[1]
        form = self._conv_form(static_length, training)
        if form == "chunked":
            operators = self.chunk_operators(static_length, self.compute_dtype)
            m = lmu_conv_chunked.causal_conv_chunked(u, *operators)
            return ops.reshape(m, (-1, length, self.memory_size))
        h = self.impulse_response(length, self.compute_dtype)
        if form == "fft":
            m = lmu_conv_fft.causal_conv_fft(u, h)
        elif form == "convolution":
            m = lmu_conv_direct.causal_conv_convolution(u, h)
        else:
            m = lmu_conv_direct.causal_conv_direct(u, h)
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
        form = self._conv_form(static_length, training, projected=True)
        if form == "chunked":
            return self._projected_chunked(u, kernel)
        if isinstance(static_length, int) and units * static_length > self.order * (
            static_length + units
        ):
            return backend_utils.matmul(
                self.memory(u, training), ops.cast(kernel, dtype)
            )
        h = self.impulse_response(length, dtype)
        kernel = ops.cast(kernel, dtype)
        if form == "convolution":  # Its kernel is g reversed in time: H reversed.
            g_reversed = lmu_response.projected_impulse_response(
                ops.flip(h, axis=0), kernel, self.memory_d
            )
            return lmu_conv_direct.projected_causal_conv_convolution(u, g_reversed)
        g = lmu_response.projected_impulse_response(h, kernel, self.memory_d)
        if form == "fft":
            return lmu_conv_fft.projected_causal_conv_fft(u, g)
        return lmu_conv_direct.projected_causal_conv_direct(u, g)

    def _projected_chunked(self, u, kernel):
        """``memory(u) @ kernel`` in the chunked form: folded into the chunk
        operator (:func:`lmu_conv_chunked.projected_causal_conv_chunked`) where that is
        fewer multiply-adds, else the memories times ``kernel``.

        Per call, with ``R = C + order`` rows of the operator and ``B * D * T``
        memories (batch 32 assumed when unknown at trace time): folded
        ``D * R * C * order * units + B * D * T * R * units``; as written
        ``B * D * T * (R * order + order * units)``.
        """
        dtype = self.compute_dtype
        length, units = u.shape[1], int(kernel.shape[-1])
        operators = self.chunk_operators(length, dtype)
        chunk = int(operators[1].shape[0])
        rows = chunk + self.order
        steps = (u.shape[0] or 32) * self.memory_d * length
        folded = (
            self.memory_d * rows * chunk * self.order * units + steps * rows * units
        )
        written = steps * (rows * self.order + self.order * units)
        kernel = ops.cast(kernel, dtype)
        if folded < written:
            return lmu_conv_chunked.projected_causal_conv_chunked(u, *operators, kernel)
        m = lmu_conv_chunked.causal_conv_chunked(u, *operators)
        return backend_utils.matmul(
            ops.reshape(m, (-1, length, self.memory_size)), kernel
        )

    def _foldable_hidden(self) -> bool:
        """Whether ``hidden_cell`` is a plain ``Dense`` (Keras' or the library's),
        whose product with the memories folds into the chunked form's operator."""
        cell = self.hidden_cell
        return (
            type(cell) in (keras.layers.Dense, Dense)
            and cell.quantization_mode is None
            and not cell.lora_enabled
            and cell.activity_regularizer is None
        )

    def _folded_hidden(self, u, inputs):
        """``hidden_cell([m ; x])`` of a plain ``Dense`` with ``W_m`` folded into
        the chunked memory: ``activation(memory(u) @ W_m + x @ W_x + b)``."""
        cell = self.hidden_cell
        dtype = self.compute_dtype
        kernel = ops.cast(cell.kernel, dtype)
        y = self._projected_chunked(u, kernel[: self.memory_size])
        if self.input_to_hidden:
            y = y + backend_utils.matmul(inputs, kernel[self.memory_size :])
        if cell.bias is not None:
            y = y + ops.cast(cell.bias, dtype)
        return y if cell.activation is None else cell.activation(y)

    def _conv_form(self, static_length, training, projected: bool = False) -> str:
        return lmu_memory.resolve_conv_mode(
            self.conv_mode,
            static_length,
            keras.backend.backend(),
            training,
            projected=projected,
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
            m = ops.reshape(lmu_conv_direct.last_memory(u, h), (-1, self.memory_size))
            x_last = inputs[:, -1]
            if self.hidden_cell is None:
                return m
            hidden_in = ops.concatenate([m, x_last], -1) if self.input_to_hidden else m
            return self.hidden_cell(hidden_in, training=training)
        if (
            self.return_sequences
            and self._foldable_hidden()
            and self._conv_form(inputs.shape[1], training) == "chunked"
        ):
            return self._folded_hidden(u, inputs)
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
            {
                "return_sequences": self.return_sequences,
                "conv_mode": self.conv_mode,
                "chunk_length": self.chunk_length,
            }
        )
        return config
