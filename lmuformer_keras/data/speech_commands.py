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
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lmuformer_keras.data.dataset import Dataset
from lmuformer_keras.data.wav import WavFormatError, read_wav_int16
from lmuformer_keras.features import get_frontend
from lmuformer_keras.features.base import Frontend
from lmuformer_keras.features.progress import Progress

logger = logging.getLogger(__name__)

SPEECH_COMMANDS_WORDS: tuple[str, ...] = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow",
    "forward", "four", "go", "happy", "house", "learn", "left", "marvin", "nine", "no",
    "off", "on", "one", "right", "seven", "sheila", "six", "stop", "three", "tree",
    "two", "up", "visual", "wow", "yes", "zero",
)  # fmt: skip
COMMAND_WORDS: tuple[str, ...] = (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
)  # fmt: skip
SILENCE_LABEL = "_silence_"
UNKNOWN_LABEL = "_unknown_"
LABELS_12: tuple[str, ...] = (SILENCE_LABEL, UNKNOWN_LABEL, *COMMAND_WORDS)
BACKGROUND_NOISE_DIR = "_background_noise_"
VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"
SPLITS: tuple[str, ...] = ("train", "val", "test")
CLIP_SAMPLES = 16000
SAMPLE_RATE = 16000
_CACHE_VERSION = 2  # 2: keyed on each file's mtime_ns too
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


