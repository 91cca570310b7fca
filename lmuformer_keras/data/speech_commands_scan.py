"""Step 1 and 2 of indexing a Speech Commands folder: scan it, split its files.

:func:`scan_folder` finds the word folders' WAVs and the background noise files (with
their sizes and modification times, for the feature cache); :func:`choose_words`
picks the word folders a class set uses; :func:`split_by_lists` assigns every file to
``train``, ``val`` or ``test`` by the validation and testing lists. Skipped entries
are counted in ``FolderScan.skipped`` (see :mod:`lmuformer_keras.data.speech_commands`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from lmuformer_keras.data.speech_commands_layout import (
    BACKGROUND_NOISE_DIR,
    COMMAND_WORDS,
    LABELS_12,
    SPEECH_COMMANDS_WORDS,
    SPLITS,
    TESTING_LIST,
    VALIDATION_LIST,
)


def read_list(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Speech Commands list file missing: {path!r} (the v2 layout needs "
            f"{VALIDATION_LIST} and {TESTING_LIST} in the dataset root)"
        )
    with open(path, encoding="utf-8") as fh:
        entries = [line.strip().replace("\\", "/") for line in fh]
    return [e for e in entries if e]


@dataclass
class FolderScan:
    """What :func:`scan_folder` found on disk.

    Step 1 of :func:`lmuformer_keras.data.speech_commands_index.index_speech_commands`.
    """

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


def _scan_word_folder(scan: FolderScan, entry: str) -> None:
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


def _scan_noise(scan: FolderScan) -> None:
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


def scan_folder(root: str) -> FolderScan:
    """Scan: the word folders' WAVs and the background noise files, with stamps."""
    scan = FolderScan(
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


def choose_words(scan: FolderScan, classes: int | str) -> tuple[list[str], list[str]]:
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


def split_by_lists(
    scan: FolderScan, used_words: list[str], val_list: list[str], test_list: list[str]
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
