"""Spiking activation with surrogate gradients (keras.ops only).

The forward pass of :func:`spike` is the Heaviside step ``H(x) = 1 if x >= 0 else 0``
(so ``H(0) = 1``). Its true derivative is zero almost everywhere, so the backward pass
uses a smooth *surrogate* derivative ``g'(x)`` instead:

- ``"ste"``: straight-through, ``g'(x) = 1 if |x| <= clip_value else 0``;
- ``"sigmoid"``: ``g'(x) = alpha * s * (1 - s)`` with ``s = sigmoid(alpha * x)``;
- ``"atan"``: ``g'(x) = (alpha / 2) / (1 + (pi / 2 * alpha * x) ** 2)``.

It is implemented with the stop-gradient identity

    spike(x) = H(x) + (g(x) - stop_gradient(g(x)))

where ``H(x)`` carries no gradient and ``g`` is a primitive of the surrogate
derivative. ``g(x) - stop_gradient(g(x))`` is exactly ``0.0`` in the forward pass (for
finite ``x``), so the forward value is exactly the step, and the gradient is exactly
``g'(x)``, on every backend, in eager mode, under ``jit`` and inside ``fit``.
"""

from __future__ import annotations

import math

from keras import ops

#: Names of the surrogate gradients :func:`spike` accepts.
SURROGATES: tuple[str, ...] = ("ste", "sigmoid", "atan")


def validate_spike_args(
    surrogate: str, alpha: float, clip_value: float, owner: str = "spike"
) -> tuple[str, float, float]:
    """Checks the arguments of :func:`spike`.

    Args:
        surrogate: One of :data:`SURROGATES`.
        alpha: Sharpness of the ``"sigmoid"`` and ``"atan"`` surrogates, ``> 0``.
        clip_value: Half-width of the ``"ste"`` window, ``> 0``.
        owner: Name used as the prefix of error messages (e.g. a layer name).

    Returns:
        ``(surrogate, float(alpha), float(clip_value))``.

    Raises:
        ValueError: Unknown ``surrogate``, ``alpha <= 0`` or ``clip_value <= 0``.
    """
    if not isinstance(surrogate, str) or surrogate not in SURROGATES:
        raise ValueError(
            f"{owner}: surrogate must be one of {list(SURROGATES)}, "
            f"got surrogate={surrogate!r}"
        )
    if not _is_positive(alpha):
        raise ValueError(f"{owner}: alpha must be > 0, got alpha={alpha!r}")
    if not _is_positive(clip_value):
        raise ValueError(
            f"{owner}: clip_value must be > 0, got clip_value={clip_value!r}"
        )
    return surrogate, float(alpha), float(clip_value)


def _is_positive(value) -> bool:
    try:
        return bool(float(value) > 0.0) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def heaviside(x):
    """Heaviside step without gradient: ``1.0`` where ``x >= 0`` else ``0.0``."""
    return _heaviside(ops.convert_to_tensor(x))


def _heaviside(x):
    # ``x >= 0`` is the backend's own comparison (cheaper than a keras.ops call in
    # the per-step loop); a boolean carries no gradient on any backend.
    return ops.stop_gradient(ops.cast(x >= 0.0, x.dtype))


def surrogate_primitive(x, surrogate: str = "sigmoid", alpha=4.0, clip_value=1.0):
    """A function ``g`` whose derivative is the surrogate gradient of :func:`spike`.

    - ``"ste"``: ``g(x) = x`` where ``|x| <= clip_value`` else ``0`` (the window mask
      carries no gradient, so ``g'(x)`` is exactly the indicator, boundary included);
    - ``"sigmoid"``: ``g(x) = sigmoid(alpha * x)``;
    - ``"atan"``: ``g(x) = arctan(pi / 2 * alpha * x) / pi``.
    """
    if surrogate == "sigmoid":
        return ops.sigmoid(x * alpha)
    if surrogate == "atan":
        return ops.arctan(x * (0.5 * math.pi * alpha)) * (1.0 / math.pi)
    if surrogate == "ste":
        inside = ops.stop_gradient(ops.less_equal(ops.abs(x), clip_value))
        return ops.where(inside, x, ops.zeros_like(x))
    validate_spike_args(surrogate, alpha, clip_value)
    raise AssertionError("unreachable")


def surrogate_grad(x, surrogate: str = "sigmoid", alpha=4.0, clip_value=1.0):
    """The surrogate derivative ``g'(x)`` itself (used for checks and docs)."""
    x = ops.convert_to_tensor(x)
    if surrogate == "sigmoid":
        # alpha * s * (1 - s), with 1 - s = sigmoid(-alpha x) (no cancellation).
        return alpha * ops.sigmoid(x * alpha) * ops.sigmoid(x * -alpha)
    if surrogate == "atan":
        z = x * (0.5 * math.pi * alpha)
        return (0.5 * alpha) / (1.0 + z * z)
    if surrogate == "ste":
        return ops.cast(ops.less_equal(ops.abs(x), clip_value), x.dtype)
    validate_spike_args(surrogate, alpha, clip_value)
    raise AssertionError("unreachable")


def spike(x, surrogate: str = "sigmoid", alpha: float = 4.0, clip_value: float = 1.0):
    """Heaviside spike with a surrogate gradient.

    Forward: ``S = 1.0 if x >= 0 else 0.0`` (exactly). Backward: ``dS/dx = g'(x)``, the
    surrogate chosen by ``surrogate`` (see the module docstring).

    Args:
        x: Input tensor (floating point).
        surrogate: ``"sigmoid"`` (default, as in LMUFormer), ``"atan"`` or ``"ste"``.
        alpha: Sharpness of the ``"sigmoid"`` / ``"atan"`` surrogates (``> 0``).
        clip_value: Half-width of the ``"ste"`` window (``> 0``).

    Returns:
        A tensor of ``0.0`` / ``1.0`` with the shape and dtype of ``x``.

    Raises:
        ValueError: Unknown ``surrogate``, ``alpha <= 0`` or ``clip_value <= 0``.
    """
    surrogate, alpha, clip_value = validate_spike_args(surrogate, alpha, clip_value)
    return _spike(ops.convert_to_tensor(x), surrogate, alpha, clip_value)


def _spike(x, surrogate: str, alpha: float, clip_value: float):
    """:func:`spike` without argument checks (arguments already validated)."""
    g = surrogate_primitive(x, surrogate, alpha, clip_value)
    return _heaviside(x) + (g - ops.stop_gradient(g))
