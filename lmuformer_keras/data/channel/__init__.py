"""Speaker and channel variety for rendered speech, seeded and reproducible.

Every function works on float64 mono signals (16 kHz unless ``sample_rate`` says
otherwise) with values in about [-1, 1]:

* speaker: :func:`speed_perturb` (Kaldi-style speed change, pitch and formants move
  together) and :func:`vtlp` (vocal-tract-length perturbation, a warp of the
  spectrum at the same length);
* room: :func:`room_impulse_response` (a random shoebox room, image sources from
  pyroomacoustics plus a late tail of the drawn RT60, or a generated IR) and
  :func:`reverberate`;
* device: :func:`band_limit` (wideband, telephone, 8 kHz narrowband or a random
  microphone);
* levels and mixing: :func:`peak_normalize`, :func:`rms_dbfs`, :func:`mix_at_snr`,
  :func:`babble` and :func:`make_noise`.

:func:`draw_channel` draws one utterance's speaker and channel as a JSON-friendly
dict (a room is stored as an integer ``ir_seed``, not as samples) and
:func:`apply_channel` applies it, deterministically given that dict.

This module imports only the standard library and NumPy at import time (SciPy and
pyroomacoustics are imported where they are used), so that ``kws_render``'s worker
processes still start quickly; it is importable as a package module and as a
sibling package of a script.
"""

from ._common import SAMPLE_RATE
from .config import NO_CHANNEL, ChannelConfig, apply_channel, draw_channel
from .device import BAND_KINDS, apply_mic, band_limit, draw_mic
from .levels import babble, mix_at_snr, peak_normalize, rms_dbfs
from .noise import NOISE_TYPES, make_noise
from .room import (
    ISM_MAX_ORDER,
    ROOM_HEIGHT_M,
    ROOM_LENGTH_M,
    ROOM_WIDTH_M,
    RT60_S,
    SPEED_OF_SOUND,
    WALL_MARGIN_M,
    reverberate,
    room_impulse_response,
)
from .room import _cached_ir as _cached_ir  # private; tests call its cache_clear()
from .speaker import speed_perturb, vtlp, vtlp_warp

__all__ = [
    "BAND_KINDS",
    "ISM_MAX_ORDER",
    "NOISE_TYPES",
    "NO_CHANNEL",
    "ROOM_HEIGHT_M",
    "ROOM_LENGTH_M",
    "ROOM_WIDTH_M",
    "RT60_S",
    "SAMPLE_RATE",
    "SPEED_OF_SOUND",
    "WALL_MARGIN_M",
    "ChannelConfig",
    "apply_channel",
    "apply_mic",
    "babble",
    "band_limit",
    "draw_channel",
    "draw_mic",
    "make_noise",
    "mix_at_snr",
    "peak_normalize",
    "reverberate",
    "rms_dbfs",
    "room_impulse_response",
    "speed_perturb",
    "vtlp",
    "vtlp_warp",
]
