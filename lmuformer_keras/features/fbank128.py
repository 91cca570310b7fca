"""``fbank128``: the paper's frontend (Kaldi-style log-mel fbank, 128 x 128).

Equivalent to the reference pipeline ``torchaudio.compliance.kaldi.fbank(waveform -
waveform.mean(), htk_compat=True, sample_frequency=16000, use_energy=False,
window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)`` on a float
waveform in [-1, 1], zero-padded (raw log units) / cropped to 128 frames, then
``(fbank + 6.845978) / (2 * 5.5654526)``.

Kaldi steps included (Kaldi defaults unless the paper sets them):
- framing: 25 ms (400 samples) windows every 10 ms (160), ``snip_edges=true``
  (98 frames for 16000 samples);
- no dither (``dither=0``);
- ``remove_dc_offset=true``: the frame mean is subtracted from each frame;
- ``preemphasis_coefficient=0.97`` inside each frame (``y[0] -= 0.97 y[0]``);
- ``window_type=hanning``: symmetric Hann ``0.5 - 0.5 cos(2 pi n / 399)`` (not Povey);
- ``round_to_power_of_two=true``: FFT size 512; power spectrum (``use_power=true``);
- 128 triangular mel bins on ``1127 ln(1 + f/700)``, 20 Hz .. 8000 Hz (``low_freq=20``,
  ``high_freq=0`` = Nyquist), no VTLN;
- ``use_log_fbank=true`` with floor ``log(max(E, FLT_EPSILON))``;
- ``use_energy=false``.
Not included: dither, energy, VTLN, ``snip_edges=false``.

As in Kaldi / torchaudio, mel channel 3 falls between two FFT bins (31.25 Hz apart) and
has all-zero weights, so it is always ``log(FLT_EPSILON)`` (normalised: -0.8172).
The whole-clip mean removal is redundant with the per-frame DC removal (a constant
offset cancels exactly), so this frontend also streams (``Frontend.streamer``).
"""

from __future__ import annotations

from typing import Any

FBANK128_PARAMS: dict[str, Any] = {
    "name": "fbank128",
    "version": 1,
    "description": (
        "Kaldi-style log-mel fbank as in LMUFormer/AST: clip mean removed, 25 ms "
        "symmetric Hann, 10 ms hop, per-frame DC removal, preemphasis 0.97, 512 FFT "
        "power, 128 mel 20-8000 Hz, log(max(E, FLT_EPSILON)), frames zero-padded to "
        "128 in log units, then (x - norm_mean) / norm_scale"
    ),
    "sample_rate": 16000,
    "input_scale": 1.0 / 32768.0,
    "remove_clip_mean": True,
    "frame_length": 400,
    "frame_step": 160,
    "remove_dc_offset": True,
    "preemphasis": 0.97,
    "window": "hann_symmetric",
    "fft_size": 512,
    "num_mel_bins": 128,
    "mel_low_hz": 20.0,
    "mel_high_hz": 8000.0,
    "mel_scale": "1127*ln(1+f/700)",
    "mel_filter": "triangles linear in mel, edges evenly spaced in mel, peak 1",
    "frames_for_n_samples": "0 if N < 400 else 1 + (N - 400) // 160",
    "log_mode": "max",
    "log_eps": 1.1920928955078125e-07,
    "pad_mode": "frames",
    "target_frames": 128,
    "pad_value": 0.0,
    "norm_mean": -6.845978,
    "norm_scale": 2.0 * 5.5654526,
    "tolerance": 2e-3,
}
