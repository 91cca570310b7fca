"""Noise: :func:`make_noise` (white, pink, brown, 50 / 60 Hz hum)."""

from __future__ import annotations

import numpy as np

from ._common import SAMPLE_RATE

NOISE_TYPES: tuple[str, ...] = ("white", "pink", "brown", "hum50", "hum60")


def make_noise(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Noise of ``kind`` (white, pink, brown, hum50, hum60), float64, RMS 0.1.

    Pink / brown: white noise shaped by ``1/sqrt(f)`` / ``1/f`` in the FFT domain.
    Hum: 8 harmonics of 50 or 60 Hz with random amplitudes (``U(0.2, 1) / h``) and
    phases, plus a little white noise.
    """
    n = int(seconds * SAMPLE_RATE)
    if kind in ("white", "pink", "brown"):
        white = rng.standard_normal(n)
        if kind == "white":
            x = white
        else:
            spec = np.fft.rfft(white)
            f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
            f[0] = f[1]
            spec /= np.sqrt(f) if kind == "pink" else f
            spec[0] = 0.0
            x = np.fft.irfft(spec, n)
    elif kind in ("hum50", "hum60"):
        f0 = 50.0 if kind == "hum50" else 60.0
        t = np.arange(n) / SAMPLE_RATE
        x = np.zeros(n)
        for h in range(1, 9):
            amp = rng.uniform(0.2, 1.0) / h
            x += amp * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi))
        x += 0.05 * rng.standard_normal(n)
    else:
        raise ValueError(f"make_noise: kind must be one of {NOISE_TYPES}, got {kind!r}")
    return 0.1 * x / np.sqrt(np.mean(x**2))
