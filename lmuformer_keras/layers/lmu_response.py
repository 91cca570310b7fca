"""The LMU's discretization and impulse response in ``keras.ops``.

``discretize`` gives the discrete ``(A, B)`` of ``(A0 / theta, B0 / theta)`` in the
graph (for a trainable theta; zero-order hold by :func:`expm_taylor`, or Euler), and
``impulse_response_static`` / ``_dynamic`` the impulse response ``H[k] = A^k B`` that
the memory forms convolve with. ``projected_impulse_response`` folds a product
``m_t @ W`` into it (``g[d, k] = H[k] @ W_d``).
"""

from __future__ import annotations

import math

from keras import ops

from lmuformer_keras import backend_utils


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


def projected_impulse_response(h, kernel, memory_d: int):
    """``g[d, k] = H[k] @ W_d``, ``(memory_d, T, units)``.

    For memories ``m_t`` flattened to ``(memory_d * order,)`` and ``W`` of shape
    ``(memory_d * order, units)`` in ``memory_d`` row blocks ``W_d``, linearity
    gives ``m_t @ W = sum_d sum_{k<=t} u[k, d] g[d, t - k]``: the projection is a
    causal convolution of ``u`` itself (:meth:`LMUParallel.projected_memory`).
    """
    order = h.shape[-1]
    units = kernel.shape[-1]
    if memory_d == 1:
        return backend_utils.matmul(h, kernel)[None]
    blocks = ops.reshape(kernel, (memory_d, order, units))
    return ops.matmul(h[None], blocks)
