"""16 kHz mono 16-bit WAV reading and writing (stdlib ``wave``), with clear errors."""

from __future__ import annotations

import os
import wave

import numpy as np


class WavFormatError(ValueError):
    """A WAV file that cannot be used; the message names the file."""


def read_wav_int16(path: str | os.PathLike, expected_rate: int = 16000) -> np.ndarray:
    """Reads a mono 16-bit PCM WAV at ``expected_rate`` Hz as int16 ``(samples,)``.

    No resampling or channel mixing is done: anything else is refused.

    Raises:
        FileNotFoundError: no such file.
        WavFormatError: a directory, corrupt or empty file, or wrong rate / channels /
            sample width (the message names the file and what it found).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise WavFormatError(f"WAV path {path!r} is a directory, not a WAV file")
    try:
        with wave.open(path, "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            num = w.getnframes()
            data = w.readframes(num)
    except (wave.Error, EOFError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise WavFormatError(f"Corrupt or unreadable WAV file {path!r}: {e}") from e
    if rate != expected_rate or channels != 1 or width != 2:
        raise WavFormatError(
            f"WAV file {path!r} is {rate} Hz, {channels} channel(s), "
            f"{8 * width}-bit; expected {expected_rate} Hz mono 16-bit (not resampled)"
        )
    if num == 0 or len(data) == 0:
        raise WavFormatError(f"Empty WAV file {path!r} (0 samples)")
    if len(data) != 2 * num:
        raise WavFormatError(
            f"Truncated WAV file {path!r}: header says {num} samples, found "
            f"{len(data) // 2}"
        )
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def write_wav_int16(
    path: str | os.PathLike, samples: np.ndarray, sample_rate: int = 16000
) -> None:
    """Writes int16 mono samples as a 16-bit PCM WAV."""
    x = np.asarray(samples)
    if x.dtype != np.int16 or x.ndim != 1:
        raise ValueError(
            f"write_wav_int16: samples must be 1-D int16, got {x.dtype} {x.shape}"
        )
    with wave.open(os.fspath(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(x.astype("<i2").tobytes())
