"""Datasets: Speech Commands layout loaders, synthetic keywords, toy sequences.

Every loader returns a :class:`Dataset` (``x_train, y_train, x_val, y_val, x_test,
y_test, labels, frontend, summary``).
"""

from lmuformer_keras.data.augment import (
    FeatureAugmenter,
    add_uniform_noise,
    frequency_mask,
    mixup,
    one_hot,
    time_mask,
    time_shift,
)
from lmuformer_keras.data.dataset import Dataset
from lmuformer_keras.data.speech_commands import (
    Waveforms,
    speech_commands,
    speech_commands_waveforms,
)
from lmuformer_keras.data.speech_commands_index import (
    SpeechCommandsIndex,
    index_speech_commands,
)
from lmuformer_keras.data.speech_commands_layout import (
    COMMAND_WORDS,
    LABELS_12,
    SPEECH_COMMANDS_WORDS,
)
from lmuformer_keras.data.synthetic_kws import generate_synthetic_kws
from lmuformer_keras.data.toy import digits, mnist1d, psmnist
from lmuformer_keras.data.wav import WavFormatError, read_wav_int16, write_wav_int16

__all__ = [
    "COMMAND_WORDS",
    "LABELS_12",
    "SPEECH_COMMANDS_WORDS",
    "Dataset",
    "FeatureAugmenter",
    "SpeechCommandsIndex",
    "WavFormatError",
    "Waveforms",
    "add_uniform_noise",
    "digits",
    "frequency_mask",
    "generate_synthetic_kws",
    "index_speech_commands",
    "mixup",
    "mnist1d",
    "one_hot",
    "psmnist",
    "read_wav_int16",
    "speech_commands",
    "speech_commands_waveforms",
    "time_mask",
    "time_shift",
    "write_wav_int16",
]
