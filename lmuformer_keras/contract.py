"""The deployment contract's arithmetic, shared by the exporter and every app.

NumPy only, importable from every layer. One ``quantize`` / ``dequantize`` pair:

``q = clip(trunc(x / scale + copysign(0.5, x / scale)) + zero_point, dtype range)``

rounds halves away from zero, as TFLite's own QUANTIZE kernel
(``TfLiteRound``/``std::round``) and the C and Java apps do, so the export's agreement
figures are measured on exactly the frames the apps feed.
"""

from __future__ import annotations

import numpy as np


def quantize(x: np.ndarray, scale: float | None, zero_point: int, dtype) -> np.ndarray:
    """Float -> ``dtype`` with ``scale``/``zero_point`` (round half away from zero).

    NaN becomes 0.0 first and values saturate at the dtype's range. A float dtype or
    a ``scale`` of ``None``/0 means no quantization (the value is cast).
    """
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any():
        x = np.where(np.isnan(x), 0.0, x)
    dtype = np.dtype(dtype)
    if not scale or np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    v = x / scale
    q = np.trunc(v + np.copysign(0.5, v)) + zero_point
    info = np.iinfo(dtype)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float | None, zero_point: int) -> np.ndarray:
    """``(q - zero_point) * scale`` as float32 (``scale`` None/0: a plain cast)."""
    q = np.asarray(q)
    if not scale or np.issubdtype(q.dtype, np.floating):
        return q.astype(np.float32)
    return ((q.astype(np.float64) - zero_point) * scale).astype(np.float32)
