"""The frontend params dict: its keys, its bounds and :func:`validate_params`.

A frontend (:class:`lmuformer_keras.features.base.Frontend`) is defined entirely by
one JSON-serialisable params dict; :data:`REQUIRED_KEYS` are its keys, the named
choices (:data:`WINDOWS`, :data:`LOG_MODES`, :data:`PAD_MODES`) and
:data:`INT_BOUNDS` limit its values.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

WINDOWS = ("hann_symmetric", "hann_periodic")
LOG_MODES = ("max", "add")
PAD_MODES = ("frames", "samples")

REQUIRED_KEYS = (
    "name",
    "version",
    "sample_rate",
    "input_scale",
    "remove_clip_mean",
    "frame_length",
    "frame_step",
    "remove_dc_offset",
    "preemphasis",
    "window",
    "fft_size",
    "num_mel_bins",
    "mel_low_hz",
    "mel_high_hz",
    "log_mode",
    "log_eps",
    "pad_mode",
    "target_frames",
    "pad_value",
    "norm_mean",
    "norm_scale",
)


MAX_FFT_SIZE = 32768
MAX_MEL_BINS = 512
MAX_TARGET_FRAMES = 100_000
INT_BOUNDS: dict[str, tuple[int, int]] = {
    "sample_rate": (1_000, 384_000),
    "frame_length": (1, MAX_FFT_SIZE),
    "frame_step": (1, MAX_FFT_SIZE),
    "fft_size": (2, MAX_FFT_SIZE),
    "num_mel_bins": (1, MAX_MEL_BINS),
    "target_frames": (1, MAX_TARGET_FRAMES),
}
"""Inclusive bounds of the integer params: params read from an untrusted metadata file
must not make the frontend allocate gigabytes (the mel matrix is
``(fft_size // 2 + 1) x num_mel_bins``)."""
FLOAT_KEYS = (
    "input_scale",
    "preemphasis",
    "mel_low_hz",
    "mel_high_hz",
    "log_eps",
    "pad_value",
    "norm_mean",
    "norm_scale",
)


def _check_numbers(params: dict[str, Any], name: Any) -> None:
    """Integer params within :data:`INT_BOUNDS`, float params finite numbers."""
    for key, (low, high) in INT_BOUNDS.items():
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(
                f"Frontend {name!r}: {key} must be an integer, got {key}={value!r}"
            )
        if not low <= value <= high:
            raise ValueError(
                f"Frontend {name!r}: {key} must be in [{low}, {high}], got "
                f"{key}={value!r}"
            )
    for key in FLOAT_KEYS:
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ValueError(
                f"Frontend {name!r}: {key} must be a number, got {key}={value!r}"
            )
        if not math.isfinite(value):
            raise ValueError(
                f"Frontend {name!r}: {key} must be finite, got {key}={value!r}"
            )


def validate_params(params: dict[str, Any]) -> None:
    """Checks a frontend params dict; raises ``ValueError`` naming the bad key.

    Besides the named choices and orderings, integer params must lie within
    :data:`INT_BOUNDS` and float params must be finite numbers.
    """
    if not isinstance(params, dict):
        raise ValueError(
            f"Frontend params must be a dict, got {type(params).__name__} "
            f"{params!r:.80}"
        )
    missing = [k for k in REQUIRED_KEYS if k not in params]
    if missing:
        raise ValueError(f"Frontend params: missing keys {missing}")
    name = params["name"]
    _check_numbers(params, name)
    if params["window"] not in WINDOWS:
        raise ValueError(
            f"Frontend {name!r}: window must be one of {WINDOWS}, got "
            f"window={params['window']!r}"
        )
    if params["log_mode"] not in LOG_MODES:
        raise ValueError(
            f"Frontend {name!r}: log_mode must be one of {LOG_MODES}, got "
            f"log_mode={params['log_mode']!r}"
        )
    if params["pad_mode"] not in PAD_MODES:
        raise ValueError(
            f"Frontend {name!r}: pad_mode must be one of {PAD_MODES}, got "
            f"pad_mode={params['pad_mode']!r}"
        )
    if not 0 < params["frame_step"] <= params["frame_length"] <= params["fft_size"]:
        raise ValueError(
            f"Frontend {name!r}: need 0 < frame_step <= frame_length <= fft_size, got "
            f"frame_step={params['frame_step']}, "
            f"frame_length={params['frame_length']}, "
            f"fft_size={params['fft_size']}"
        )
    if params["norm_scale"] == 0:
        raise ValueError(f"Frontend {name!r}: norm_scale must be != 0, got 0")
    if params["log_eps"] <= 0:
        raise ValueError(
            f"Frontend {name!r}: log_eps must be > 0, got log_eps={params['log_eps']}"
        )
    json.dumps(params)  # must be JSON-serialisable
