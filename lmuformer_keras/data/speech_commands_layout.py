"""Names of the Speech Commands v2 folder layout: words, labels, folders, list files.

The layout is described in :mod:`lmuformer_keras.data.speech_commands` (which reads
it and re-exports the public names); :mod:`lmuformer_keras.data.synthetic_kws` writes
it.
"""

from __future__ import annotations

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
