"""The Legendre delay system of the LMU and its discretization (NumPy).

The Legendre Memory Unit keeps ``order`` Legendre coefficients ``m`` of the last
``theta`` steps of a scalar signal ``u``. Its continuous-time system is

    theta * dm/dt = A0 m + B0 u,
    A0[i, j] = (2i + 1) * (-1 if i < j else (-1) ** (i - j + 1)),
    B0[i] = (2i + 1) * (-1) ** i,

so the continuous matrices are ``A_c = A0 / theta`` and ``B_c = B0 / theta``. With a
time step dt = 1 the discrete update is ``m_t = A @ m_{t-1} + B * u_t``, where

- zero-order hold: ``A = expm(A_c)``, ``B = A_c^-1 (expm(A_c) - I) B_c``;
- Euler: ``A = I + A_c``, ``B = B_c``.

Everything here is NumPy float64: the layers cast the results to their dtype.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

DISCRETIZERS = ("zoh", "euler")


def validate_lmu_args(order: object, theta: object, discretizer: object) -> None:
    """Raises ``ValueError`` naming the first bad LMU argument and its value."""
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be an integer >= 1, got order={order!r}")
    if (
        isinstance(theta, bool)
        or not isinstance(theta, (int, float, np.integer, np.floating))
        or not np.isfinite(theta)
        or theta <= 0
    ):
        raise ValueError(f"theta must be a finite number > 0, got theta={theta!r}")
    if discretizer not in DISCRETIZERS:
        raise ValueError(
            f"discretizer must be one of {DISCRETIZERS}, "
            f"got discretizer={discretizer!r}"
        )


def legendre_delay_system(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(A0, B0)``: the continuous Legendre system times ``theta``.

    Args:
        order: Number of Legendre coefficients ``d``.

    Returns:
        ``A0`` of shape ``(order, order)`` and ``B0`` of shape ``(order,)`` such that
        ``A_c = A0 / theta`` and ``B_c = B0 / theta``.
    """
    validate_lmu_args(order, 1.0, "zoh")
    i = np.arange(order, dtype=np.float64)[:, None]
    j = np.arange(order, dtype=np.float64)[None, :]
    sign = np.where(i < j, -1.0, (-1.0) ** (i - j + 1))
    a0 = (2.0 * i + 1.0) * sign
    b0 = (2.0 * np.arange(order, dtype=np.float64) + 1.0) * (-1.0) ** np.arange(order)
    return a0, b0


def lmu_matrices(
    order: int, theta: float, discretizer: str = "zoh"
) -> tuple[np.ndarray, np.ndarray]:
    """Discrete LMU matrices for ``m_t = A @ m_{t-1} + B * u_t`` (dt = 1).

    Args:
        order: Number of Legendre coefficients ``d`` (>= 1).
        theta: Length of the sliding window, in steps (> 0).
        discretizer: ``"zoh"`` (zero-order hold, exact for piecewise-constant
            input) or ``"euler"`` (``A = I + A_c``, ``B = B_c``).

    Returns:
        ``(A, B)``: float64 arrays of shapes ``(order, order)`` and ``(order,)``.

    Raises:
        ValueError: If ``order < 1``, ``theta <= 0`` or the discretizer is unknown.
    """
    validate_lmu_args(order, theta, discretizer)
    a0, b0 = legendre_delay_system(order)
    a_c = a0 / float(theta)
    b_c = b0 / float(theta)
    if discretizer == "euler":
        return np.eye(order) + a_c, b_c
    # Zero-order hold through one block exponential, which avoids inverting A_c:
    # expm([[A_c, B_c], [0, 0]]) = [[A, B], [0, 1]].
    block = np.zeros((order + 1, order + 1))
    block[:order, :order] = a_c
    block[:order, order] = b_c
    e = scipy.linalg.expm(block)
    return e[:order, :order], e[:order, order]


def impulse_response(a: np.ndarray, b: np.ndarray, length: int) -> np.ndarray:
    """Impulse response ``H[k] = A^k B`` for ``k = 0 .. length - 1`` (NumPy).

    The memory is the causal convolution ``m_t = sum_{k <= t} H[t - k] u_k``.

    Args:
        a: ``(order, order)`` discrete state matrix.
        b: ``(order,)`` discrete input vector.
        length: Number of steps.

    Returns:
        ``(length, order)`` float64 array.
    """
    order = b.shape[0]
    h = np.empty((length, order), dtype=np.float64)
    if length == 0:
        return h
    h[0] = b
    # Doubling: H[n:2n] = H[0:n] @ (A^n)^T, so log2(length) matrix products.
    n = 1
    a_pow = np.asarray(a, dtype=np.float64)
    while n < length:
        m = min(n, length - n)
        h[n : n + m] = h[:m] @ a_pow.T
        n += m
        if n < length:
            a_pow = a_pow @ a_pow
    return h
