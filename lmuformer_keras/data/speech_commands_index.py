"""Indexing a Speech Commands folder: its labels and the clips of every split.

:func:`index_speech_commands` scans the folder and splits its files
(:mod:`lmuformer_keras.data.speech_commands_scan`), then samples each split's clips
(12 classes: sampled ``_unknown_`` clips and ``_silence_`` crops of the background
noise); the splits, classes and sampling are described in
:mod:`lmuformer_keras.data.speech_commands`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lmuformer_keras.data.speech_commands_layout import (
    CLIP_SAMPLES,
    COMMAND_WORDS,
    SAMPLE_RATE,
    SILENCE_LABEL,
    SPLITS,
    TESTING_LIST,
    UNKNOWN_LABEL,
    VALIDATION_LIST,
)
from lmuformer_keras.data.speech_commands_scan import (
    FolderScan,
    choose_words,
    read_list,
    scan_folder,
    split_by_lists,
)
from lmuformer_keras.data.wav import read_wav_int16

_MAX_LISTED = 20


@dataclass
class Clip:
    """One example: a WAV (``relpath``) or a silence crop of a noise file."""

    label: int
    relpath: str | None = None
    noise_file: str | None = None
    noise_offset: int = 0
    noise_gain: float = 0.0


@dataclass
class SpeechCommandsIndex:
    """The scanned dataset: labels, clips per split and the scan summary."""

    root: str
    labels: list[str]
    clips: dict[str, list[Clip]]
    summary: dict[str, Any]
    noise_files: list[str] = field(default_factory=list)
    file_sizes: dict[str, int] = field(default_factory=dict)
    file_mtimes: dict[str, int] = field(default_factory=dict)
    """``st_mtime_ns`` of every file (every 1-s clip has the same size, so the feature
    cache keys on size and modification time to see an edited clip)."""


def _silence_clips(
    scan: FolderScan, rng, count: int, label: int, noise_lengths: dict[str, int]
) -> list[Clip]:
    """``count`` one-second windows cut at random from the background noise."""
    if not count:
        return []
    if not scan.noise_files:
        raise ValueError(
            f"speech_commands(classes=12): '_silence_' clips are cut from "
            f"{scan.noise_dir!r}, which has no .wav files (use silence_percentage=0)"
        )
    for rel in scan.noise_files:
        if rel not in noise_lengths:
            noise_lengths[rel] = read_wav_int16(
                os.path.join(scan.root, rel), SAMPLE_RATE
            ).shape[0]
    silence = []
    for _ in range(count):
        rel = scan.noise_files[int(rng.integers(len(scan.noise_files)))]
        span = max(noise_lengths[rel] - CLIP_SAMPLES, 0)
        silence.append(
            Clip(
                label,
                None,
                rel,
                int(rng.integers(span + 1)),
                float(rng.uniform(0.0, 1.0)),
            )
        )
    return silence


def _sample_12(
    scan: FolderScan,
    words: dict[str, list[str]],
    used_words: list[str],
    labels: list[str],
    rng,
    percentages: tuple[float, float | None],
    noise_lengths: dict[str, int],
) -> tuple[list[Clip], dict[str, int]]:
    """Sample (12 classes): the command words, sampled unknowns and silences."""
    silence_percentage, unknown_percentage = percentages
    known = [
        Clip(labels.index(w), rel) for w in COMMAND_WORDS for rel in words.get(w, [])
    ]
    pool = [
        rel for w in used_words if w not in COMMAND_WORDS for rel in words.get(w, [])
    ]
    n_known = len(known)
    if unknown_percentage is None:
        n_unknown = len(pool)
    else:
        n_unknown = min(len(pool), math.ceil(n_known * unknown_percentage / 100.0))
    chosen = rng.permutation(len(pool))[:n_unknown] if pool else []
    unknown = [Clip(labels.index(UNKNOWN_LABEL), pool[i]) for i in sorted(chosen)]
    silence = _silence_clips(
        scan,
        rng,
        math.ceil(n_known * silence_percentage / 100.0),
        labels.index(SILENCE_LABEL),
        noise_lengths,
    )
    sampling = {
        "known": n_known,
        "unknown_available": len(pool),
        "unknown_sampled": len(unknown),
        "silence": len(silence),
    }
    return silence + unknown + known, sampling


def index_speech_commands(
    path: str | os.PathLike,
    classes: int | str = 35,
    seed: int = 0,
    silence_percentage: float = 10.0,
    unknown_percentage: float | None = 10.0,
) -> SpeechCommandsIndex:
    """Scans a Speech Commands folder; returns labels and per-split clip lists.

    Three steps: scan the folder (:func:`scan_folder`), split the files by the
    validation and testing lists (:func:`split_by_lists`), sample the clips of each
    split (12 classes: :func:`_sample_12` adds sampled ``_unknown_`` and ``_silence_``
    clips).

    Raises:
        FileNotFoundError: missing root or list file.
        ValueError: bad ``classes``, missing / empty word folders, list entries that
            are not on disk or in both lists, no background noise for ``_silence_``.
    """
    root = os.path.abspath(os.fspath(path))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"Speech Commands folder not found: {root!r}")
    if classes not in (35, 12, "all"):
        raise ValueError(
            f"speech_commands: classes must be 35, 12 or 'all', got {classes!r}"
        )
    val_list = read_list(os.path.join(root, VALIDATION_LIST))
    test_list = read_list(os.path.join(root, TESTING_LIST))
    scan = scan_folder(root)
    used_words, labels = choose_words(scan, classes)
    by_split = split_by_lists(scan, used_words, val_list, test_list)

    clips: dict[str, list[Clip]] = {s: [] for s in SPLITS}
    sampling: dict[str, Any] = {}
    noise_lengths: dict[str, int] = {}
    for split_index, split in enumerate(SPLITS):
        words = by_split[split]
        if classes != 12:
            for word in used_words:
                label = labels.index(word)
                clips[split].extend(Clip(label, rel) for rel in words.get(word, []))
            continue
        clips[split], sampling[split] = _sample_12(
            scan,
            words,
            used_words,
            labels,
            np.random.default_rng([seed, split_index]),
            (silence_percentage, unknown_percentage),
            noise_lengths,
        )
    summary: dict[str, Any] = {
        "root": root,
        "classes": classes,
        "labels": labels,
        "seed": seed,
        "silence_percentage": silence_percentage,
        "unknown_percentage": unknown_percentage,
        "wav_files_found": sum(len(v) for v in scan.words_on_disk.values()),
        "noise_files": scan.noise_files,
        "clips": {s: len(clips[s]) for s in SPLITS},
        "class_counts": {
            s: np.bincount([c.label for c in clips[s]], minlength=len(labels)).tolist()
            for s in SPLITS
        },
        "skipped_counts": {k: len(v) for k, v in scan.skipped.items()},
        "skipped": {k: v[:_MAX_LISTED] for k, v in scan.skipped.items()},
    }
    if classes == 12:
        summary["sampling_12"] = sampling
    return SpeechCommandsIndex(
        root,
        labels,
        clips,
        summary,
        scan.noise_files,
        scan.file_sizes,
        scan.file_mtimes,
    )
