"""What every text-to-speech engine shares: :class:`Utterance` and :class:`Engine`.

An engine turns utterances into float64 mono speech at 16 kHz (:func:`to_16k`
resamples from its own rate; silence is not trimmed). Standard library, NumPy and
SciPy only, as a package module or as a sibling of ``kws_render.py`` run as a script.
"""

from __future__ import annotations

import math
import os
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

SAMPLE_RATE = 16000


class EngineUnavailableError(RuntimeError):
    """A text-to-speech engine that is not installed (names how to install it)."""


@dataclass(frozen=True)
class Utterance:
    """What to say and how.

    Attributes:
        text: the words.
        voice: one of the engine's voices.
        tempo: speaking-rate factor (> 1 faster), the engine's own rate control.
        pitch: mean-F0 shift in semitones where the engine has one.
        seed: seeds the engine's random sources where it has any.
        options: engine-specific ``(name, value)`` pairs (module docstring).
    """

    text: str
    voice: str
    tempo: float = 1.0
    pitch: float = 0.0
    seed: int = 0
    options: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if not str(self.text).strip():
            raise ValueError(f"Utterance.text must not be empty, got {self.text!r}")
        if not 0.5 <= self.tempo <= 2.0:
            raise ValueError(f"Utterance.tempo must be in [0.5, 2], got {self.tempo}")
        if not (math.isfinite(self.pitch) and -12.0 <= self.pitch <= 12.0):
            raise ValueError(
                f"Utterance.pitch must be in [-12, 12] semitones, got {self.pitch}"
            )


def to_16k(x: np.ndarray, rate: int) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if rate == SAMPLE_RATE:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(SAMPLE_RATE, int(rate))
    # the resampling filter can overshoot full-scale peaks slightly
    return np.clip(resample_poly(x, SAMPLE_RATE // g, int(rate) // g), -1.0, 1.0)


def read_wav(path: str) -> tuple[np.ndarray, int]:
    with wave.open(path, "rb") as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        data = w.readframes(w.getnframes())
    if width != 2:
        raise RuntimeError(f"{path}: expected 16-bit PCM, got {8 * width}-bit")
    x = np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    return x, rate


def read_output(
    path: str, program: str, utterance: Utterance, log: str, ok: bool = True
) -> np.ndarray:
    """The speech an engine's program wrote to ``path``, at 16 kHz.

    Raises:
        RuntimeError: the program failed (``ok`` false) or wrote no file; names the
            program, the utterance's text and voice, and the end of its ``log``.
    """
    if not ok or not os.path.isfile(path):
        raise RuntimeError(
            f"{program} failed for {utterance.text!r} with voice {utterance.voice!r}: "
            f"{log[-500:]}"
        )
    x, rate = read_wav(path)
    return to_16k(x, rate)


class Engine:
    """Base class: ``voices``, ``speaker``, ``version``, ``synth``."""

    name: ClassVar[str] = ""
    reproducible: ClassVar[bool] = True
    supports_pitch: ClassVar[bool] = False

    @classmethod
    def available(cls) -> bool:
        raise NotImplementedError

    def voices(self) -> tuple[str, ...]:
        raise NotImplementedError

    def speaker(self, voice: str) -> str:
        return f"{self.name}:{voice}"

    def version(self) -> str:
        return ""

    def check_voice(self, voice: str) -> None:
        if voice not in self.voices():
            raise ValueError(
                f"{self.name}: unknown voice {voice!r}; voices: {list(self.voices())}"
            )

    def synth(self, utterances: Sequence[Utterance]) -> list[np.ndarray]:
        """Speech per utterance: float64 mono at 16 kHz, silence not trimmed."""
        for u in utterances:
            self.check_voice(u.voice)
        out = self._synth(list(utterances))
        for u, x in zip(utterances, out, strict=True):
            if x.size == 0 or not np.any(x):
                raise RuntimeError(
                    f"{self.name}: no audio for {u.text!r} with voice {u.voice!r}"
                )
        return out

    def _synth(self, utterances: list[Utterance]) -> list[np.ndarray]:
        raise NotImplementedError
