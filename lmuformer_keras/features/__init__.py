"""Audio frontends, each defined once by a JSON-serialisable params dict.

``get_frontend("fbank128")`` (the paper's Kaldi-style 128 x 128 log-mel fbank) and
``get_frontend("micro40")`` (40 log-mel x 49 frames, for microcontrollers). Each
frontend has ``name``, ``params``, ``num_features``, ``frame_hop_ms``, ``sample_rate``
and ``__call__(waveform, sample_rate=16000) -> (frames, features)`` float32.
"""

from lmuformer_keras.features.base import Frontend
from lmuformer_keras.features.fbank128 import FBANK128_PARAMS
from lmuformer_keras.features.mel import hz_to_mel, mel_filterbank, mel_to_hz
from lmuformer_keras.features.micro40 import MICRO40_PARAMS, MICRO40_TOLERANCE
from lmuformer_keras.features.params import validate_params
from lmuformer_keras.features.registry import (
    compute_features,
    get_frontend,
    list_frontends,
)
from lmuformer_keras.features.stream import FrontendStream

__all__ = [
    "FBANK128_PARAMS",
    "MICRO40_PARAMS",
    "MICRO40_TOLERANCE",
    "Frontend",
    "FrontendStream",
    "compute_features",
    "get_frontend",
    "hz_to_mel",
    "list_frontends",
    "mel_filterbank",
    "mel_to_hz",
    "validate_params",
]
