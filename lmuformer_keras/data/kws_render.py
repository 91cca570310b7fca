"""Rendering of synthetic keyword clips; also a worker script for fresh processes.

espeak-ng keeps state between utterances that is not reset by any API (its pitch
"flutter" phase advances with every sample it makes), so the same call gives slightly
different audio depending on what was spoken before in that process. To make
``synthetic_kws`` deterministic, every fixed chunk of voices is rendered in a fresh
process running this file as a script (``python kws_render.py`` with a JSON task on
stdin, one ``KWS_RESULT {json}`` line per voice on stdout). This file imports only
NumPy and the two standalone sibling modules ``espeak.py`` and ``wav.py`` (by path
when run as a script), so a worker starts in well under a second.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import sys
from typing import Any

import numpy as np

if __package__:
    from .espeak import get_espeak
    from .wav import write_wav_int16
else:  # run as a script: sibling modules are importable from sys.path[0]
    from espeak import get_espeak  # type: ignore[no-redef]
    from wav import write_wav_int16  # type: ignore[no-redef]

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
NOISE_TYPES: tuple[str, ...] = ("white", "pink", "brown", "hum50", "hum60")
RESULT_PREFIX = "KWS_RESULT "


def speaker_id(voice: str) -> str:
    """8 hex characters standing for a voice in file names (like SC's speaker hash)."""
    return hashlib.sha1(voice.encode()).hexdigest()[:8]


def clip_rng(seed: int, voice: str, word: str, k: int) -> np.random.Generator:
    """The RNG of one clip, from ``(seed, voice, word, k)`` only."""
    digest = hashlib.sha256(f"{seed}|{voice}|{word}|{k}".encode()).digest()
    return np.random.default_rng(list(np.frombuffer(digest[:16], dtype=np.uint32)))


def make_noise(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Noise of ``kind`` (white, pink, brown, hum50, hum60), float64, RMS 0.1.

    Pink / brown: white noise shaped by ``1/sqrt(f)`` / ``1/f`` in the FFT domain.
    Hum: 8 harmonics of 50 or 60 Hz with random amplitudes (``U(0.2, 1) / h``) and
    phases, plus a little white noise.
    """
    n = int(seconds * SAMPLE_RATE)
    if kind in ("white", "pink", "brown"):
        white = rng.standard_normal(n)
        if kind == "white":
            x = white
        else:
            spec = np.fft.rfft(white)
            f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
            f[0] = f[1]
            spec /= np.sqrt(f) if kind == "pink" else f
            spec[0] = 0.0
            x = np.fft.irfft(spec, n)
    elif kind in ("hum50", "hum60"):
        f0 = 50.0 if kind == "hum50" else 60.0
        t = np.arange(n) / SAMPLE_RATE
        x = np.zeros(n)
        for h in range(1, 9):
            amp = rng.uniform(0.2, 1.0) / h
            x += amp * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi))
        x += 0.05 * rng.standard_normal(n)
    else:
        raise ValueError(f"make_noise: kind must be one of {NOISE_TYPES}, got {kind!r}")
    return 0.1 * x / np.sqrt(np.mean(x**2))


@functools.lru_cache(maxsize=2)
def noise_bank(seed: int, seconds: float) -> dict[str, np.ndarray]:
    """The background noises (cached per process; callers must not modify them)."""
    return {
        kind: make_noise(kind, seconds, np.random.default_rng([seed, 7919, i]))
        for i, kind in enumerate(NOISE_TYPES)
    }


@functools.lru_cache(maxsize=4)
def resample_filter(up: int, down: int) -> np.ndarray:
    """``scipy.signal.firwin(20 * max(up, down) + 1, 1 / max(up, down),
    window=("kaiser", 5.0))``: the default filter of ``resample_poly``, in NumPy."""
    rate = max(up, down)
    num_taps = 2 * 10 * rate + 1
    m = np.arange(num_taps) - (num_taps - 1) / 2.0
    cutoff = 1.0 / rate
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(num_taps, 5.0)
    return h / h.sum()


@functools.lru_cache(maxsize=4)
def _polyphase(up: int, down: int) -> tuple[np.ndarray, int, int]:
    """Polyphase table ``H[r, j] = h[r + j * up]`` of the padded, gain-``up`` filter."""
    h = resample_filter(up, down) * up
    half_len = (h.size - 1) // 2
    n_pre_pad = down - half_len % down
    n_pre_remove = (half_len + n_pre_pad) // down
    h = np.concatenate([np.zeros(n_pre_pad), h])
    taps = -(-h.size // up)
    h = np.concatenate([h, np.zeros(taps * up - h.size)])
    return h.reshape(taps, up).T.copy(), n_pre_remove, taps


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Equal to ``scipy.signal.resample_poly(x, up, down)`` (default window) with
    ``up / down = rate_out / rate_in`` reduced (320 / 441 for 22050 -> 16000 Hz).

    ``y[m] = sum_j x[i_m - j] H[r_m, j]`` with ``t = (m + n_pre_remove) * down``,
    ``i_m = t // up``, ``r_m = t % up``. Written with NumPy so that worker processes
    start without importing SciPy; ``tests/test_synthetic_kws.py`` checks it against
    SciPy.
    """
    x = np.asarray(x, dtype=np.float64)
    if rate_in == rate_out:
        return x
    g = math.gcd(rate_out, rate_in)
    up, down = rate_out // g, rate_in // g
    table, n_pre_remove, taps = _polyphase(up, down)
    n_out = -(-x.size * up // down)
    t = (np.arange(n_out) + n_pre_remove) * down
    i, r = t // up, t % up
    # windows[q] = x_pad[q : q + taps] = x[q - taps + 1 .. q] reversed below
    x_pad = np.concatenate([np.zeros(taps - 1), x, np.zeros(taps)])
    windows = np.lib.stride_tricks.sliding_window_view(x_pad, taps)
    rows = windows[np.minimum(i, x.size + taps - 1)][:, ::-1]
    return np.einsum("mj,mj->m", rows, table[r])


def trim(x: np.ndarray, sample_rate: int, rel_threshold: float = 0.02) -> np.ndarray:
    """Cuts leading / trailing samples below ``rel_threshold`` x peak (10 ms kept)."""
    if x.size == 0:
        return x
    loud = np.flatnonzero(np.abs(x) >= rel_threshold * np.abs(x).max())
    if loud.size == 0:
        return x[:0]
    margin = int(0.01 * sample_rate)
    return x[max(loud[0] - margin, 0) : loud[-1] + margin + 1]


def render_clip(
    word: str, voice: str, k: int, params: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    """One 1 s int16 clip (steps 1-6 of ``synthetic_kws``) and what was drawn."""
    rng = clip_rng(params["seed"], voice, word, k)
    lo, hi = params["rate_range"]
    rate = int(rng.integers(lo, hi + 1))
    lo, hi = params["pitch_range"]
    pitch = int(rng.integers(lo, hi + 1))
    lo, hi = params["intonation_range"]
    inton = int(rng.integers(lo, hi + 1))
    espeak = get_espeak()
    rand_seed = int(rng.integers(0, 2**31))
    raw = espeak.synth(
        word, voice, rate=rate, pitch=pitch, pitch_range=inton, rand_seed=rand_seed
    )
    speech = trim(raw.astype(np.float64) / 32768.0, espeak.sample_rate)
    if speech.size == 0:
        raise RuntimeError(f"espeak-ng produced no audio for {word!r} with {voice!r}")
    speech = resample(speech, espeak.sample_rate, SAMPLE_RATE)
    cropped = speech.size > CLIP_SAMPLES
    if cropped:
        start = (speech.size - CLIP_SAMPLES) // 2
        speech = speech[start : start + CLIP_SAMPLES]
    peak_db = rng.uniform(*params["peak_dbfs"])
    speech *= 10.0 ** (peak_db / 20.0) / max(np.abs(speech).max(), 1e-9)
    offset = int(rng.integers(0, CLIP_SAMPLES - speech.size + 1))
    clip = np.zeros(CLIP_SAMPLES)
    clip[offset : offset + speech.size] = speech
    info: dict[str, Any] = {"rate": rate, "pitch": pitch, "cropped": cropped}
    if rng.uniform() < params["noise_probability"]:
        noise = noise_bank(params["seed"], params["noise_seconds"])
        kind = NOISE_TYPES[int(rng.integers(len(NOISE_TYPES)))]
        src = noise[kind]
        start = int(rng.integers(0, src.size - CLIP_SAMPLES + 1))
        seg = src[start : start + CLIP_SAMPLES]
        snr = rng.uniform(*params["snr_db"])
        gain = np.sqrt(np.mean(speech**2) / (np.mean(seg**2) * 10.0 ** (snr / 10.0)))
        clip += gain * seg
        info.update(noise=kind, snr_db=round(float(snr), 2))
    out = np.clip(np.round(clip * 32768.0), -32768, 32767).astype(np.int16)
    return out, info


def render_voice(voice: str, params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """All clips of one voice, written to ``out_dir``; returns files and counts."""
    spk = speaker_id(voice)
    cropped = 0
    files = []
    for word in params["words"]:
        for k in range(params["clips_per_word_per_voice"]):
            clip, info = render_clip(word, voice, k, params)
            cropped += int(info["cropped"])
            rel = f"{word}/{spk}_nohash_{k}.wav"
            write_wav_int16(os.path.join(out_dir, rel), clip, SAMPLE_RATE)
            files.append(rel)
    return {"voice": voice, "files": files, "cropped": cropped}


def main() -> None:
    """Worker: task ``{"voices", "params", "out_dir"}`` on stdin, results on stdout."""
    task = json.load(sys.stdin)
    for voice in task["voices"]:
        result = render_voice(voice, task["params"], task["out_dir"])
        sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
