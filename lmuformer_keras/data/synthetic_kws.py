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

The parts: the checked parameters and their constants (``ENGINE_CLIP_MULTIPLIER``,
``OTHER_ENGINE_VAL_FRACTION``, ``VOICES_PER_PROCESS``;
:mod:`~lmuformer_keras.data.synthetic_kws_params`), the manifest, lists and noise
files (:mod:`~lmuformer_keras.data.synthetic_kws_files`), and the worker processes
(:mod:`~lmuformer_keras.data.synthetic_kws_workers`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from lmuformer_keras.data.speech_commands_layout import SPEECH_COMMANDS_WORDS
from lmuformer_keras.data.synthetic_kws_files import (
    complete_manifest,
    prepare_out_dir,
    previous_manifest,
    write_manifest,
    write_split_lists,
)
from lmuformer_keras.data.synthetic_kws_params import check_voices, generation_params
from lmuformer_keras.data.synthetic_kws_workers import (
    negative_texts,
    run_workers,
    work_units,
    worker_tasks,
)
from lmuformer_keras.features.progress import Progress

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


def _voices(variants: Sequence[str]) -> list[str]:
    return [f"{a}+{v}" for v in variants for a in ACCENTS]


DEFAULT_TRAIN_VOICES: tuple[str, ...] = tuple(_voices(TRAIN_VARIANTS))
DEFAULT_VAL_VOICES: tuple[str, ...] = tuple(_voices(VAL_VARIANTS))
DEFAULT_TEST_VOICES: tuple[str, ...] = tuple(_voices(TEST_VARIANTS))


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
        engine_clips_per_word: clips per word and voice of some engines (no multiplier).
        negative_words: non-keyword words (near-misses and numbers first) each
            engine speaks, spread over its voices.
        negative_sentences: short non-keyword sentences each engine speaks.
        tempo_range: speaking-rate factor range (the engine's own rate control).
        pitch_range: mean-pitch shift range in semitones (engines that have one).
        intonation_range: espeak-ng pitch range (0..100), inclusive.
        channel: speaker and channel variety (speed, VTLP, reverberation, band
            limits; :func:`lmuformer_keras.data.channel.draw_channel`).
        peak_dbfs, noise_probability, snr_db: a word clip's peak level range (dBFS),
            the fraction of clips with background noise added, and its SNR range (dB).
        noise_seconds: length of each ``_background_noise_`` file.
        workers: worker processes running at once (the files do not depend on it).
        progress: progress bar on stderr.
        overwrite: allow writing into a non-empty folder that has no manifest of ours.

    Returns:
        The manifest (params, engines, voices, counts per split, seconds, ``cached``).

    Raises:
        ValueError: overlapping or unknown voices, unknown engines, bad ranges, or a
            non-empty ``out_dir`` not written by this generator (without ``overwrite``).
        tts.EngineUnavailableError: a named engine is not installed.
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    params = generation_params(
        seed=seed, clips_per_word_per_voice=clips_per_word_per_voice, words=words,
        train_voices=train_voices, val_voices=val_voices, test_voices=test_voices,
        engines=engines, engine_clips_per_word=engine_clips_per_word,
        negative_words=negative_words, negative_sentences=negative_sentences,
        tempo_range=tempo_range, pitch_range=pitch_range,
        intonation_range=intonation_range, channel=channel, peak_dbfs=peak_dbfs,
        noise_probability=noise_probability, snr_db=snr_db,
        noise_seconds=noise_seconds,
    )  # fmt: skip
    old = previous_manifest(out_dir, overwrite)
    if old is not None and old.get("complete") and old.get("params") == params:
        return dict(old, cached=True)
    manifest = _write_set(
        out_dir, params, old, negative_words, negative_sentences, workers, progress
    )
    return dict(manifest, cached=False)


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

    The espeak-ng voices are checked first. ``negative_words`` and
    ``negative_sentences`` are the counts as given (``params`` holds them as
    integers).

    Raises:
        ValueError: overlapping or unknown espeak-ng voices.
    """
    if "espeak" in params["engines"]:
        check_voices(
            params["train_voices"], params["val_voices"], params["test_voices"]
        )
    start = time.time()
    negatives = negative_texts(
        params["engines"],
        params["engine_voices"],
        params["words"],
        negative_words,
        negative_sentences,
        params["seed"],
    )
    prepare_out_dir(out_dir, params, old)
    tasks = worker_tasks(params, negatives)
    units = work_units(params, negatives)
    bar = Progress(sum(units.values()), "synthetic_kws") if progress else None
    results = run_workers(tasks, params, out_dir, workers, bar, units)
    split_files = write_split_lists(out_dir, results)
    manifest = complete_manifest(params, results, split_files, start, len(tasks))
    write_manifest(out_dir, manifest)
    return manifest