def _read_list(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Speech Commands list file missing: {path!r} (the v2 layout needs "
            f"{VALIDATION_LIST} and {TESTING_LIST} in the dataset root)"
        )
    with open(path, encoding="utf-8") as fh:
        entries = [line.strip().replace("\\", "/") for line in fh]
    return [e for e in entries if e]


@dataclass
class _Scan:
    """What :func:`_scan` found on disk (step 1 of :func:`index_speech_commands`)."""

    root: str
    words_on_disk: dict[str, list[str]]
    noise_files: list[str]
    skipped: dict[str, list[str]]
    file_sizes: dict[str, int]
    file_mtimes: dict[str, int]

    @property
    def noise_dir(self) -> str:
        return os.path.join(self.root, BACKGROUND_NOISE_DIR)

    def stamp(self, rel: str) -> None:
        info = os.stat(os.path.join(self.root, rel))
        self.file_sizes[rel] = info.st_size
        self.file_mtimes[rel] = info.st_mtime_ns


def _scan_word_folder(scan: _Scan, entry: str) -> None:
    full = os.path.join(scan.root, entry)
    wavs = []
    for name in sorted(os.listdir(full)):
        rel = f"{entry}/{name}"
        if name.startswith("."):
            scan.skipped["hidden"].append(rel)
        elif name.lower().endswith(".wav") and os.path.isfile(os.path.join(full, name)):
            wavs.append(rel)
            scan.stamp(rel)
        else:
            scan.skipped["non_wav_files"].append(rel)
    if not wavs:
        raise ValueError(f"Empty class folder (no .wav files): {full!r}")
    scan.words_on_disk[entry] = wavs


def _scan_noise(scan: _Scan) -> None:
    if not os.path.isdir(scan.noise_dir):
        return
    for name in sorted(os.listdir(scan.noise_dir)):
        rel = f"{BACKGROUND_NOISE_DIR}/{name}"
        if name.lower().endswith(".wav") and not name.startswith("."):
            scan.noise_files.append(rel)
            scan.stamp(rel)
        else:
            key = "non_wav_files" if not name.startswith(".") else "hidden"
            scan.skipped[key].append(rel)


def _scan(root: str) -> _Scan:
    """Scan: the word folders' WAVs and the background noise files, with stamps."""
    scan = _Scan(
        root=root,
        words_on_disk={},
        noise_files=[],
        skipped={
            "hidden": [],
            "non_wav_files": [],
            "unused_word_folders": [],
            "unused_word_files": [],
            "unused_list_entries": [],
            "non_word_folders": [],
        },
        file_sizes={},
        file_mtimes={},
    )
    for entry in sorted(os.listdir(root)):
        if entry.startswith("."):
            scan.skipped["hidden"].append(entry)
            continue
        if not os.path.isdir(os.path.join(root, entry)):
            continue
        if entry == BACKGROUND_NOISE_DIR:
            continue
        if entry.startswith("_") and entry.endswith("_"):
            # _like_this_ folders are not words (the synthetic set's _utterances_)
            scan.skipped["non_word_folders"].append(entry)
            continue
        _scan_word_folder(scan, entry)
    _scan_noise(scan)
    return scan


def _choose_words(scan: _Scan, classes: int | str) -> tuple[list[str], list[str]]:
    """``(used word folders, labels)`` for ``classes``; notes the unused folders."""
    words_on_disk, root = scan.words_on_disk, scan.root
    if classes == 35:
        missing = [w for w in SPEECH_COMMANDS_WORDS if w not in words_on_disk]
        if missing:
            raise ValueError(
                f"speech_commands(classes=35): word folders missing in {root!r}: "
                f"{missing}"
            )
        used_words, labels = list(SPEECH_COMMANDS_WORDS), list(SPEECH_COMMANDS_WORDS)
    elif classes == 12:
        missing = [w for w in COMMAND_WORDS if w not in words_on_disk]
        if missing:
            raise ValueError(
                f"speech_commands(classes=12): command word folders missing in "
                f"{root!r}: {missing}"
            )
        used_words, labels = sorted(words_on_disk), list(LABELS_12)
    else:
        used_words = sorted(words_on_disk)
        labels = list(used_words)
    scan.skipped["unused_word_folders"] = sorted(set(words_on_disk) - set(used_words))
    for word in scan.skipped["unused_word_folders"]:
        scan.skipped["unused_word_files"].extend(words_on_disk[word])
    return used_words, labels


def _split(
    scan: _Scan, used_words: list[str], val_list: list[str], test_list: list[str]
) -> dict[str, dict[str, list[str]]]:
    """Split: ``{split: {word: files}}`` from the validation and testing lists."""
    root = scan.root
    all_files = {rel for w in scan.words_on_disk for rel in scan.words_on_disk[w]}
    split_of: dict[str, str] = {}
    for split, entries, list_name in (
        ("val", val_list, VALIDATION_LIST),
        ("test", test_list, TESTING_LIST),
    ):
        for rel in entries:
            if rel not in all_files:
                raise ValueError(
                    f"{list_name} in {root!r} names {rel!r}, which is not a .wav file "
                    "in a word folder"
                )
            if rel in split_of and split_of[rel] != split:
                raise ValueError(
                    f"{rel!r} is in both {VALIDATION_LIST} and {TESTING_LIST} "
                    f"({root!r})"
                )
            split_of[rel] = split
    for rel in sorted(split_of):
        if rel.split("/")[0] not in used_words:
            scan.skipped["unused_list_entries"].append(rel)
    by_split: dict[str, dict[str, list[str]]] = {s: {} for s in SPLITS}
    for word in used_words:
        for rel in scan.words_on_disk[word]:
            by_split[split_of.get(rel, "train")].setdefault(word, []).append(rel)
    return by_split


def _silence_clips(
    scan: _Scan, rng, count: int, label: int, noise_lengths: dict[str, int]
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
    scan: _Scan,
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

    Three steps: scan the folder (:func:`_scan`), split the files by the validation
    and testing lists (:func:`_split`), sample the clips of each split (12 classes:
    :func:`_sample_12` adds sampled ``_unknown_`` and ``_silence_`` clips).

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
    val_list = _read_list(os.path.join(root, VALIDATION_LIST))
    test_list = _read_list(os.path.join(root, TESTING_LIST))
    scan = _scan(root)
    used_words, labels = _choose_words(scan, classes)
    by_split = _split(scan, used_words, val_list, test_list)

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
