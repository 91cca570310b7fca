"""The LMU memory's FFT form: causal convolution by ``keras.ops.rfft`` / ``irfft``.

O(T log T): ``u`` and the impulse response are zero-padded to an FFT length of at
least ``2T - 1``, so that the circular convolution equals the linear one. Works with a
``T`` unknown at trace time.
"""

from __future__ import annotations

from keras import ops


def _fft_operands(u, h):
    """``u`` as ``(batch, D, n)`` and ``h`` as ``(n, ...)``, zero-padded to an FFT
    length ``n >= 2T - 1`` (no circular wrap-around), with ``T`` and ``n``."""
    ut = ops.transpose(u, (0, 2, 1))  # (B, D, T)
    length = u.shape[1]
    if isinstance(length, int):
        # Next power of two >= 2T - 1: no circular wrap-around, fastest FFT size.
        n = 1 << max(0, (2 * length - 2).bit_length())
        ut = ops.pad(ut, [[0, 0], [0, 0], [0, n - length]])
        h = ops.pad(h, [[0, n - length]] + [[0, 0]] * (len(h.shape) - 1))
    else:  # Unknown at trace time (TensorFlow graph): pad to exactly 2T.
        length = ops.shape(u)[1]
        n = 2 * length
        ut = ops.concatenate([ut, ops.zeros_like(ut)], axis=-1)
        h = ops.concatenate([h, ops.zeros_like(h)], axis=0)
    return ut, h, length, n


def causal_conv_fft(u, h):
    """Causal convolution by FFT.

    Args:
        u: ``(batch, T, D)`` encoded input.
        h: ``(T, order)`` impulse response.

    Returns:
        ``(batch, T, D, order)``: ``m[b, t, d] = sum_{k<=t} h[t - k] u[b, k, d]``.
    """
    ut, h, length, n = _fft_operands(u, h)
    ur, ui = ops.rfft(ut)  # (B, D, F)
    hr, hi = ops.rfft(ops.transpose(h))  # (order, F)
    ur, ui = ur[:, :, None, :], ui[:, :, None, :]
    pr = ur * hr - ui * hi
    pi = ur * hi + ui * hr
    m = ops.irfft((pr, pi), fft_length=n)  # (B, D, order, n)
    m = m[..., :length]
    return ops.transpose(m, (0, 3, 1, 2))


def projected_causal_conv_fft(u, g):
    """Causal convolution with a projected impulse response, by FFT.

    Args:
        u: ``(batch, T, D)`` encoded input.
        g: ``(D, T, units)``: ``g[d, k] = H[k] @ W_d`` (see
            :func:`.lmu_response.projected_impulse_response`).

    Returns:
        ``(batch, T, units)``: ``y[b, t] = sum_d sum_{k<=t} g[d, t - k] u[b, k, d]``.
    """
    ut, g, length, n = _fft_operands(u, ops.transpose(g, (1, 0, 2)))  # g: (n, D, U)
    ur, ui = ops.rfft(ut)  # (B, D, F)
    gr, gi = ops.rfft(ops.transpose(g, (1, 2, 0)))  # (D, U, F)
    pr = ops.einsum("bdf,duf->buf", ur, gr) - ops.einsum("bdf,duf->buf", ui, gi)
    pi = ops.einsum("bdf,duf->buf", ur, gi) + ops.einsum("bdf,duf->buf", ui, gr)
    y = ops.irfft((pr, pi), fft_length=n)[..., :length]  # (B, U, T)
    return ops.transpose(y, (0, 2, 1))
