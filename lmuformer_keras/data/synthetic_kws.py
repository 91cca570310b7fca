"""A synthetic keyword-spotting set in the Speech Commands v2 layout, many synthesizers.

``generate_synthetic_kws(out_dir)`` renders every word with every text-to-speech
engine it finds (:mod:`lmuformer_keras.data.tts`: espeak-ng from pip, always; flite,
festival and the neural Piper voice when installed, see BUILD.md) and writes:

- ``<word>/<speaker>_nohash_<k>.wav`` (16 kHz mono 16-bit, 1 s), so
  :func:`lmuformer_keras.data.speech_commands.speech_commands` reads it unchanged;
- ``_background_noise_/*.wav`` (generated white, pink and brown noise and 50 / 60 Hz
  hum), ``validation_list.txt`` and ``testing_list.txt``;
- ``_utterances_/<speaker>.npz``: every utterance a voice spoke (the words above and
  the *negative speech*: non-keyword words, near-misses, numbers and short sentences
  from :mod:`lmuformer_keras.data.word_lists`), after speaker and channel variety but
  before gain and noise, with a record per utterance (engine, voice, text, kind,
  split, draws). :mod:`lmuformer_keras.data.kws_streams` builds training streams and
  clips from them.

Per utterance (engine, voice, text, index ``k``), with a RNG seeded by ``(seed, voice
key, text, k)`` so the result does not depend on worker scheduling
(``kws_render.render_voice``):

1. the engine speaks the text at tempo ~ U(``tempo_range``) (the engine's own rate
   control) and a mean-pitch shift ~ U(``pitch_range``) semitones where the engine
   has one (espeak-ng also draws its pitch range ~ U(``intonation_range``), Piper its
   noise scales);
2. leading / trailing silence is trimmed (below 2 % of the peak, 10 ms margin kept);
3. with ``channel``, speaker and channel variety (:mod:`lmuformer_keras.data.channel`):
   speed perturbation, vocal-tract-length perturbation, room reverberation and a
   wideband / microphone / telephone / 8 kHz band limit, all drawn per utterance;
4. for the word folders: words longer than 1 s are cropped to 1 s (counted), scaled to
   a peak of ``U(peak_dbfs)`` dBFS, placed at a uniform random offset in 1 s of zeros,
   and with probability ``noise_probability`` mixed with a random crop of a noise file
   at an SNR ~ U(``snr_db``) dB; clipped to int16.

Splits: espeak-ng voices are split by voice (``val_voices`` and ``test_voices`` must
not share a voice with ``train_voices``; the default lists also use variants that
never occur in training). The other engines have a few voices each, so their
utterances go to validation by a hash (``OTHER_ENGINE_VAL_FRACTION``) and never to
test: a held-out *engine* is the test for them (``--exclude_engines`` in
``lmuformer-train``, ``python -m lmuformer_apps.kws_stream.evaluate --engine``).
Negative speech uses only the ``train`` half of the vocabulary split
(``word_lists.vocabulary_split``); evaluation sentences use the other.

espeak-ng's output depends on what the process spoke before (see ``kws_render.py``),
so its voices are rendered in fixed chunks of ``VOICES_PER_PROCESS``, each in a fresh
worker process; every other engine renders one voice per process. Piper samples its
noise from an unseeded generator, so its voices are listed as not reproducible.

The generation is cached: a manifest ``synthetic_kws_manifest.json`` stores the
parameters (including the engines used); calling again with the same parameters
returns at once. It is written with ``"complete": false`` first, so an interrupted
run is detected and redone.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lmuformer_keras.data import kws_render, tts, word_lists
from lmuformer_keras.data.espeak import get_espeak, variant_has_breath
from lmuformer_keras.data.kws_render import (
    NOISE_TYPES,
    UTTERANCE_DIR,
    noise_bank,
    speaker_id,
    voice_key,
)
from lmuformer_keras.data.speech_commands import (
    BACKGROUND_NOISE_DIR,
    COMMAND_WORDS,
    SPEECH_COMMANDS_WORDS,
    TESTING_LIST,
    VALIDATION_LIST,
)
from lmuformer_keras.data.wav import write_wav_int16
from lmuformer_keras.features.progress import Progress

MANIFEST = "synthetic_kws_manifest.json"
GENERATOR_VERSION = 2
#: Clips per word and voice of each engine, as a multiple of
#: ``clips_per_word_per_voice`` (espeak-ng has 160 voices, the others 1-5).
ENGINE_CLIP_MULTIPLIER: dict[str, int] = {"espeak": 1, "flite": 6, "festival": 8,
                                          "piper": 24}  # fmt: skip
OTHER_ENGINE_VAL_FRACTION = 0.1
SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000

ACCENTS: tuple[str, ...] = (
    "en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
    "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
)  # fmt: skip
# Breath-free variants only (breath noise in espeak-ng is not reproducible).
TRAIN_VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m4", "m5", "m7", "f1", "linda", "Annie", "grandma", "steph",
    "klatt", "klatt4", "Andy", "Gene",
)  # fmt: skip
VAL_VARIANTS: tuple[str, ...] = ("m3", "belinda", "klatt3")
TEST_VARIANTS: tuple[str, ...] = ("m6", "f4", "klatt5")
VOICES_PER_PROCESS = 24


def _voices(variants: Sequence[str]) -> list[str]:
    return [f"{a}+{v}" for v in variants for a in ACCENTS]


DEFAULT_TRAIN_VOICES: tuple[str, ...] = tuple(_voices(TRAIN_VARIANTS))
DEFAULT_VAL_VOICES: tuple[str, ...] = tuple(_voices(VAL_VARIANTS))
DEFAULT_TEST_VOICES: tuple[str, ...] = tuple(_voices(TEST_VARIANTS))


def _check_voices(
    train: Sequence[str], val: Sequence[str], test: Sequence[str]
) -> None:
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


def _remove_generated(out_dir: str, manifest: dict[str, Any]) -> None:
    """Deletes what a previous generation wrote (only those paths)."""
    for word in manifest.get("params", {}).get("words", []):
        shutil.rmtree(os.path.join(out_dir, word), ignore_errors=True)
    shutil.rmtree(os.path.join(out_dir, BACKGROUND_NOISE_DIR), ignore_errors=True)
    shutil.rmtree(os.path.join(out_dir, UTTERANCE_DIR), ignore_errors=True)
    for name in (VALIDATION_LIST, TESTING_LIST, MANIFEST):
        path = os.path.join(out_dir, name)
        if os.path.exists(path):
            os.remove(path)


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


def _negative_texts(
    engines: Sequence[str],
    engine_voices: Mapping[str, Sequence[str]],
    words: Sequence[str],
    num_words: int,
    num_sentences: int,
    seed: int,
) -> dict[str, dict[str, list[list[str]]]]:
    """``{engine: {voice: [[kind, text], ...]}}``: negative speech, round-robin."""
    keywords = sorted({*COMMAND_WORDS, *words})
    vocab = word_lists.negative_words(keywords, num_words, "train") if num_words else []
    near = {w for ws in word_lists.NEAR_MISSES.values() for w in ws}
    out: dict[str, dict[str, list[list[str]]]] = {}
    for e_index, engine in enumerate(engines):
        rng = np.random.default_rng([seed, 11, e_index])
        sentences = word_lists.negative_sentences(
            keywords, num_sentences, rng, split="train"
        )
        items = [
            [
                "near_miss"
                if w in near
                else "number"
                if w in word_lists.NUMBER_WORDS
                else "negative_word",
                w,
            ]
            for w in vocab
        ] + [["sentence", t] for t in sentences]
        voices = list(engine_voices[engine])
        order = rng.permutation(len(voices))
        per_voice: dict[str, list[list[str]]] = {v: [] for v in voices}
        for i, item in enumerate(items):
            per_voice[voices[order[i % len(voices)]]].append(item)
        out[engine] = per_voice
    return out


def generate_synthetic_kws(
    out_dir: str | os.PathLike,
    seed: int = 0,
    clips_per_word_per_voice: int = 1,
    words: Sequence[str] = SPEECH_COMMANDS_WORDS,
    train_voices: Sequence[str] = DEFAULT_TRAIN_VOICES,
    val_voices: Sequence[str] = DEFAULT_VAL_VOICES,
    test_voices: Sequence[str] = DEFAULT_TEST_VOICES,
    engines: str | Sequence[str] = "auto",
    engine_clips_per_word: Mapping[str, int] | None = None,
    negative_words: int = 1000,
    negative_sentences: int = 200,
    tempo_range: tuple[float, float] = (0.8, 1.2),
    pitch_range: tuple[float, float] = (-4.0, 4.0),
    intonation_range: tuple[int, int] = (20, 90),
    channel: bool = True,
    peak_dbfs: tuple[float, float] = (-40.0, -3.0),
    noise_probability: float = 0.8,
    snr_db: tuple[float, float] = (0.0, 30.0),
    noise_seconds: float = 30.0,
    workers: int = 2,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Generates (or reuses) a synthetic Speech Commands-layout keyword set.

    Args:
        out_dir: dataset root to write.
        seed: everything random derives from it (same seed, same bytes for the
            reproducible engines).
        clips_per_word_per_voice: clips per (word, espeak-ng voice); the other
            engines render ``ENGINE_CLIP_MULTIPLIER`` times as many per voice.
        words: words to speak (folder names); default the 35 v2 words.
        train_voices, val_voices, test_voices: espeak-ng voices ``"accent+variant"``;
            pairwise disjoint.
        engines: ``"auto"`` (every installed engine), or names / a comma-separated
            string of :data:`lmuformer_keras.data.tts.ENGINE_NAMES`.
        engine_clips_per_word: clips per word and voice for some engines (overrides
            the multiplier).
        negative_words: non-keyword words (near-misses and numbers first) each
            engine speaks, spread over its voices.
        negative_sentences: short non-keyword sentences each engine speaks.
        tempo_range: speaking-rate factor range (the engine's own rate control).
        pitch_range: mean-pitch shift range in semitones (engines that have one).
        intonation_range: espeak-ng pitch range (0..100), inclusive.
        channel: speaker and channel variety (speed, VTLP, reverberation, band
            limits; :func:`lmuformer_keras.data.channel.draw_channel`).
        peak_dbfs: range of a word clip's peak level in dBFS.
        noise_probability: fraction of word clips with background noise added.
        snr_db: SNR range of the added noise.
        noise_seconds: length of each ``_background_noise_`` file.
        workers: worker processes running at once (the files do not depend on it).
        progress: progress bar on stderr.
        overwrite: allow writing into a non-empty folder that has no manifest of ours.

    Returns:
        The manifest dict (params, engines and voices, counts per split, generation
        seconds, ``cached``).

    Raises:
        ValueError: overlapping or unknown voices, unknown engines, bad ranges, or a
            non-empty ``out_dir`` that this generator did not write (without
            ``overwrite``).
        tts.EngineUnavailableError: a named engine is not installed.
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    params = _generation_params(
        seed=seed, clips_per_word_per_voice=clips_per_word_per_voice, words=words,
        train_voices=train_voices, val_voices=val_voices, test_voices=test_voices,
        engines=engines, engine_clips_per_word=engine_clips_per_word,
        negative_words=negative_words, negative_sentences=negative_sentences,
        tempo_range=tempo_range, pitch_range=pitch_range,
        intonation_range=intonation_range, channel=channel, peak_dbfs=peak_dbfs,
        noise_probability=noise_probability, snr_db=snr_db,
        noise_seconds=noise_seconds,
    )  # fmt: skip
    old = _previous_manifest(out_dir, overwrite)
    if old is not None and old.get("complete") and old.get("params") == params:
        return dict(old, cached=True)
    if "espeak" in params["engines"]:
        _check_voices(
            params["train_voices"], params["val_voices"], params["test_voices"]
        )
    manifest = _write_set(
        out_dir, params, old, negative_words, negative_sentences, workers, progress
    )
    return dict(manifest, cached=False)


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


def _generation_params(
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


def _previous_manifest(out_dir: str, overwrite: bool) -> dict[str, Any] | None:
    """The manifest a previous generation left in ``out_dir``, or None.

    Raises:
        ValueError: ``out_dir`` is not empty and has no manifest (without
            ``overwrite``).
    """
    manifest_path = os.path.join(out_dir, MANIFEST)
    if os.path.isfile(manifest_path):
        with open(manifest_path, encoding="utf-8") as fh:
            return json.load(fh)
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not overwrite:
        raise ValueError(
            f"generate_synthetic_kws: {out_dir!r} is not empty and has no {MANIFEST}; "
            "choose an empty folder or pass overwrite=True"
        )
    return None


def _write_set(
    out_dir: str,
    params: dict[str, Any],
    old: dict[str, Any] | None,
    negative_words: int,
    negative_sentences: int,
    workers: int,
    progress: bool,
) -> dict[str, Any]:
    """Renders and writes the whole set over ``old``'s files; its complete manifest.

    ``negative_words`` and ``negative_sentences`` are the counts as given (``params``
    holds them as integers).
    """
    start = time.time()
    negatives = _negative_texts(
        params["engines"],
        params["engine_voices"],
        params["words"],
        negative_words,
        negative_sentences,
        params["seed"],
    )
    _prepare_out_dir(out_dir, params, old)
    tasks = _worker_tasks(params, negatives)
    units = _work_units(params, negatives)
    bar = Progress(sum(units.values()), "synthetic_kws") if progress else None
    results = _run_workers(tasks, params, out_dir, workers, bar, units)
    split_files = _write_split_lists(out_dir, results)
    manifest = _complete_manifest(params, results, split_files, start, len(tasks))
    _write_json(os.path.join(out_dir, MANIFEST), manifest)
    return manifest


def _prepare_out_dir(
    out_dir: str, params: dict[str, Any], old: dict[str, Any] | None
) -> None:
    """Removes ``old``'s files, marks the set incomplete, writes the noise files."""
    os.makedirs(out_dir, exist_ok=True)
    if old is not None:
        _remove_generated(out_dir, old)
    _write_json(os.path.join(out_dir, MANIFEST), {"complete": False, "params": params})
    for word in params["words"]:
        os.makedirs(os.path.join(out_dir, word), exist_ok=True)
    os.makedirs(os.path.join(out_dir, UTTERANCE_DIR), exist_ok=True)
    noise_dir = os.path.join(out_dir, BACKGROUND_NOISE_DIR)
    os.makedirs(noise_dir, exist_ok=True)
    for kind, x in noise_bank(params["seed"], params["noise_seconds"]).items():
        samples = np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
        write_wav_int16(os.path.join(noise_dir, f"{kind}_noise.wav"), samples)


