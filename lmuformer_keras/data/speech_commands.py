"""Google Speech Commands (v2 folder layout): 35-word and 12-class (benchmark) loaders.

Layout read (the official archive, or ``synthetic_kws`` output)::

    root/
      validation_list.txt       lines "word/file.wav" (relative to root)
      testing_list.txt
      _background_noise_/*.wav  long noise recordings (never a class)
      <word>/*.wav              16 kHz mono 16-bit PCM, <= 1 s

Splits: a clip is validation / test if its relative path is in the list file; train is
every other clip of a word folder (``_background_noise_`` and every other folder named
``_like_this_``, such as the synthetic set's ``_utterances_``, are not word folders;
they are counted in ``summary["skipped"]``).

Classes:
- ``35``: the 35 v2 words, labels in alphabetical order; every word folder must exist.
- ``12``: the standard benchmark ``_silence_, _unknown_, yes, no, up, down, left, right,
  on, off, stop, go``. Per split, with ``K`` = number of clips of the 10 command words:
  ``ceil(K * unknown_percentage / 100)`` ``_unknown_`` clips are drawn without
  replacement from that split's clips of all other word folders (all of them if
  fewer; ``unknown_percentage=None`` keeps them all), and
  ``ceil(K * silence_percentage / 100)`` ``_silence_`` clips are 1 s crops at a
  uniform random offset of a uniformly chosen ``_background_noise_`` file, multiplied
  by a gain ~ U(0, 1) (the sampling of TensorFlow's ``speech_commands`` example,
  10 % / 10 %). Draws use
  ``numpy.random.default_rng([seed, split_index])``.
- ``"all"``: every word folder present, alphabetical (any subset of words).

Waveforms shorter than ``clip_samples`` (16000) are zero-padded (their true length is
kept, so frontends pad the way they define), longer ones are cropped (counted).
Nothing is dropped silently: hidden entries, non-WAV files and unused word folders are
skipped, counted in ``summary["skipped"]`` and logged; unusable WAVs raise.

This module reads the waveforms and computes (and caches) the features; the folder is
indexed by :mod:`~lmuformer_keras.data.speech_commands_index` (scanned and split in
:mod:`~lmuformer_keras.data.speech_commands_scan`), and the layout's names are in
:mod:`~lmuformer_keras.data.speech_commands_layout`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmuformer_keras.data.dataset import Dataset
from lmuformer_keras.data.speech_commands_index import (
    Clip,
    SpeechCommandsIndex,
    index_speech_commands,
)
from lmuformer_keras.data.speech_commands_layout import (
    BACKGROUND_NOISE_DIR,
    CLIP_SAMPLES,
    COMMAND_WORDS,
    LABELS_12,
    SAMPLE_RATE,
    SPEECH_COMMANDS_WORDS,
    SPLITS,
)
from lmuformer_keras.data.wav import WavFormatError, read_wav_int16
from lmuformer_keras.features import get_frontend
from lmuformer_keras.features.base import Frontend
from lmuformer_keras.features.progress import Progress

logger = logging.getLogger(__name__)

_CACHE_VERSION = 2  # 2: keyed on each file's mtime_ns too


@dataclass
class Waveforms:
    """Waveforms of one split, for waveform-level augmentation (e.g. mixup).

    ``x[i, :lengths[i]]`` is clip ``i`` (int16, zero-padded to ``clip_samples``).
    """

    x: np.ndarray
    lengths: np.ndarray
    y: np.ndarray
    labels: list[str]
    split: str
    summary: dict[str, Any]


def _canonical_split(split: str) -> str:
    aliases = {
        "validation": "val",
        "valid": "val",
        "testing": "test",
        "training": "train",
    }
    s = aliases.get(split, split)
    if s not in SPLITS:
        raise ValueError(
            f"speech_commands: split must be one of {SPLITS}, got {split!r}"
        )
    return s


def _load_split(
    index: SpeechCommandsIndex, split: str, clip_samples: int, progress: bool
) -> Waveforms:
    clips = index.clips[split]
    x = np.zeros((len(clips), clip_samples), dtype=np.int16)
    lengths = np.zeros(len(clips), dtype=np.int64)
    y = np.array([c.label for c in clips], dtype=np.int64)
    noise_cache: dict[str, np.ndarray] = {}
    cropped = 0
    bar = Progress(len(clips), f"read[{split}]") if progress else None
    for i, clip in enumerate(clips):
        if clip.relpath is not None:
            wav = read_wav_int16(os.path.join(index.root, clip.relpath), SAMPLE_RATE)
            if wav.shape[0] > clip_samples:
                cropped += 1
                wav = wav[:clip_samples]
        else:
            if clip.noise_file not in noise_cache:
                noise_cache[clip.noise_file] = read_wav_int16(
                    os.path.join(index.root, clip.noise_file), SAMPLE_RATE
                )
            noise = noise_cache[clip.noise_file]
            seg = noise[clip.noise_offset : clip.noise_offset + clip_samples]
            wav = np.round(seg.astype(np.float64) * clip.noise_gain).astype(np.int16)
        x[i, : wav.shape[0]] = wav
        lengths[i] = wav.shape[0]
        if bar is not None:
            bar.update(i + 1)
    summary = {
        "split": split,
        "clips": len(clips),
        "wav_read": sum(c.relpath is not None for c in clips),
        "silence_clips": sum(c.relpath is None for c in clips),
        "cropped_longer_than_clip": cropped,
        "shorter_than_clip": int((lengths < clip_samples).sum()),
    }
    return Waveforms(x, lengths, y, list(index.labels), split, summary)


def speech_commands_waveforms(
    path: str | os.PathLike | SpeechCommandsIndex,
    split: str = "train",
    classes: int | str = 35,
    seed: int = 0,
    silence_percentage: float = 10.0,
    unknown_percentage: float | None = 10.0,
    clip_samples: int = CLIP_SAMPLES,
    progress: bool = False,
) -> Waveforms:
    """Waveforms of one split (``"train"``, ``"val"`` or ``"test"``), int16.

    ``path`` may be an index from :func:`index_speech_commands` to avoid rescanning.
    Same clip order and labels as :func:`speech_commands`.
    """
    split = _canonical_split(split)
    index = (
        path
        if isinstance(path, SpeechCommandsIndex)
        else index_speech_commands(
            path, classes, seed, silence_percentage, unknown_percentage
        )
    )
    return _load_split(index, split, clip_samples, progress)


def _cache_key(
    index: SpeechCommandsIndex, frontend: Frontend, clip_samples: int
) -> str:
    def clip_id(c: Clip) -> list[Any]:
        if c.relpath is not None:
            rel = c.relpath
            return [c.label, rel, index.file_sizes[rel], index.file_mtimes.get(rel)]
        return [c.label, c.noise_file, c.noise_offset, c.noise_gain]

    payload = {
        "version": _CACHE_VERSION,
        "root": index.root,
        "frontend": frontend.params,
        "labels": index.labels,
        "clip_samples": clip_samples,
        "noise": {
            rel: [index.file_sizes[rel], index.file_mtimes.get(rel)]
            for rel in index.noise_files
        },
        "clips": {s: [clip_id(c) for c in index.clips[s]] for s in SPLITS},
    }
    blob = json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def default_cache_dir() -> str:
    """``$LMUFORMER_KERAS_CACHE`` or ``~/.cache/lmuformer_keras``."""
    return os.environ.get(
        "LMUFORMER_KERAS_CACHE",
        os.path.join(os.path.expanduser("~"), ".cache", "lmuformer_keras"),
    )


def speech_commands(
    path: str | os.PathLike,
    classes: int | str = 35,
    frontend: str | dict[str, Any] | Frontend = "fbank128",
    cache_dir: str | os.PathLike | None | bool = None,
    seed: int = 0,
    silence_percentage: float = 10.0,
    unknown_percentage: float | None = 10.0,
    clip_samples: int = CLIP_SAMPLES,
    progress: bool = True,
) -> Dataset:
    """Speech Commands features: ``(N, T, F)`` float32 per split and int labels.

    Args:
        path: dataset root in the v2 layout (see the module docstring).
        classes: ``35``, ``12`` or ``"all"``.
        frontend: a frontend name (``"fbank128"``, ``"micro40"``), a params dict or
            a frontend object.
        cache_dir: where computed features are cached, keyed by a hash of the frontend
            params, the labels, the clip list (paths, sizes, mtime_ns) and the sampling;
            ``None``: :func:`default_cache_dir`; ``False``: no cache.
        seed: seed of the 12-class ``_unknown_`` / ``_silence_`` sampling.
        silence_percentage, unknown_percentage: 12-class sampling (module docstring).
        clip_samples: waveform length clips are padded / cropped to.
        progress: progress bars on stderr.

    Returns:
        :class:`Dataset` with ``frontend`` = the frontend params and ``summary`` = the
        scan summary plus per-split read counts and the cache status.
    """
    fe = get_frontend(frontend)
    index = index_speech_commands(
        path, classes, seed, silence_percentage, unknown_percentage
    )
    summary = dict(index.summary)
    cache_file = None
    if cache_dir is not False:
        cdir = (
            os.fspath(cache_dir)
            if cache_dir not in (None, True)
            else default_cache_dir()
        )
        key = _cache_key(index, fe, clip_samples)
        cache_file = os.path.join(cdir, f"speech_commands_{fe.name}_{key}.npz")
    arrays: dict[str, np.ndarray] = {}
    if cache_file is not None and os.path.isfile(cache_file):
        with np.load(cache_file, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files if k != "summary"}
            summary["read"] = json.loads(str(data["summary"]))["read"]
        summary["cache"] = "hit"
    else:
        summary["read"] = {}
        for split in SPLITS:
            waves = _load_split(index, split, clip_samples, progress)
            arrays[f"x_{split}"] = fe.batch(
                waves.x, lengths=waves.lengths, progress=progress
            )
            arrays[f"y_{split}"] = waves.y
            summary["read"][split] = waves.summary
        summary["cache"] = "off" if cache_file is None else "miss"
        if cache_file is not None:
            os.makedirs(os.path.dirname(cache_file), exist_ok=True)
            tmp = cache_file + f".tmp{os.getpid()}.npz"
            np.savez(tmp, summary=json.dumps({"read": summary["read"]}), **arrays)
            os.replace(tmp, cache_file)
    summary["cache_file"] = cache_file
    _log_summary(summary)
    return Dataset(
        x_train=arrays["x_train"],
        y_train=arrays["y_train"],
        x_val=arrays["x_val"],
        y_val=arrays["y_val"],
        x_test=arrays["x_test"],
        y_test=arrays["y_test"],
        labels=list(index.labels),
        frontend=fe.params,
        summary=summary,
        name=f"speech_commands{classes}",
    )


def _log_summary(summary: dict[str, Any]) -> None:
    skipped = summary["skipped_counts"]
    n_skipped = sum(skipped.values())
    msg = (
        f"speech_commands: {summary['root']}: {summary['wav_files_found']} WAV files "
        f"found; clips train/val/test = {summary['clips']['train']}/"
        f"{summary['clips']['val']}/{summary['clips']['test']}; skipped {n_skipped} "
        f"{skipped}; cache {summary.get('cache')}"
    )
    if n_skipped:
        logger.warning(msg + f" (first skipped: {summary['skipped']})")
    else:
        logger.info(msg)


__all__: Sequence[str] = (
    "BACKGROUND_NOISE_DIR",
    "COMMAND_WORDS",
    "LABELS_12",
    "SPEECH_COMMANDS_WORDS",
    "Clip",
    "SpeechCommandsIndex",
    "WavFormatError",
    "Waveforms",
    "default_cache_dir",
    "index_speech_commands",
    "speech_commands",
    "speech_commands_waveforms",
)
