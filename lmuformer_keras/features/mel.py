"""Mel scale and triangular mel filterbank (Kaldi / HTK definition).

The mel scale is ``mel(f) = 1127 * ln(1 + f / 700)`` (Kaldi's ``MelScale``, HTK's and
``tf.signal.linear_to_mel_weight_matrix``'s). ``num_mel_bins + 2`` edges are spaced
evenly in mel between ``mel(low_hz)`` and ``mel(high_hz)``; filter ``m`` has left,
centre and right edges ``e[m], e[m + 1], e[m + 2]``. FFT bin ``k``
(``0 <= k <= fft_size / 2``) sits at ``f_k = k * sample_rate / fft_size`` and gets
the weight

    w[k, m] = max(0, min((mel(f_k) - e[m]) / (e[m+1] - e[m]),
                         (e[m+2] - mel(f_k)) / (e[m+2] - e[m+1])))

that is, triangles that are linear in mel, peak 1, not area-normalised. This is exactly
what a C or Java app rebuilds from the frontend params (``fft_size``, ``sample_rate``,
``num_mel_bins``, ``mel_low_hz``, ``mel_high_hz``).
"""

from __future__ import annotations

import numpy as np

MEL_BREAK_HZ = 700.0
MEL_HIGH_Q = 1127.0


def hz_to_mel(freq_hz: np.ndarray | float) -> np.ndarray:
    """``mel(f) = 1127 * ln(1 + f / 700)``."""
    return MEL_HIGH_Q * np.log1p(np.asarray(freq_hz, dtype=np.float64) / MEL_BREAK_HZ)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`: ``f = 700 * (exp(mel / 1127) - 1)``."""
    return MEL_BREAK_HZ * np.expm1(np.asarray(mel, dtype=np.float64) / MEL_HIGH_Q)


def mel_filterbank(
    num_mel_bins: int,
    fft_size: int,
    sample_rate: int,
    low_hz: float,
    high_hz: float,
) -> np.ndarray:
    """Triangular mel weights, shape ``(fft_size // 2 + 1, num_mel_bins)``, float64.

    Args:
        num_mel_bins: number of triangular filters.
        fft_size: FFT length (power spectrum has ``fft_size // 2 + 1`` bins).
        sample_rate: sampling rate in Hz.
        low_hz: left edge of the first filter.
        high_hz: right edge of the last filter (``<= sample_rate / 2``).

    Raises:
        ValueError: on a non-positive size or an edge outside ``[0, sample_rate / 2]``.
    """
    if num_mel_bins < 1:
        raise ValueError(
            f"mel_filterbank: num_mel_bins must be >= 1, got {num_mel_bins}"
        )
    if fft_size < 2:
        raise ValueError(f"mel_filterbank: fft_size must be >= 2, got {fft_size}")
    nyquist = sample_rate / 2.0
    if not 0.0 <= low_hz < high_hz <= nyquist:
        raise ValueError(
            "mel_filterbank: need 0 <= low_hz < high_hz <= sample_rate / 2, got "
            f"low_hz={low_hz}, high_hz={high_hz}, sample_rate={sample_rate}"
        )
    edges = np.linspace(hz_to_mel(low_hz), hz_to_mel(high_hz), num_mel_bins + 2)
    bin_mel = hz_to_mel(np.arange(fft_size // 2 + 1) * (sample_rate / fft_size))
    left = edges[None, :-2]
    centre = edges[None, 1:-1]
    right = edges[None, 2:]
    up = (bin_mel[:, None] - left) / (centre - left)
    down = (right - bin_mel[:, None]) / (right - centre)
    return np.maximum(0.0, np.minimum(up, down))
