"""The checked parameters of a synthetic keyword set (its manifest's ``params``).

:func:`generation_params` checks the arguments of
:func:`lmuformer_keras.data.synthetic_kws.generate_synthetic_kws` and turns them into
the plain-data ``params`` the manifest stores: a set is reused when they are equal.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from lmuformer_keras.data import tts
from lmuformer_keras.data.espeak import get_espeak
from lmuformer_keras.data.kws_render import speaker_id

GENERATOR_VERSION = 2
#: Clips per word and voice of each engine, as a multiple of
#: ``clips_per_word_per_voice`` (espeak-ng has 160 voices, the others 1-5).
ENGINE_CLIP_MULTIPLIER: dict[str, int] = {"espeak": 1, "flite": 6, "festival": 8,
                                          "festival_accented": 3,
                                          "piper": 24}  # fmt: skip
#: Fraction of the other engines' utterances that go to validation (by a hash).
OTHER_ENGINE_VAL_FRACTION = 0.1
SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
#: espeak-ng voices rendered per worker process (each chunk in a fresh process).
VOICES_PER_PROCESS = 24


def check_voices(train: Sequence[str], val: Sequence[str], test: Sequence[str]) -> None:
    """Checks the espeak-ng voice lists: non-empty, disjoint, known to espeak-ng.

    Raises:
        ValueError: an empty list, a repeated or shared voice, two voices with the
            same speaker id, or an unknown voice (naming it).
    """
    named = {"train_voices": train, "val_voices": val, "test_voices": test}
    for arg, voices in named.items():
        if not voices:
            raise ValueError(f"generate_synthetic_kws: {arg} is empty")
        dup = sorted({v for v in voices if list(voices).count(v) > 1})
        if dup:
            raise ValueError(f"generate_synthetic_kws: {arg} repeats {dup}")
    for a, b in (("train_voices", "val_voices"), ("train_voices", "test_voices"),
                 ("val_voices", "test_voices")):  # fmt: skip
        shared = sorted(set(named[a]) & set(named[b]))
        if shared:
            raise ValueError(
                f"generate_synthetic_kws: {a} and {b} share voices {shared}; held-out "
                "voices must never be seen in training"
            )
    ids: dict[str, str] = {}
    for v in (*train, *val, *test):
        other = ids.setdefault(speaker_id(v), v)
        if other != v:
            raise ValueError(
                f"generate_synthetic_kws: voices {other!r} and {v!r} have the same "
                "speaker id; rename one"
            )
    espeak = get_espeak()
    for v in (*train, *val, *test):
        espeak.set_voice(v)  # ValueError naming an unknown voice


def resolve_engines(engines: str | Sequence[str]) -> list[str]:
    """``"auto"``: every installed engine; else the named ones, which must be installed.

    Raises:
        ValueError: an unknown engine name, or an empty list.
        tts.EngineUnavailableError: a named engine that is not installed.
    """
    if isinstance(engines, str):
        if engines == "auto":
            return tts.available_engines()
        engines = [e for e in engines.split(",") if e]
    names = [str(e) for e in engines]
    if not names:
        raise ValueError("generate_synthetic_kws: engines is empty")
    for name in names:
        tts.get_engine(name)  # unknown -> ValueError; not installed -> error
    return [e for e in tts.ENGINE_NAMES if e in names]


def generation_params(
    *,
    seed: int,
    clips_per_word_per_voice: int,
    words: Sequence[str],
    train_voices: Sequence[str],
    val_voices: Sequence[str],
    test_voices: Sequence[str],
    engines: str | Sequence[str],
    engine_clips_per_word: Mapping[str, int] | None,
    negative_words: int,
    negative_sentences: int,
    tempo_range: tuple[float, float],
    pitch_range: tuple[float, float],
    intonation_range: tuple[int, int],
    channel: bool,
    peak_dbfs: tuple[float, float],
    noise_probability: float,
    snr_db: tuple[float, float],
    noise_seconds: float,
) -> dict[str, Any]:
    """The checked ``params`` of the manifest.

    The arguments are those of :func:`generate_synthetic_kws`, in its order.

    Raises:
        ValueError: bad words, counts, ranges or engines.
        tts.EngineUnavailableError: a named engine is not installed.
    """
    words = [str(w) for w in words]
    _check_arguments(
        words,
        clips_per_word_per_voice,
        noise_probability,
        noise_seconds,
        tempo_range,
        pitch_range,
        peak_dbfs,
        negative_words,
        negative_sentences,
    )
    used = resolve_engines(engines)
    engine_voices = _engine_voices(used, train_voices, val_voices, test_voices)
    clips = _clips_per_word(used, clips_per_word_per_voice, engine_clips_per_word)
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "words": words,
        "clips_per_word_per_voice": int(clips_per_word_per_voice),
        "engines": used,
        "engine_voices": engine_voices,
        "engine_clips_per_word": clips,
        "negative_words": int(negative_words),
        "negative_sentences": int(negative_sentences),
        "train_voices": list(train_voices),
        "val_voices": list(val_voices),
        "test_voices": list(test_voices),
        "other_engine_val_fraction": OTHER_ENGINE_VAL_FRACTION,
        "tempo_range": [float(t) for t in tempo_range],
        "pitch_range": [float(p) for p in pitch_range],
        "intonation_range": [int(p) for p in intonation_range],
        "channel": bool(channel),
        "peak_dbfs": [float(p) for p in peak_dbfs],
        "noise_probability": float(noise_probability),
        "snr_db": [float(s) for s in snr_db],
        "noise_seconds": float(noise_seconds),
        "sample_rate": SAMPLE_RATE,
        "voices_per_process": VOICES_PER_PROCESS,
    }


def _check_arguments(
    words: Sequence[str],
    clips_per_word_per_voice: int,
    noise_probability: float,
    noise_seconds: float,
    tempo_range: tuple[float, float],
    pitch_range: tuple[float, float],
    peak_dbfs: tuple[float, float],
    negative_words: int,
    negative_sentences: int,
) -> None:
    """Checks the words, counts and ranges of :func:`generate_synthetic_kws`.

    Raises:
        ValueError: naming the first bad argument.
    """
    if not words or len(set(words)) != len(words):
        raise ValueError(f"generate_synthetic_kws: words must be unique, got {words}")
    for word in words:
        if not word or word[0] in "._" or "/" in word or os.sep in word:
            raise ValueError(
                f"generate_synthetic_kws: {word!r} cannot be a word folder name "
                "(empty, starts with '.' or '_', or has a path separator)"
            )
    if clips_per_word_per_voice < 1:
        raise ValueError(
            "generate_synthetic_kws: clips_per_word_per_voice must be >= 1, got "
            f"{clips_per_word_per_voice}"
        )
    if not 0.0 <= noise_probability <= 1.0:
        raise ValueError(
            "generate_synthetic_kws: noise_probability must be in [0, 1], got "
            f"{noise_probability}"
        )
    if noise_seconds < 1.0:
        raise ValueError(
            f"generate_synthetic_kws: noise_seconds must be >= 1, got {noise_seconds}"
        )
    for name, value, lo, hi in (
        ("tempo_range", tempo_range, 0.5, 2.0),
        ("pitch_range", pitch_range, -12.0, 12.0),
        ("peak_dbfs", peak_dbfs, -90.0, 0.0),
    ):
        if len(value) != 2 or not lo <= value[0] <= value[1] <= hi:
            raise ValueError(
                f"generate_synthetic_kws: {name} must be (min, max) with {lo} <= min "
                f"<= max <= {hi}, got {name}={tuple(value)}"
            )
    for name, count in (
        ("negative_words", negative_words),
        ("negative_sentences", negative_sentences),
    ):
        if int(count) != count or count < 0:
            raise ValueError(
                f"generate_synthetic_kws: {name} must be an integer >= 0, got "
                f"{name}={count}"
            )


def _engine_voices(
    engines: Sequence[str],
    train_voices: Sequence[str],
    val_voices: Sequence[str],
    test_voices: Sequence[str],
) -> dict[str, list[str]]:
    """``{engine: voices}``: the given espeak-ng voices, every voice of the others."""
    engine_voices: dict[str, list[str]] = {}
    for engine in engines:
        if engine == "espeak":
            engine_voices[engine] = [*train_voices, *val_voices, *test_voices]
        else:
            engine_voices[engine] = list(tts.get_engine(engine).voices())
    return engine_voices


def _clips_per_word(
    engines: Sequence[str],
    clips_per_word_per_voice: int,
    engine_clips_per_word: Mapping[str, int] | None,
) -> dict[str, int]:
    """``{engine: clips per word and voice}``: the multiplier, or the override.

    Raises:
        ValueError: an override for an engine not used, or one that is not >= 1.
    """
    clips = {
        e: int(clips_per_word_per_voice) * ENGINE_CLIP_MULTIPLIER.get(e, 1)
        for e in engines
    }
    for e, k in (engine_clips_per_word or {}).items():
        if e not in engines:
            raise ValueError(
                f"generate_synthetic_kws: engine_clips_per_word names {e!r}, which "
                f"is not among the engines used {engines}"
            )
        if int(k) != k or k < 1:
            raise ValueError(
                f"generate_synthetic_kws: engine_clips_per_word[{e!r}] must be an "
                f"integer >= 1, got {k}"
            )
        clips[e] = int(k)
    return clips
