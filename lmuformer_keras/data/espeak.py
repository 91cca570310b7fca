"""Minimal ctypes binding of libespeak-ng (from the ``espeakng-loader`` wheel).

espeak-ng keeps global state, so there is one synthesiser per process
(:func:`get_espeak`); use one process per worker for parallel synthesis.
"""

from __future__ import annotations

import ctypes
import os
import threading

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
PARAM_RATE = 1
PARAM_VOLUME = 2
PARAM_PITCH = 3
PARAM_RANGE = 4
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class Espeak:
    """Synchronous espeak-ng: ``synth(text, voice, rate, pitch, pitch_range)``."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as e:  # pragma: no cover - dependency missing
            raise ImportError(
                "synthetic_kws needs the 'espeakng-loader' package (pip install "
                "espeakng-loader)"
            ) from e
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed (returned {rate})")
        self.sample_rate = int(rate)
        self.version = lib.espeak_Info(None).decode()
        self._lib = lib
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference
        lib.espeak_SetSynthCallback(self._callback)
        self._voice: str | None = None
        self._libc = ctypes.CDLL(None)
        self.data_path = data_path.decode()

    def _on_audio(self, wav, num, events) -> int:
        if num > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num,)).copy())
        return 0

    def set_voice(self, voice: str) -> None:
        """Selects e.g. ``"en-us+f3"``; ``ValueError`` naming an unknown voice."""
        if voice == self._voice:
            return
        if "+" in voice:
            variant = voice.split("+", 1)[1]
            if not os.path.isfile(
                os.path.join(self.data_path, "voices", "!v", variant)
            ):
                raise ValueError(
                    f"espeak-ng: unknown voice {voice!r} (no variant {variant!r} in "
                    f"{os.path.join(self.data_path, 'voices', '!v')})"
                )
        rc = self._lib.espeak_SetVoiceByName(voice.encode())
        if rc != 0:
            raise ValueError(f"espeak-ng: unknown voice {voice!r} (error code {rc})")
        self._voice = voice

    def synth(
        self,
        text: str,
        voice: str,
        rate: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
        rand_seed: int | None = None,
    ) -> np.ndarray:
        """int16 samples at ``self.sample_rate`` (22050 Hz).

        ``rand_seed`` seeds the C library's ``rand()`` (which espeak-ng's noise
        sources use) just before synthesis. Even so, the output also depends on what
        this process synthesised before, and variants with ``breath`` (f2, f3, f5,
        whisper, ...) are not reproducible at all.
        """
        self.set_voice(voice)
        if rand_seed is not None:
            self._libc.srand(ctypes.c_uint(rand_seed & 0xFFFFFFFF))
        self._lib.espeak_SetParameter(PARAM_RATE, int(rate), 0)
        self._lib.espeak_SetParameter(PARAM_PITCH, int(pitch), 0)
        self._lib.espeak_SetParameter(PARAM_RANGE, int(pitch_range), 0)
        self._chunks = []
        data = text.encode()
        rc = self._lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, 0, None, None)
        if rc != 0:
            raise RuntimeError(f"espeak_Synth failed for {text!r} (error code {rc})")
        self._lib.espeak_Synchronize()
        if not self._chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._chunks).astype(np.int16)


def variant_has_breath(voice: str, data_path: str) -> bool:
    """Whether the ``+variant`` of ``voice`` uses breath noise (not reproducible)."""
    if "+" not in voice:
        return False
    path = os.path.join(data_path, "voices", "!v", voice.split("+", 1)[1])
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8", errors="replace") as fh:
        return any(line.split()[:1] == ["breath"] for line in fh)


_INSTANCE: Espeak | None = None
_LOCK = threading.Lock()


def get_espeak() -> Espeak:
    """The process-wide synthesiser (created on first use)."""
    global _INSTANCE
    with _LOCK:
        if _INSTANCE is None:
            _INSTANCE = Espeak()
        return _INSTANCE
