"""The one ``quantize`` / ``dequantize`` pair of the deployment contract.

``q = clip(trunc(x / scale + copysign(0.5, x / scale)) + zero_point, dtype range)``

rounds halves away from zero, as TFLite's own QUANTIZE kernel
(``TfLiteRound``/``std::round``) and the C and Java apps do, so the export's agreement
figures are measured on exactly the frames the apps feed.
"""

from __future__ import annotations

import numpy as np


def quantize(x: np.ndarray, scale: float | None, zero_point: int | None, dtype):
    """Float -> ``dtype`` with ``scale``/``zero_point`` (round half away from zero).

    NaN becomes 0.0 first and values saturate at the dtype's range. A float dtype or
    a ``scale`` of ``None``/0 means no quantization (the value is cast).

    Args:
        x: Float values (any shape).
        scale: The tensor's scale, or ``None``/0 for an unquantized tensor.
        zero_point: The tensor's zero point (``None`` means 0).
        dtype: The tensor's dtype (a NumPy dtype or its name, e.g. ``"int8"``).

    Returns:
        ``np.ndarray`` of ``dtype``, the shape of ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any():
        x = np.where(np.isnan(x), 0.0, x)
    dtype = np.dtype(dtype)
    if not scale or np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    v = x / scale
    q = np.trunc(v + np.copysign(0.5, v)) + (zero_point or 0)
    info = np.iinfo(dtype)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float | None, zero_point: int | None):
    """``(q - zero_point) * scale`` as float32 (``scale`` None/0: a plain cast)."""
    q = np.asarray(q)
    if not scale or np.issubdtype(q.dtype, np.floating):
        return q.astype(np.float32)
    return ((q.astype(np.float64) - (zero_point or 0)) * scale).astype(np.float32)