def _worker_tasks(
    params: dict[str, Any], negatives: dict[str, dict[str, list[list[str]]]]
) -> list[dict[str, Any]]:
    """One task per worker process: espeak-ng voices in chunks, others one each."""
    tasks = []
    for engine in params["engines"]:
        voices = params["engine_voices"][engine]
        size = params["voices_per_process"] if engine == "espeak" else 1
        for i in range(0, len(voices), size):
            chunk = voices[i : i + size]
            tasks.append(
                {
                    "engine": engine,
                    "voices": chunk,
                    "negatives": {v: negatives[engine][v] for v in chunk},
                }
            )
    return tasks


def _work_units(
    params: dict[str, Any], negatives: dict[str, dict[str, list[list[str]]]]
) -> dict[str, int]:
    """``{voice key: utterances to render}`` (the progress bar's units)."""
    return {
        voice_key(e, v): len(params["words"]) * params["engine_clips_per_word"][e]
        + len(negatives[e][v])
        for e in params["engines"]
        for v in params["engine_voices"][e]
    }


def _write_split_lists(
    out_dir: str, results: dict[str, dict[str, Any]]
) -> dict[str, list[str]]:
    """Writes the validation and testing lists; ``{split: sorted clip paths}``."""
    split_files: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for result in results.values():
        for rel, split in result["files"]:
            split_files[split].append(rel)
    for files in split_files.values():
        files.sort()
    _write_lines(os.path.join(out_dir, VALIDATION_LIST), split_files["val"])
    _write_lines(os.path.join(out_dir, TESTING_LIST), split_files["test"])
    return split_files


