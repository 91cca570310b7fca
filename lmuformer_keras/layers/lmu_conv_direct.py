"""The LMU memory's direct forms: a Toeplitz matrix product or a convolution op.

``causal_conv_direct`` computes ``m_t = sum_{k<=t} H[t - k] u_k`` as a
lower-triangular Toeplitz matrix product (O(T^2), loop-free, the form an int8 runtime
can take); ``causal_conv_convolution`` computes the same sum with the backend's
convolution op (faster at inference on some backends, see
:data:`lmuformer_keras.layers.lmu_memory.DIRECT_AS_CONVOLUTION_AT_INFERENCE`). Their
``projected_`` forms give ``m_t @ W`` from the projected impulse response;
``last_memory`` gives only ``m_{T-1}``.
"""

from __future__ import annotations

from keras import ops

from lmuformer_keras import backend_utils


def lower_toeplitz(u):
    """``U[b, d, t, k] = u[b, t - k, d]`` (0 for ``k > t``): ``(batch, D, T, T)``."""
    length = u.shape[1] if isinstance(u.shape[1], int) else ops.shape(u)[1]
    t = ops.arange(length)
    lag = t[:, None] - t[None, :]  # (T, T): t - k
    mask = ops.cast(lag >= 0, u.dtype)
    ut = ops.transpose(u, (0, 2, 1))  # (B, D, T)
    return ops.take(ut, ops.maximum(lag, 0), axis=2) * mask


def causal_conv_direct(u, h):
    """Causal convolution as a lower-triangular Toeplitz matrix product.

    Builds ``U[b, d, t, k] = u[b, t - k, d]`` (0 for ``k > t``) and returns
    ``U @ h`` rearranged to ``(batch, T, D, order)``. Loop-free; O(T^2) work.
    """
    m = ops.matmul(lower_toeplitz(u), h)  # (B, D, T, order)
    return ops.transpose(m, (0, 2, 1, 3))


def projected_causal_conv_direct(u, g):
    """:func:`.lmu_conv_fft.projected_causal_conv_fft` as one Toeplitz matrix product.

    ``y[b, t] = sum_{d, k} U[b, d, t, k] g[d, k]``: the ``(batch, T, D * T)``
    Toeplitz rows times ``g`` flattened to ``(D * T, units)``.
    """
    toeplitz = lower_toeplitz(u)  # (B, D, T, T)
    shape = ops.shape(toeplitz)
    d, units = g.shape[0], g.shape[-1]
    if d > 1:
        toeplitz = ops.transpose(toeplitz, (0, 2, 1, 3))  # (B, T, D, T)
    rows = ops.reshape(toeplitz, (shape[0], shape[2], d * shape[3]))
    return backend_utils.matmul(rows, ops.reshape(g, (-1, units)))


def causal_conv_convolution(u, h):
    """:func:`causal_conv_direct` as the backend's convolution op.

    Each of the ``D`` inputs is convolved, as a one-channel signal left-padded
    with ``T - 1`` zeros, with the ``T``-tap kernel ``flip(h)`` (``order`` output
    channels). Needs a static ``T``.
    """
    batch, length, d = ops.shape(u)[0], u.shape[1], u.shape[2]
    x = ops.reshape(ops.transpose(u, (0, 2, 1)), (-1, length, 1))  # (B * D, T, 1)
    m = backend_utils.conv1d(x, ops.flip(h, axis=0)[:, None, :], length - 1)
    m = ops.reshape(m, (batch, d, length, h.shape[-1]))
    return ops.transpose(m, (0, 2, 1, 3))


def projected_causal_conv_convolution(u, g_reversed):
    """:func:`.lmu_conv_fft.projected_causal_conv_fft` as the backend's convolution
    op: ``u`` left-padded with ``T - 1`` zeros, convolved with the ``T``-tap kernel
    ``g_reversed`` (``g`` flipped in time, ``(D, T, units)``; flipping ``H`` before
    :func:`.lmu_response.projected_impulse_response` gives it with no flip of
    ``g``). Needs a static ``T``."""
    length = u.shape[1]
    d, _, units = g_reversed.shape
    if d == 1:
        kernel = ops.reshape(g_reversed, (length, 1, units))
    else:
        kernel = ops.transpose(g_reversed, (1, 0, 2))
    return backend_utils.conv1d(u, kernel, length - 1)


def last_memory(u, h):
    """Only the final memory ``m_{T-1} = sum_k H[T-1-k] u_k``: ``(batch, D, order)``."""
    return ops.einsum("bkd,ko->bdo", u, ops.flip(h, axis=0))
