"""Devices: :func:`band_limit` (telephone, narrowband) and random microphones."""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Any

import numpy as np

from ._common import SAMPLE_RATE, _signal

BAND_KINDS: tuple[str, ...] = ("wideband", "telephone", "narrowband_8k", "mic")


@functools.lru_cache(maxsize=8)
def _telephone_sos(sample_rate: int) -> np.ndarray:
    """4th-order Butterworth band-pass 300-3400 Hz (second-order sections)."""
    return _signal().butter(
        4, [300.0, 3400.0], "bandpass", fs=sample_rate, output="sos"
    )


@functools.lru_cache(maxsize=8)
def _narrowband_filter(up: int, down: int, sample_rate: int) -> np.ndarray:
    """Low-pass at the intermediate rate ``sample_rate * up``: 3.8 kHz cut-off,
    3.6-4.0 kHz transition, 60 dB stop band (Kaiser design), unit DC gain."""
    sig = _signal()
    rate = sample_rate * up
    width = 400.0 / (rate / 2.0)
    taps, beta = sig.kaiserord(60.0, width)
    taps |= 1
    return sig.firwin(taps, 3800.0, window=("kaiser", beta), fs=rate)


def _narrowband(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Down to 8 kHz and back (nothing above ~4 kHz survives)."""
    if sample_rate <= 8000:
        return x.copy()
    ratio = Fraction(8000, sample_rate)
    up, down = ratio.numerator, ratio.denominator
    h = _narrowband_filter(up, down, sample_rate)
    sig = _signal()
    low = sig.resample_poly(x, up, down, window=h)
    y = sig.resample_poly(low, down, up, window=h)
    y = y[: x.size]
    return np.pad(y, (0, x.size - y.size)) if y.size < x.size else y


def _biquad_peak(f0: float, gain_db: float, q: float, fs: int) -> np.ndarray:
    """RBJ peaking EQ: ``A = 10^(g/40)``, ``w0 = 2 pi f0 / fs``,
    ``alpha = sin(w0) / (2 Q)``; ``b = [1 + alpha A, -2 cos w0, 1 - alpha A]``,
    ``a = [1 + alpha / A, -2 cos w0, 1 - alpha / A]`` (one SOS row)."""
    amp = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * f0 / fs
    alpha = math.sin(w0) / (2.0 * q)
    cw = math.cos(w0)
    b = [1 + alpha * amp, -2 * cw, 1 - alpha * amp]
    a = [1 + alpha / amp, -2 * cw, 1 - alpha / amp]
    return np.array([[*(v / a[0] for v in b), *(v / a[0] for v in a)]])


def _biquad_high_shelf(f0: float, gain_db: float, fs: int) -> np.ndarray:
    """RBJ high shelf (slope 1): ``+gain_db`` above ``f0``, 0 dB below."""
    amp = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * f0 / fs
    cw = math.cos(w0)
    alpha = math.sin(w0) / 2.0 * math.sqrt(2.0)
    sq = 2.0 * math.sqrt(amp) * alpha
    b = [
        amp * ((amp + 1) + (amp - 1) * cw + sq),
        -2 * amp * ((amp - 1) + (amp + 1) * cw),
        amp * ((amp + 1) + (amp - 1) * cw - sq),
    ]
    a = [
        (amp + 1) - (amp - 1) * cw + sq,
        2 * ((amp - 1) - (amp + 1) * cw),
        (amp + 1) - (amp - 1) * cw - sq,
    ]
    return np.array([[*(v / a[0] for v in b), *(v / a[0] for v in a)]])


def draw_mic(rng: np.random.Generator) -> dict[str, Any]:
    """A random microphone / device response (JSON-friendly parameters).

    High-pass at ``log-U(40, 200)`` Hz, low-pass at ``U(3500, 7500)`` Hz and either a
    peaking EQ (``log-U(300, 5000)`` Hz, ``Q ~ U(0.7, 2)``) or a tilt (high shelf at
    ``log-U(800, 3000)`` Hz), gain ``U(-6, 6)`` dB.
    """
    highpass = math.exp(rng.uniform(math.log(40.0), math.log(200.0)))
    lowpass = rng.uniform(3500.0, 7500.0)
    eq = "peak" if rng.uniform() < 0.5 else "tilt"
    if eq == "peak":
        eq_hz = math.exp(rng.uniform(math.log(300.0), math.log(5000.0)))
        eq_q = rng.uniform(0.7, 2.0)
    else:
        eq_hz = math.exp(rng.uniform(math.log(800.0), math.log(3000.0)))
        eq_q = None
    gain = rng.uniform(-6.0, 6.0)
    return {
        "highpass_hz": round(highpass, 1),
        "lowpass_hz": round(float(lowpass), 1),
        "eq": eq,
        "eq_hz": round(eq_hz, 1),
        "eq_gain_db": round(float(gain), 2),
        "eq_q": None if eq_q is None else round(float(eq_q), 3),
    }


def apply_mic(
    x: np.ndarray, mic: dict[str, Any], sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """The response of :func:`draw_mic`'s parameters (causal ``sosfilt``).

    2nd-order Butterworth high-pass (12 dB / octave), 4th-order Butterworth low-pass
    (the low-pass is skipped at or above Nyquist) and the EQ biquad, in cascade.
    """
    sig = _signal()
    x = np.asarray(x, dtype=np.float64)
    sections = [
        sig.butter(2, mic["highpass_hz"], "highpass", fs=sample_rate, output="sos")
    ]
    if mic["lowpass_hz"] < 0.49 * sample_rate:
        sections.append(
            sig.butter(4, mic["lowpass_hz"], "lowpass", fs=sample_rate, output="sos")
        )
    if mic["eq_hz"] < 0.49 * sample_rate:
        if mic["eq"] == "peak":
            sections.append(
                _biquad_peak(mic["eq_hz"], mic["eq_gain_db"], mic["eq_q"], sample_rate)
            )
        else:
            sections.append(
                _biquad_high_shelf(mic["eq_hz"], mic["eq_gain_db"], sample_rate)
            )
    return sig.sosfilt(np.concatenate(sections), x)


def band_limit(
    x: np.ndarray,
    kind: str,
    sample_rate: int = SAMPLE_RATE,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """A device / transmission band.

    * ``"wideband"``: unchanged (a copy);
    * ``"telephone"``: 4th-order Butterworth band-pass 300-3400 Hz, zero phase
      (``sosfiltfilt``, so the magnitude response is ``|H(f)|^2``);
    * ``"narrowband_8k"``: resampled to 8 kHz and back (anti-aliasing low-pass with
      its stop band from 4 kHz), so nothing above 4 kHz remains;
    * ``"mic"``: a random microphone, :func:`apply_mic` of :func:`draw_mic` ``(rng)``
      (``rng`` required).

    Raises:
        ValueError: for another ``kind``, or ``"mic"`` without ``rng``.
    """
    x = np.asarray(x, dtype=np.float64)
    if kind == "wideband":
        return x.copy()
    if kind == "telephone":
        if x.size == 0:
            return x.copy()
        sig = _signal()
        sos = _telephone_sos(sample_rate)
        pad = min(3 * (2 * sos.shape[0] + 1), x.size - 1)
        return sig.sosfiltfilt(sos, x, padlen=max(pad, 0))
    if kind == "narrowband_8k":
        return _narrowband(x, sample_rate)
    if kind == "mic":
        if rng is None:
            raise ValueError("band_limit: kind='mic' needs rng (a numpy Generator)")
        return apply_mic(x, draw_mic(rng), sample_rate)
    raise ValueError(f"band_limit: kind must be one of {BAND_KINDS}, got {kind!r}")
