"""``micro40``: the microcontroller frontend (40 log-mel x 49 frames per second).

Chosen to be cheap and exact to re-implement in C (MCU) and Java (Android):

- int16 audio at 16 kHz, ``x = sample / 32768`` (no clip mean removal, no
  pre-emphasis, no per-frame DC removal: every frame depends only on its own samples);
- 30 ms window (480 samples), 20 ms hop (320 samples), frames only where all samples
  exist: ``num_frames(N) = 0 if N < 480 else 1 + (N - 480) // 320`` (49 for 1 s).
  Streaming: the first frame once 480 samples are buffered, then one frame per 320
  new samples (keep the last 160 samples of each window for the next one);
- periodic Hann ``w[n] = 0.5 - 0.5 cos(2 pi n / 480)``, zero-pad to 512, real FFT, power
  ``|X_k|^2`` for ``k = 0..256`` (unscaled);
- 40 triangular mel filters linear in ``mel = 1127 ln(1 + f/700)``, edges evenly spaced
  in mel from 20 Hz to 7600 Hz, bin ``k`` at ``k * 31.25`` Hz, peak weight 1 (see
  ``features/mel.py`` for the exact formula, or ``Frontend.mel_weights()``);
- ``log(E + 1e-6)``, then ``(log_mel - norm_mean) / norm_scale`` with fixed constants;
- clips are zero-padded at the end (in samples) to 15840 samples = 49 frames and cropped
  to 49 frames.

``norm_mean = -6`` / ``norm_scale = 10`` are the mean (-6.03) and twice the standard
deviation (2 x 4.87) of the raw log-mel over the training split of the default
synthetic keyword set (``data.synthetic_kws``), rounded; fixed constants, so apps never
need data statistics (normalised features then have std ~0.5, like fbank128's).

Tolerance: a float32 implementation that follows these params agrees with the NumPy
float64 reference within ``MICRO40_TOLERANCE`` (absolute, normalised units).
"""

from __future__ import annotations

from typing import Any

MICRO40_TOLERANCE = 2e-3

MICRO40_PARAMS: dict[str, Any] = {
    "name": "micro40",
    "version": 1,
    "description": (
        "MCU log-mel: int16/32768, 30 ms periodic Hann, 20 ms hop, 512 FFT power, 40 "
        "mel 20-7600 Hz (1127*ln(1+f/700), triangles linear in mel), log(E + 1e-6), "
        "(x - norm_mean) / norm_scale, 49 frames per 1 s clip"
    ),
    "sample_rate": 16000,
    "input_scale": 1.0 / 32768.0,
    "remove_clip_mean": False,
    "frame_length": 480,
    "frame_step": 320,
    "remove_dc_offset": False,
    "preemphasis": 0.0,
    "window": "hann_periodic",
    "fft_size": 512,
    "num_mel_bins": 40,
    "mel_low_hz": 20.0,
    "mel_high_hz": 7600.0,
    "mel_scale": "1127*ln(1+f/700)",
    "mel_filter": "triangles linear in mel, edges evenly spaced in mel, peak 1",
    "frames_for_n_samples": "0 if N < 480 else 1 + (N - 480) // 320",
    "log_mode": "add",
    "log_eps": 1e-6,
    "pad_mode": "samples",
    "target_frames": 49,
    "pad_value": 0.0,
    "norm_mean": -6.0,
    "norm_scale": 10.0,
    "tolerance": MICRO40_TOLERANCE,
}
