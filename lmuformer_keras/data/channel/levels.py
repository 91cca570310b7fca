"""Levels and mixing: peak / RMS levels, mixing at an SNR and babble noise."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._common import SAMPLE_RATE


def peak_normalize(x: np.ndarray, dbfs: float) -> np.ndarray:
    """``x * 10^(dbfs / 20) / max|x|`` (peak at ``dbfs``); silence is returned as is."""
    x = np.asarray(x, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return x.copy()
    return x * (10.0 ** (dbfs / 20.0) / peak)


def rms_dbfs(x: np.ndarray) -> float:
    """``20 log10(sqrt(mean(x^2)))`` relative to full scale 1 (``-inf`` if silent)."""
    x = np.asarray(x, dtype=np.float64)
    power = float(np.mean(x**2)) if x.size else 0.0
    return 10.0 * math.log10(power) if power > 0.0 else -math.inf


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech + g noise`` with ``10 log10(P_speech / P_{g noise}) = snr_db``.

    ``P`` is the mean square over the whole arrays; ``noise`` is tiled or cropped to
    ``len(speech)`` first; ``g = sqrt(P_speech / (P_noise 10^(snr_db / 10)))``.

    Raises:
        ValueError: if ``noise`` is empty or silent.
    """
    speech = np.asarray(speech, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if noise.size == 0:
        raise ValueError("mix_at_snr: noise is empty")
    noise = np.resize(noise, speech.size)
    p_noise = float(np.mean(noise**2)) if noise.size else 0.0
    if speech.size and p_noise == 0.0:
        raise ValueError("mix_at_snr: noise is silent")
    if speech.size == 0:
        return speech.copy()
    gain = math.sqrt(float(np.mean(speech**2)) / (p_noise * 10.0 ** (snr_db / 10.0)))
    return speech + gain * noise


def babble(
    utterances: Sequence[np.ndarray],
    num_talkers: int,
    num_samples: int,
    rng: np.random.Generator,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Babble: ``num_talkers`` overlapping talkers, RMS 0.1.

    Each talker is a concatenation of the utterances in random orders (reshuffled
    after each pass) with gaps ``U(0, 0.2)`` s, starting at a random point of it,
    scaled to RMS 1; the sum is scaled to RMS 0.1:
    ``b = 0.1 s / rms(s)``, ``s = sum_t x_t / rms(x_t)``.

    Raises:
        ValueError: if ``utterances`` is empty (or all empty) or ``num_talkers < 1``.
    """
    pool = [np.asarray(u, dtype=np.float64).ravel() for u in utterances]
    pool = [u for u in pool if u.size]
    if not pool:
        raise ValueError("babble: utterances is empty")
    if num_talkers < 1:
        raise ValueError(f"babble: num_talkers must be >= 1, got {num_talkers}")
    longest = max(u.size for u in pool)
    max_gap = int(0.2 * sample_rate)
    total = np.zeros(num_samples)
    for _ in range(num_talkers):
        parts: list[np.ndarray] = []
        length = 0
        while length < num_samples + longest:
            for i in rng.permutation(len(pool)):
                gap = int(rng.integers(0, max_gap + 1))
                parts += [np.zeros(gap), pool[i]]
                length += gap + pool[i].size
        stream = np.concatenate(parts)
        start = int(rng.integers(0, stream.size - num_samples + 1))
        talker = stream[start : start + num_samples]
        power = float(np.mean(talker**2)) if num_samples else 0.0
        if power > 0.0:
            total += talker / math.sqrt(power)
    power = float(np.mean(total**2)) if num_samples else 0.0
    return total * (0.1 / math.sqrt(power)) if power > 0.0 else total
