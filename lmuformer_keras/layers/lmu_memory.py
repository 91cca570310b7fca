"""LMU memory math in ``keras.ops``: discretization, impulse response, causal conv.

The LMU memory is a linear time-invariant system, so over a whole sequence it is the
causal convolution of the encoded input ``u`` with the impulse response
``H[k] = A^k B``:

    m_t = sum_{k=0}^{t} H[t - k] u_k.

Two loop-free ways to compute it are provided: ``causal_conv_fft`` (O(T log T), via
``keras.ops.rfft`` / ``irfft`` zero-padded to at least ``2T - 1`` so that the circular
convolution equals the linear one) and ``causal_conv_direct`` (a lower-triangular
Toeplitz matrix product, O(T^2), the form an int8 runtime can take).
"""

from __future__ import annotations

import math

from keras import ops

CONV_MODES = ("auto", "fft", "direct")

# Crossover lengths for conv_mode="auto": the direct (Toeplitz) form is used up to and
# including this sequence length, the FFT form above it. Measured on the project's
# 2-core CPU machine with `python benchmarks/lmu_speed.py --crossover` (forward +
# backward, batch 32, order 256, memory_d 1); see BUILD.md.
AUTO_DIRECT_MAX_LENGTH = {"tensorflow": 512, "jax": 896, "torch": 640}


def expm_taylor(x, num_squarings: int, num_terms: int = 10):
    """Matrix exponential by scaling and squaring of a Taylor series (keras.ops).

    ``expm(x) = (sum_{k<=K} (x / 2^s)^k / k!)^(2^s)``. Differentiable; ``s`` is
    static so the graph is loop-free. Accurate when ``||x||_1 / 2^s <= 0.5``.
    """
    n = x.shape[-1]
    y = x / (2.0**num_squarings)
    eye = ops.eye(n, dtype=x.dtype)
    term = eye
    result = eye
    for k in range(1, num_terms + 1):
        term = ops.matmul(term, y) / float(k)
        result = result + term
    for _ in range(num_squarings):
        result = ops.matmul(result, result)
    return result


def discretize(a0, b0, theta, discretizer: str, num_squarings: int):
    """In-graph discretization of ``(A0 / theta, B0 / theta)`` for a trainable theta.

    Returns ``(A, B)`` tensors; see :func:`lmuformer_keras.lmu.lmu_matrices`.
    """
    order = a0.shape[0]
    a_c = a0 / theta
    b_c = b0 / theta
    if discretizer == "euler":
        return ops.eye(order, dtype=a_c.dtype) + a_c, b_c
    # expm([[A_c, B_c], [0, 0]]) = [[A, B], [0, 1]] (zero-order hold).
    top = ops.concatenate([a_c, b_c[:, None]], axis=1)
    block = ops.concatenate([top, ops.zeros((1, order + 1), dtype=a_c.dtype)], axis=0)
    e = expm_taylor(block, num_squarings)
    return e[:order, :order], e[:order, order]


def num_squarings_for(a0_norm1: float, theta_min: float) -> int:
    """Static number of squarings so that ``||A0 / theta||_1 / 2^s <= 0.5``."""
    return max(0, math.ceil(math.log2(max(a0_norm1 / theta_min / 0.5, 1.0))))


def impulse_response_static(a, b, length: int):
    """``H[k] = A^k B`` for ``k < length`` with a static length (log2(T) matmuls)."""
    h = b[None, :]
    a_pow = a
    n = 1
    while n < length:
        h = ops.concatenate([h, ops.matmul(h, ops.transpose(a_pow))], axis=0)
        n *= 2
        if n < length:
            a_pow = ops.matmul(a_pow, a_pow)
    return h[:length]


def impulse_response_dynamic(a, b, length):
    """``H[k] = A^k B`` for a length only known at run time (a scan over steps)."""

    def step(h, _):
        return ops.matmul(a, h), h

    _, hs = ops.scan(step, b, xs=ops.zeros((length,), dtype=b.dtype))
    return hs


def causal_conv_fft(u, h):
    """Causal convolution by FFT.

    Args:
        u: ``(batch, T, D)`` encoded input.
        h: ``(T, order)`` impulse response.

    Returns:
        ``(batch, T, D, order)``: ``m[b, t, d] = sum_{k<=t} h[t - k] u[b, k, d]``.
    """
    ut = ops.transpose(u, (0, 2, 1))  # (B, D, T)
    length = u.shape[1]
    if isinstance(length, int):
        # Next power of two >= 2T - 1: no circular wrap-around, fastest FFT size.
        n = 1 << max(0, (2 * length - 2).bit_length())
        ut = ops.pad(ut, [[0, 0], [0, 0], [0, n - length]])
        h = ops.pad(h, [[0, n - length], [0, 0]])
    else:  # Unknown at trace time (TensorFlow graph): pad to exactly 2T.
        length = ops.shape(u)[1]
        n = 2 * length
        ut = ops.concatenate([ut, ops.zeros_like(ut)], axis=-1)
        h = ops.concatenate([h, ops.zeros_like(h)], axis=0)
    ur, ui = ops.rfft(ut)  # (B, D, F)
    hr, hi = ops.rfft(ops.transpose(h))  # (order, F)
    ur, ui = ur[:, :, None, :], ui[:, :, None, :]
    pr = ur * hr - ui * hi
    pi = ur * hi + ui * hr
    m = ops.irfft((pr, pi), fft_length=n)  # (B, D, order, n)
    m = m[..., :length]
    return ops.transpose(m, (0, 3, 1, 2))


def causal_conv_direct(u, h):
    """Causal convolution as a lower-triangular Toeplitz matrix product.

    Builds ``U[b, d, t, k] = u[b, t - k, d]`` (0 for ``k > t``) and returns
    ``U @ h`` rearranged to ``(batch, T, D, order)``. Loop-free; O(T^2) work.
    """
    length = u.shape[1] if isinstance(u.shape[1], int) else ops.shape(u)[1]
    t = ops.arange(length)
    lag = t[:, None] - t[None, :]  # (T, T): t - k
    mask = ops.cast(lag >= 0, u.dtype)
    ut = ops.transpose(u, (0, 2, 1))  # (B, D, T)
    toeplitz = ops.take(ut, ops.maximum(lag, 0), axis=2)  # (B, D, T, T)
    toeplitz = toeplitz * mask
    m = ops.matmul(toeplitz, h)  # (B, D, T, order)
    return ops.transpose(m, (0, 2, 1, 3))


def last_memory(u, h):
    """Only the final memory ``m_{T-1} = sum_k H[T-1-k] u_k``: ``(batch, D, order)``."""
    return ops.einsum("bkd,ko->bdo", u, ops.flip(h, axis=0))


def resolve_conv_mode(conv_mode: str, length, backend: str) -> str:
    """Picks ``"fft"`` or ``"direct"`` for ``conv_mode="auto"`` (measured table)."""
    if conv_mode != "auto":
        return conv_mode
    if not isinstance(length, int):
        return "fft"
    return "direct" if length <= AUTO_DIRECT_MAX_LENGTH.get(backend, 64) else "fft"
