"""Conv1D without layout copies on torch, and as matrix products under bfloat16 on
JAX."""

from __future__ import annotations

import keras
from keras import ops

from lmuformer_keras import backend_utils


@keras.saving.register_keras_serializable(package="lmuformer_keras")
class Conv1D(keras.layers.Conv1D):
    """``keras.layers.Conv1D``: the same layer, weights and math::

        y_t = activation(b + sum_{j=0}^{k-1} W[j] x_{t+j})     (x padded as configured)

    For stride 1, dilation 1, one group and channels-last data it computes this sum
    itself:

    - by :func:`lmuformer_keras.backend_utils.conv1d`: on torch, a convolution of
      the channels-last data as it lies in memory, where Keras' torch convolution
      copies it to channels-first and back (1.1-1.4x faster forward, 1.1-1.3x
      forward + backward; ``benchmarks/conv1d_speed.py``); on TensorFlow and
      JAX, Keras' own ops, as ``keras.layers.Conv1D``;
    - at inference on JAX under ``mixed_bfloat16`` (where
      :func:`lmuformer_keras.backend_utils.matmul` accumulates in float32 and is
      about 2x faster than XLA's convolution), as one matrix product of every
      padded frame with all ``k`` taps side by side, then the sum of the ``k``
      shifted slices::

          Z = X_pad @ [W[0] | ... | W[k-1]],    y_t = b + sum_j Z[t + j, j]

      The paper presets' inference is about 10% faster on JAX in bfloat16;
    - in training on JAX under ``mixed_bfloat16``, as one product of the input's
      windows (:func:`lmuformer_keras.backend_utils.conv1d_as_window_product`:
      each output frame's ``k`` input frames side by side, times the taps stacked),
      whose custom VJP is two more such products: faster than XLA's bfloat16
      convolution forward and backward (figures: ``docs/code_figures.md``).

    Quantized and LoRA-enabled layers, and every other configuration, run
    ``keras.layers.Conv1D.call``.

    It has Keras' class name on purpose: Keras files the weights of layers kept in
    a list under their class name, so models saved with ``keras.layers``' Conv1D
    load into this one unchanged.
    """

    def call(self, inputs, training=None):
        if not self._is_plain(inputs):
            return super().call(inputs)
        as_products = self._runs_as_products(inputs)
        k = self.kernel_size[0]
        if self.padding == "causal":
            pad = (k - 1, 0)
        elif self.padding == "same":
            pad = ((k - 1) // 2, k - 1 - (k - 1) // 2)
        else:
            pad = (0, 0)
        kernel = ops.cast(self.kernel, inputs.dtype)  # (k, C_in, C_out)
        bias = ops.cast(self.bias, inputs.dtype) if self.use_bias else None
        if as_products and training:
            y = backend_utils.conv1d_as_window_product(inputs, kernel, *pad, bias=bias)
        elif as_products:
            y = self._as_one_product(inputs, kernel, pad, bias)
        else:
            y = backend_utils.conv1d(inputs, kernel, *pad, bias=bias)
        if self.activation is not None:
            y = self.activation(y)
        return y

    def _runs_as_products(self, inputs) -> bool:
        """JAX, bfloat16: the forms of matrix products (inference and training)."""
        return self._is_plain(inputs) and backend_utils.matmul_accumulates_in_float32(
            inputs.dtype, self.compute_dtype
        )

    @staticmethod
    def _as_one_product(inputs, kernel, pad, bias):
        k, c_in, c_out = kernel.shape
        x = ops.pad(inputs, ((0, 0), pad, (0, 0))) if any(pad) else inputs
        taps = ops.reshape(ops.transpose(kernel, (1, 0, 2)), (c_in, k * c_out))
        shape = ops.shape(x)
        z = backend_utils.matmul(ops.reshape(x, (-1, c_in)), taps)
        z = ops.reshape(z, (shape[0], shape[1], k, c_out))
        frames = shape[1] - k + 1
        y = z[:, 0:frames, 0]
        for j in range(1, k):
            y = y + z[:, j : j + frames, j]
        return y if bias is None else ops.add(y, bias)

    def _is_plain(self, inputs) -> bool:
        return (
            tuple(self.strides) == (1,)
            and tuple(self.dilation_rate) == (1,)
            and self.groups == 1
            and self.data_format == "channels_last"
            and getattr(self, "quantization_mode", None) is None
            and not getattr(self, "lora_enabled", False)
            and len(inputs.shape) == 3
        )