def _voice_records(
    params: dict[str, Any], results: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``{voice key: engine, voice, speaker and utterances}`` for the manifest."""
    voice_info = {}
    for e in params["engines"]:
        engine = tts.get_engine(e)
        for v in params["engine_voices"][e]:
            key = voice_key(e, v)
            voice_info[key] = {
                "engine": e,
                "voice": v,
                "speaker": engine.speaker(v),
                "speaker_id": speaker_id(key),
                "utterances": results[key]["utterances"],
                "utterance_count": results[key]["utterance_count"],
            }
    return voice_info


def _not_reproducible_voices(params: dict[str, Any]) -> list[str]:
    """Voice keys whose output is not the same on every run (Piper, breath)."""
    return [
        voice_key(e, v)
        for e in params["engines"]
        for v in params["engine_voices"][e]
        if not tts.get_engine(e).reproducible
        or (e == "espeak" and variant_has_breath(v, get_espeak().data_path))
    ]


def _complete_manifest(
    params: dict[str, Any],
    results: dict[str, dict[str, Any]],
    split_files: dict[str, list[str]],
    start: float,
    worker_processes: int,
) -> dict[str, Any]:
    """The manifest of a finished generation that started at time ``start``."""
    used = params["engines"]
    voice_info = _voice_records(params, results)
    not_reproducible = _not_reproducible_voices(params)
    return {
        "complete": True,
        "params": params,
        "engines": {
            e: {
                "version": tts.get_engine(e).version(),
                "reproducible": tts.get_engine(e).reproducible,
                "voices": params["engine_voices"][e],
            }
            for e in used
        },
        "engines_not_installed": [e for e in tts.ENGINE_NAMES if e not in used],
        "espeak_ng_version": get_espeak().version if "espeak" in used else None,
        "counts": {s: len(f) for s, f in split_files.items()},
        "total_clips": sum(len(f) for f in split_files.values()),
        "cropped_words": sum(r["cropped"] for r in results.values()),
        "noise_files": [f"{BACKGROUND_NOISE_DIR}/{k}_noise.wav" for k in NOISE_TYPES],
        "speakers": {k: info["speaker_id"] for k, info in voice_info.items()},
        "voices": voice_info,
        "not_reproducible_voices": not_reproducible,
        "seconds": round(time.time() - start, 2),
        "worker_processes": worker_processes,
    }


def _run_workers(
    tasks: list[dict[str, Any]],
    params: dict[str, Any],
    out_dir: str,
    workers: int,
    bar: Progress | None,
    units: dict[str, int],
) -> dict[str, dict[str, Any]]:
    """Runs one fresh ``kws_render.py`` process per task, ``workers`` at a time."""
    script = os.path.abspath(kws_render.__file__)
    events: queue.Queue = queue.Queue()
    pending = list(tasks)
    lock = threading.Lock()

    def run_one() -> None:
        while True:
            with lock:
                if not pending:
                    return
                task = pending.pop(0)
            text = json.dumps(dict(task, params=params, out_dir=out_dir))
            with tempfile.TemporaryFile(mode="w+") as err:
                proc = subprocess.Popen(
                    [sys.executable, script],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                )
                proc.stdin.write(text)
                proc.stdin.close()
                for line in proc.stdout:
                    if line.startswith(kws_render.RESULT_PREFIX):
                        result = json.loads(line[len(kws_render.RESULT_PREFIX) :])
                        events.put(("ok", result))
                rc = proc.wait()
                if rc != 0:
                    err.seek(0)
                    tail = err.read()[-2000:]
                    msg = (
                        f"{task['engine']} worker for voices {task['voices']} failed "
                        f"(exit {rc}): {tail}"
                    )
                    events.put(("error", msg))
                    return

    threads = [
        threading.Thread(target=run_one, daemon=True)
        for _ in range(max(1, min(workers, len(tasks))))
    ]
    for t in threads:
        t.start()
    results: dict[str, dict[str, Any]] = {}
    expected = sum(len(t["voices"]) for t in tasks)
    while len(results) < expected:
        try:
            kind, payload = events.get(timeout=1.0)
        except queue.Empty:
            if not any(t.is_alive() for t in threads) and events.empty():
                raise RuntimeError(
                    "generate_synthetic_kws: workers stopped before finishing"
                ) from None
            continue
        if kind == "error":
            with lock:
                pending.clear()
            raise RuntimeError(f"generate_synthetic_kws: {payload}")
        results[payload["key"]] = payload
        if bar is not None:
            bar.update(sum(units[k] for k in results))
    for t in threads:
        t.join()
    return results


def _write_json(path: str, obj: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _write_lines(path: str, lines: Sequence[str]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(line + "\n" for line in lines)
