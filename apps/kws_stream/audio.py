"""WAV input for the streaming apps: any integer-PCM WAV -> 16 kHz mono int16.

Unlike ``lmuformer_keras.data.read_wav_int16`` (which refuses anything but 16 kHz mono
16-bit, for datasets), an app takes what it is given and says what it did:

- 8 (unsigned), 16, 24 or 32-bit integer PCM;
- several channels are mixed down to mono (their mean);
- another sample rate is resampled with ``scipy.signal.resample_poly`` (polyphase,
  Kaiser window) to the target rate.

Every change is reported in :attr:`LoadedAudio.notes`. A non-PCM (e.g. float or
compressed), truncated or corrupt file raises :class:`AudioFileError` naming the file.
"""

from __future__ import annotations

import math
import os
import wave
from dataclasses import dataclass, field

import numpy as np

MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000
"""Header sample rates accepted (Hz): others are refused before any resampling (a
1 Hz header would make the resampler's filter, and its output, huge)."""


class AudioFileError(ValueError):
    """A WAV file that cannot be read; the message names the file and the problem."""


@dataclass
class LoadedAudio:
    """Samples ready for the frontend, and what was done to get them."""

    samples: np.ndarray  # int16 mono at sample_rate
    sample_rate: int
    source_rate: int
    source_channels: int
    source_bits: int
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.samples.shape[0] / float(self.sample_rate)


def _decode(data: bytes, width: int, channels: int) -> np.ndarray:
    """PCM bytes -> float64 ``(frames, channels)`` in [-1, 1]."""
    if width == 1:
        x = (np.frombuffer(data, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0
    elif width == 3:
        b = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        x = v.astype(np.float64) / float(1 << 23)
    else:
        x = np.frombuffer(data, dtype="<i4").astype(np.float64) / float(1 << 31)
    return x.reshape(-1, channels)


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float in [-1, 1] -> int16 (rounded, saturated)."""
    return np.clip(np.round(np.asarray(x) * 32768.0), -32768, 32767).astype(np.int16)


def resample(x: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling of a float signal (``scipy.signal.resample_poly``).

    Raises:
        ValueError: a rate outside ``[MIN_SAMPLE_RATE, MAX_SAMPLE_RATE]`` Hz.
    """
    from scipy.signal import resample_poly

    for name, rate in (("source_rate", source_rate), ("target_rate", target_rate)):
        if not MIN_SAMPLE_RATE <= int(rate) <= MAX_SAMPLE_RATE:
            raise ValueError(
                f"resample: {name}={rate} Hz is outside the supported "
                f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz"
            )
    g = math.gcd(int(source_rate), int(target_rate))
    return resample_poly(x, target_rate // g, source_rate // g)


def read_wav(path: str | os.PathLike, target_rate: int = 16000) -> LoadedAudio:
    """Reads an integer-PCM WAV as int16 mono at ``target_rate`` (see module doc).

    Raises:
        FileNotFoundError: no such file.
        AudioFileError: a directory, not a PCM WAV, unsupported sample width, a sample
            rate outside ``MIN_SAMPLE_RATE..MAX_SAMPLE_RATE`` Hz, corrupt or
            truncated.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise AudioFileError(f"{path!r} is a directory, not a WAV file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such WAV file: {path!r}")
    try:
        with wave.open(path, "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            num = w.getnframes()
            data = w.readframes(num)
    except wave.Error as error:
        text = str(error)
        if "unknown format" in text:
            raise AudioFileError(
                f"{path}: not an integer-PCM WAV ({text}; e.g. 3 = IEEE float, "
                "65534 = WAVE_FORMAT_EXTENSIBLE); convert it, e.g. "
                "`sox in.wav -b 16 -e signed-integer out.wav`"
            ) from error
        raise AudioFileError(f"{path}: corrupt or not a WAV file ({text})") from error
    except (EOFError, OSError, ValueError) as error:
        raise AudioFileError(f"{path}: corrupt or truncated WAV ({error})") from error
    if width not in (1, 2, 3, 4):
        raise AudioFileError(f"{path}: unsupported sample width {8 * width} bits")
    if channels < 1:
        raise AudioFileError(f"{path}: invalid header ({channels} channels, {rate} Hz)")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioFileError(
            f"{path}: header sample rate {rate} Hz is outside the supported "
            f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz (corrupt header?)"
        )
    frame_bytes = width * channels
    if len(data) != num * frame_bytes:
        raise AudioFileError(
            f"{path}: truncated WAV: header says {num} frames, found "
            f"{len(data) // frame_bytes}"
        )
    notes = []
    if num == 0:
        notes.append(f"{path}: empty WAV (0 samples)")
        return LoadedAudio(
            np.zeros(0, np.int16), target_rate, rate, channels, 8 * width, notes
        )
    if width == 2 and channels == 1:
        x = np.frombuffer(data, dtype="<i2").astype(np.int16)
        as_float = None
    else:
        as_float = _decode(data, width, channels)
        if channels > 1:
            as_float = as_float.mean(axis=1)
            notes.append(f"mixed {channels} channels down to mono")
        else:
            as_float = as_float[:, 0]
        if width != 2:
            notes.append(f"converted {8 * width}-bit PCM to 16-bit")
    if rate != target_rate:
        if as_float is None:
            as_float = x.astype(np.float64) / 32768.0
        as_float = resample(as_float, rate, target_rate)
        notes.append(f"resampled {rate} Hz -> {target_rate} Hz (scipy resample_poly)")
    if as_float is not None:
        x = to_int16(as_float)
    return LoadedAudio(x, target_rate, rate, channels, 8 * width, notes)


def write_wav(
    path: str | os.PathLike, samples: np.ndarray, sample_rate: int = 16000
) -> None:
    """Writes int16 ``(n,)`` or ``(n, channels)`` samples as 16-bit PCM."""
    x = np.asarray(samples)
    if x.dtype != np.int16:
        raise ValueError(f"write_wav: samples must be int16, got {x.dtype}")
    channels = 1 if x.ndim == 1 else x.shape[1]
    with wave.open(os.fspath(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(np.ascontiguousarray(x).astype("<i2").tobytes())
