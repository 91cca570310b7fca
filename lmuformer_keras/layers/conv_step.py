"""One step of a causal ``Conv1D``, with an explicit ring buffer of past frames.

A causal kernel-``k`` convolution over frames is

    y_t = b + sum_{j=0}^{k-1} W[j] x_{t-k+1+j}      (x_{<0} = 0),

so streaming keeps the last ``k - 1`` input frames as a state ``(batch, k-1, C_in)``.
One step is a concatenation and a matrix product (TFLite: CONCATENATION, RESHAPE,
FULLY_CONNECTED): no loop and no padding.
"""

from __future__ import annotations

import keras
from keras import ops


def conv1d_buffer_shape(conv: keras.layers.Conv1D, in_channels: int) -> tuple:
    """State shape (without batch) of ``conv``'s ring buffer: ``(k - 1, C_in)``."""
    return (conv.kernel_size[0] - 1, in_channels)


def conv1d_step(conv: keras.layers.Conv1D, x_t, buffer):
    """Applies causal ``conv`` to one frame.

    Args:
        conv: A built ``Conv1D`` with stride 1 and dilation 1.
        x_t: ``(batch, C_in)`` current frame.
        buffer: ``(batch, k - 1, C_in)`` previous frames, oldest first (zeros at
            the start of a stream); cast to the dtype of ``x_t``.

    Returns:
        ``(y_t, new_buffer)``: ``(batch, C_out)`` and ``(batch, k - 1, C_in)``.
    """
    k, c_in, c_out = conv.kernel.shape
    buffer = ops.cast(buffer, x_t.dtype)
    window = ops.concatenate([buffer, x_t[:, None, :]], axis=1)  # (B, k, C_in)
    flat = ops.reshape(window, (-1, k * c_in))
    kernel = ops.reshape(ops.cast(conv.kernel, x_t.dtype), (k * c_in, c_out))
    y = ops.matmul(flat, kernel)
    if conv.use_bias:
        y = y + ops.cast(conv.bias, x_t.dtype)
    if conv.activation is not None:
        y = conv.activation(y)
    return y, window[:, 1:]
