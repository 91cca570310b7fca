"""A synthetic keyword-spotting set in the Speech Commands v2 layout (espeak-ng).

``generate_synthetic_kws(out_dir)`` writes ``<word>/<speaker>_nohash_<k>.wav``
(16 kHz mono 16-bit, 1 s), ``_background_noise_/*.wav`` (generated white, pink and
brown noise and 50 / 60 Hz hum), ``validation_list.txt`` and ``testing_list.txt``, so
:func:`lmuformer_keras.data.speech_commands.speech_commands` reads it unchanged.

Per clip (voice ``accent+variant``, word, index ``k``), with a RNG seeded by
``(seed, voice, word, k)`` so the result does not depend on worker scheduling:

1. espeak-ng speaks the word at 22050 Hz with rate ~ U(``rate_range``) words/min, pitch
   ~ U(``pitch_range``) and pitch range ~ U(``intonation_range``) (espeak 0..100);
2. leading / trailing silence is trimmed (below 2 % of the peak, 10 ms margin kept);
3. resampled 22050 -> 16000 Hz with ``scipy.signal.resample_poly(x, 320, 441)``; words
   longer than 1 s are cropped to 1 s (counted in the manifest);
4. scaled to a peak of ``U(peak_dbfs)`` dBFS and placed at a uniform random offset in
   a 1 s clip of zeros;
5. with probability ``noise_probability``, a random 1 s crop of a random noise file is
   added at an SNR ~ U(``snr_db``) dB (speech power measured over the word);
6. clipped to int16.

Splits are by voice: ``val_voices`` and ``test_voices`` must not share a voice with
``train_voices`` (or each other); the default lists also use variants (``+m3``,
``+f2``, ...) that never occur in training. The split is written into the list files.

espeak-ng's output depends on what the process spoke before (see ``kws_render.py``),
so voices are rendered in fixed chunks of ``VOICES_PER_PROCESS``, each in a fresh
worker process (``workers`` of them at a time): the files depend on the parameters
only, not on ``workers`` or scheduling.

The generation is deterministic from ``seed`` and cached: a manifest
``synthetic_kws_manifest.json`` stores the parameters; calling again with the same
parameters returns at once. It is written with ``"complete": false`` first, so an
interrupted run is detected and redone.
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
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmuformer_keras.data import kws_render
from lmuformer_keras.data.espeak import get_espeak, variant_has_breath
from lmuformer_keras.data.kws_render import NOISE_TYPES, noise_bank, speaker_id
from lmuformer_keras.data.speech_commands import (
    BACKGROUND_NOISE_DIR,
    SPEECH_COMMANDS_WORDS,
    TESTING_LIST,
    VALIDATION_LIST,
)
from lmuformer_keras.data.wav import write_wav_int16
from lmuformer_keras.features.progress import Progress

MANIFEST = "synthetic_kws_manifest.json"
GENERATOR_VERSION = 1
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
    for name in (VALIDATION_LIST, TESTING_LIST, MANIFEST):
        path = os.path.join(out_dir, name)
        if os.path.exists(path):
            os.remove(path)


def generate_synthetic_kws(
    out_dir: str | os.PathLike,
    seed: int = 0,
    clips_per_word_per_voice: int = 1,
    words: Sequence[str] = SPEECH_COMMANDS_WORDS,
    train_voices: Sequence[str] = DEFAULT_TRAIN_VOICES,
    val_voices: Sequence[str] = DEFAULT_VAL_VOICES,
    test_voices: Sequence[str] = DEFAULT_TEST_VOICES,
    rate_range: tuple[int, int] = (120, 230),
    pitch_range: tuple[int, int] = (20, 80),
    intonation_range: tuple[int, int] = (20, 90),
    peak_dbfs: tuple[float, float] = (-24.0, -1.0),
    noise_probability: float = 0.8,
    snr_db: tuple[float, float] = (5.0, 30.0),
    noise_seconds: float = 30.0,
    workers: int = 2,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Generates (or reuses) a synthetic Speech Commands-layout keyword set.

    Args:
        out_dir: dataset root to write.
        seed: everything random derives from it (same seed, same bytes).
        clips_per_word_per_voice: clips per (word, voice), each with its own draw.
        words: words to speak (folder names); default the 35 v2 words.
        train_voices, val_voices, test_voices: espeak-ng voices ``"accent+variant"``;
            pairwise disjoint.
        rate_range, pitch_range, intonation_range: espeak-ng rate (words/min), pitch
            and pitch range (0..100) ranges, inclusive.
        peak_dbfs: range of the word's peak level in dBFS.
        noise_probability: fraction of clips with background noise added.
        snr_db: SNR range of the added noise.
        noise_seconds: length of each ``_background_noise_`` file.
        workers: worker processes running at once. Voices are rendered in fixed
            chunks of ``VOICES_PER_PROCESS``, each in a fresh process (espeak-ng
            output depends on what the process spoke before), so the files do not
            depend on ``workers``.
        progress: progress bar on stderr.
        overwrite: allow writing into a non-empty folder that has no manifest of ours.

    Returns:
        The manifest dict (params, counts per split, generation seconds, ``cached``).

    Raises:
        ValueError: overlapping or unknown voices, bad ranges, or a non-empty
            ``out_dir`` that this generator did not write (without ``overwrite``).
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    words = [str(w) for w in words]
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
    params: dict[str, Any] = {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "words": words,
        "clips_per_word_per_voice": int(clips_per_word_per_voice),
        "train_voices": list(train_voices),
        "val_voices": list(val_voices),
        "test_voices": list(test_voices),
        "rate_range": [int(r) for r in rate_range],
        "pitch_range": [int(p) for p in pitch_range],
        "intonation_range": [int(p) for p in intonation_range],
        "peak_dbfs": [float(p) for p in peak_dbfs],
        "noise_probability": float(noise_probability),
        "snr_db": [float(s) for s in snr_db],
        "noise_seconds": float(noise_seconds),
        "sample_rate": SAMPLE_RATE,
        "voices_per_process": VOICES_PER_PROCESS,
    }
    manifest_path = os.path.join(out_dir, MANIFEST)
    old = None
    if os.path.isfile(manifest_path):
        with open(manifest_path, encoding="utf-8") as fh:
            old = json.load(fh)
        if old.get("complete") and old.get("params") == params:
            return dict(old, cached=True)
    elif os.path.isdir(out_dir) and os.listdir(out_dir) and not overwrite:
        raise ValueError(
            f"generate_synthetic_kws: {out_dir!r} is not empty and has no {MANIFEST}; "
            "choose an empty folder or pass overwrite=True"
        )
    _check_voices(params["train_voices"], params["val_voices"], params["test_voices"])

    start = time.time()
    os.makedirs(out_dir, exist_ok=True)
    if old is not None:
        _remove_generated(out_dir, old)
    manifest: dict[str, Any] = {"complete": False, "params": params}
    _write_json(manifest_path, manifest)
    for word in words:
        os.makedirs(os.path.join(out_dir, word), exist_ok=True)
    noise_dir = os.path.join(out_dir, BACKGROUND_NOISE_DIR)
    os.makedirs(noise_dir, exist_ok=True)
    for kind, x in noise_bank(params["seed"], params["noise_seconds"]).items():
        samples = np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
        write_wav_int16(os.path.join(noise_dir, f"{kind}_noise.wav"), samples)

    voices = [*params["train_voices"], *params["val_voices"], *params["test_voices"]]
    size = params["voices_per_process"]
    chunks = [voices[i : i + size] for i in range(0, len(voices), size)]
    per_voice = len(words) * params["clips_per_word_per_voice"]
    bar = Progress(len(voices) * per_voice, "synthetic_kws") if progress else None
    results = _run_workers(chunks, params, out_dir, workers, bar, per_voice)

    split_files: dict[str, list[str]] = {}
    for split, key in (("train", "train_voices"), ("val", "val_voices"),
                       ("test", "test_voices")):  # fmt: skip
        split_files[split] = sorted(f for v in params[key] for f in results[v]["files"])
    _write_lines(os.path.join(out_dir, VALIDATION_LIST), split_files["val"])
    _write_lines(os.path.join(out_dir, TESTING_LIST), split_files["test"])
    manifest = {
        "complete": True,
        "params": params,
        "espeak_ng_version": get_espeak().version,
        "counts": {s: len(f) for s, f in split_files.items()},
        "total_clips": sum(len(f) for f in split_files.values()),
        "cropped_words": sum(r["cropped"] for r in results.values()),
        "noise_files": [f"{BACKGROUND_NOISE_DIR}/{k}_noise.wav" for k in NOISE_TYPES],
        "speakers": {v: speaker_id(v) for v in voices},
        "not_reproducible_voices": [
            v for v in voices if variant_has_breath(v, get_espeak().data_path)
        ],
        "seconds": round(time.time() - start, 2),
        "worker_processes": len(chunks),
    }
    _write_json(manifest_path, manifest)
    return dict(manifest, cached=False)


def _run_workers(
    chunks: list[list[str]],
    params: dict[str, Any],
    out_dir: str,
    workers: int,
    bar: Progress | None,
    per_voice: int,
) -> dict[str, dict[str, Any]]:
    """Runs one fresh ``kws_render.py`` process per chunk, ``workers`` at a time."""
    script = os.path.abspath(kws_render.__file__)
    events: queue.Queue = queue.Queue()
    pending = list(enumerate(chunks))
    lock = threading.Lock()

    def run_one() -> None:
        while True:
            with lock:
                if not pending:
                    return
                _, chunk = pending.pop(0)
            task = json.dumps({"voices": chunk, "params": params, "out_dir": out_dir})
            with tempfile.TemporaryFile(mode="w+") as err:
                proc = subprocess.Popen(
                    [sys.executable, script],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                )
                proc.stdin.write(task)
                proc.stdin.close()
                for line in proc.stdout:
                    if line.startswith(kws_render.RESULT_PREFIX):
                        result = json.loads(line[len(kws_render.RESULT_PREFIX) :])
                        events.put(("ok", result))
                rc = proc.wait()
                if rc != 0:
                    err.seek(0)
                    tail = err.read()[-2000:]
                    msg = f"worker for voices {chunk} failed (exit {rc}): {tail}"
                    events.put(("error", msg))
                    return

    threads = [
        threading.Thread(target=run_one, daemon=True)
        for _ in range(max(1, min(workers, len(chunks))))
    ]
    for t in threads:
        t.start()
    results: dict[str, dict[str, Any]] = {}
    expected = sum(len(c) for c in chunks)
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
        results[payload["voice"]] = payload
        if bar is not None:
            bar.update(len(results) * per_voice)
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
