"""Speaker variety: :func:`speed_perturb` and :func:`vtlp` (with its warp)."""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np

from ._common import SAMPLE_RATE, _signal

_STFT_NPERSEG = 512
_STFT_HOP = 128


@functools.lru_cache(maxsize=512)
def _resample_window(up: int, down: int) -> np.ndarray:
    """``resample_poly``'s default filter, designed once per ``(up, down)``."""
    rate = max(up, down)
    h = _signal().firwin(2 * 10 * rate + 1, 1.0 / rate, window=("kaiser", 5.0))
    h.setflags(write=False)
    return h


def speed_perturb(
    x: np.ndarray, factor: float, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Kaldi-style speed perturbation: the signal played ``factor`` times faster.

    With ``factor ~ p / q`` (``Fraction(factor).limit_denominator(100)``) the signal
    is resampled by ``q / p`` and kept at the same rate:
    ``y[m] = x_c(m * p / q / fs)`` for the band-limited continuous signal ``x_c``,
    so ``len(y) = ceil(len(x) * q / p) ~ len(x) / factor`` and every frequency
    (pitch and formants) is multiplied by ``factor``.

    Args:
        x: the signal.
        factor: speed factor, > 0 (> 1: faster, shorter, higher).
        sample_rate: unused by the maths (the change is relative); kept for a
            uniform signature.

    Returns:
        The perturbed signal (float64, a new array).
    """
    del sample_rate
    if not factor > 0:
        raise ValueError(f"speed_perturb: factor must be > 0, got {factor!r}")
    x = np.asarray(x, dtype=np.float64)
    ratio = Fraction(factor).limit_denominator(100)
    p, q = ratio.numerator, ratio.denominator
    if p == q or x.size == 0:
        return x.copy()
    return _signal().resample_poly(x, q, p, window=_resample_window(q, p))


def vtlp_warp(
    f: np.ndarray, alpha: float, nyquist: float, boundary_hz: float = 4800.0
) -> np.ndarray:
    """The piecewise-linear VTLP frequency warp of Jaitly & Hinton (2013).

    ``f_b = boundary * min(alpha, 1) / alpha``; ``f' = alpha * f`` for ``f <= f_b``,
    else ``f' = N - (N - alpha f_b) / (N - f_b) * (N - f)`` (``N`` the Nyquist
    frequency), which maps ``[f_b, N]`` linearly onto ``[alpha f_b, N]``.
    """
    fb = boundary_hz * min(alpha, 1.0) / alpha
    upper = nyquist - (nyquist - alpha * fb) / (nyquist - fb) * (nyquist - f)
    return np.where(f <= fb, alpha * f, upper)


def _vtlp_unwarp(f: np.ndarray, alpha: float, nyquist: float, boundary_hz: float):
    """Inverse of :func:`vtlp_warp`: the source frequency of each output frequency."""
    fb = boundary_hz * min(alpha, 1.0) / alpha
    lower = f / alpha
    upper = nyquist - (nyquist - f) * (nyquist - fb) / (nyquist - alpha * fb)
    return np.where(f <= alpha * fb, lower, upper)


def _vocoder_phase(
    spec: np.ndarray,
    freqs: np.ndarray,
    pos: np.ndarray,
    alpha: float,
    sample_rate: int,
    boundary_hz: float,
) -> np.ndarray:
    """The phase-vocoder phase ``exp(j psi[k', m])`` of :func:`vtlp` (see there).

    Args:
        spec: the STFT ``X[k, m]``.
        freqs: bin frequencies ``f_k``.
        pos: source position of each output bin, in bins (``w^-1(f_k') / df``).
        alpha, sample_rate, boundary_hz: as in :func:`vtlp`.
    """
    nyquist = sample_rate / 2.0
    num_bins = freqs.size
    phi = np.angle(spec)
    expected = (2 * np.pi * _STFT_HOP / _STFT_NPERSEG) * np.arange(num_bins)
    dev = np.diff(phi, axis=1) - expected[:, None]
    dev = (dev + np.pi) % (2 * np.pi) - np.pi
    inst_hz = freqs[:, None] + dev * (sample_rate / (2 * np.pi * _STFT_HOP))
    src = np.clip(np.rint(pos).astype(np.intp), 0, num_bins - 1)
    out_hz = vtlp_warp(inst_hz[src], alpha, nyquist, boundary_hz)
    steps = (2 * np.pi * _STFT_HOP / sample_rate) * out_hz
    psi = np.concatenate(
        [phi[src, :1], phi[src, :1] + np.cumsum(steps, axis=1)], axis=1
    )
    return np.exp(1j * psi)


def vtlp(
    x: np.ndarray,
    alpha: float,
    sample_rate: int = SAMPLE_RATE,
    boundary_hz: float = 4800.0,
    keep_phase: bool = False,
) -> np.ndarray:
    """Vocal-tract-length perturbation: the spectrum warped by :func:`vtlp_warp`.

    STFT ``X[k, m]`` (512-sample Hann window, hop 128); the output magnitude at bin
    frequency ``f'`` is the input magnitude at ``f = w^-1(f')``, linearly
    interpolated along frequency: ``|Y[k', m]| = |X|(w^-1(f_k'), m)``. Length is
    kept (``istft``, cropped to ``len(x)``).

    Phase: by default a phase vocoder. The instantaneous frequency of source bin
    ``k`` is ``f_i[k, m] = f_k + princarg(phi[k, m] - phi[k, m-1] - 2 pi f_k H / fs)
    fs / (2 pi H)``; output bin ``k'`` (source bin ``s = round(w^-1(f_k') / df)``)
    gets ``psi[k', m] = phi[s, 0] + sum_{j=1..m} 2 pi w(f_i[s, j]) H / fs``, so a
    sinusoid at ``f`` comes out at ``w(f)``; with ``alpha = 1`` this is
    ``phi[k, m]`` (mod 2 pi) and the output equals the input up to rounding.
    ``keep_phase=True`` keeps each bin's original phase instead
    (``Y = |Y| X / |X|``): cheaper, but the frame-to-frame phase advance then still
    says "input frequency", so sinusoids mostly stay where they were (a 1 kHz tone
    with ``alpha = 1.05`` stays at 1 kHz) and lose level; only the envelope moves.

    Args:
        x: the signal.
        alpha: warp factor (> 1 moves the spectrum up: a shorter vocal tract).
        sample_rate: sample rate in Hz.
        boundary_hz: ``boundary`` above; ``boundary * min(alpha, 1)`` must be below
            the Nyquist frequency.
        keep_phase: keep the original phase (see above).

    Returns:
        The warped signal, ``len(x)`` samples (float64, a new array).
    """
    if not alpha > 0:
        raise ValueError(f"vtlp: alpha must be > 0, got {alpha!r}")
    nyquist = sample_rate / 2.0
    if boundary_hz * min(alpha, 1.0) >= nyquist:
        raise ValueError(
            f"vtlp: boundary_hz * min(alpha, 1) = {boundary_hz * min(alpha, 1.0)} "
            f"must be below the Nyquist frequency {nyquist}"
        )
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if n == 0:
        return x.copy()
    sig = _signal()
    xp = np.pad(x, (0, max(_STFT_NPERSEG - n, 0)))
    stft_args = {
        "fs": sample_rate,
        "window": "hann",
        "nperseg": _STFT_NPERSEG,
        "noverlap": _STFT_NPERSEG - _STFT_HOP,
    }
    freqs, _, spec = sig.stft(xp, **stft_args)
    num_bins = freqs.size
    df = sample_rate / _STFT_NPERSEG
    pos = _vtlp_unwarp(freqs, alpha, nyquist, boundary_hz) / df
    i0 = np.clip(np.floor(pos).astype(np.intp), 0, num_bins - 2)
    frac = (pos - i0)[:, None]
    mag = np.abs(spec)
    warped = mag[i0] * (1.0 - frac) + mag[i0 + 1] * frac
    if keep_phase:
        phase = np.where(mag > 0, spec / np.where(mag > 0, mag, 1.0), 1.0)
    else:
        phase = _vocoder_phase(spec, freqs, pos, alpha, sample_rate, boundary_hz)
    _, y = sig.istft(warped * phase, **stft_args)
    y = y[:n]
    if y.size < n:
        y = np.pad(y, (0, n - y.size))
    return np.ascontiguousarray(y, dtype=np.float64)
