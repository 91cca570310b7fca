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
sibling file of a script.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
NOISE_TYPES: tuple[str, ...] = ("white", "pink", "brown", "hum50", "hum60")
BAND_KINDS: tuple[str, ...] = ("wideband", "telephone", "narrowband_8k", "mic")

#: Room ranges of :func:`room_impulse_response` (metres, seconds).
ROOM_LENGTH_M: tuple[float, float] = (3.0, 10.0)
ROOM_WIDTH_M: tuple[float, float] = (3.0, 8.0)
ROOM_HEIGHT_M: tuple[float, float] = (2.4, 4.0)
RT60_S: tuple[float, float] = (0.15, 0.9)
WALL_MARGIN_M = 0.5
SPEED_OF_SOUND = 343.0
#: Image-source order used with pyroomacoustics (later reflections: a noise tail).
ISM_MAX_ORDER = 10
#: ``ln(10**6) / 2``: amplitude decay rate times RT60 (60 dB energy in RT60 seconds).
_DECAY = 3.0 * math.log(10.0)

_STFT_NPERSEG = 512
_STFT_HOP = 128


def _signal():
    """``scipy.signal``, imported on first use (keeps script workers light)."""
    import scipy.signal

    return scipy.signal


# --------------------------------------------------------------------------- noise


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


# ------------------------------------------------------------------------- speaker


@functools.lru_cache(maxsize=512)
def _resample_window(up: int, down: int) -> np.ndarray:
    """``resample_poly``'s default filter, designed once per ``(up, down)``."""
    rate = max(up, down)
    h = _signal().firwin(2 * 10 * rate + 1, 1.0 / rate, window=("kaiser", 5.0))
    h.setflags(write=False)
    return h


def speed_perturb(
    x: np.ndarray, factor: float, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Kaldi-style speed perturbation: the signal played ``factor`` times faster.

    With ``factor ~ p / q`` (``Fraction(factor).limit_denominator(100)``) the signal
    is resampled by ``q / p`` and kept at the same rate:
    ``y[m] = x_c(m * p / q / fs)`` for the band-limited continuous signal ``x_c``,
    so ``len(y) = ceil(len(x) * q / p) ~ len(x) / factor`` and every frequency
    (pitch and formants) is multiplied by ``factor``.

    Args:
        x: the signal.
        factor: speed factor, > 0 (> 1: faster, shorter, higher).
        sample_rate: unused by the maths (the change is relative); kept for a
            uniform signature.

    Returns:
        The perturbed signal (float64, a new array).
    """
    del sample_rate
    if not factor > 0:
        raise ValueError(f"speed_perturb: factor must be > 0, got {factor!r}")
    x = np.asarray(x, dtype=np.float64)
    ratio = Fraction(factor).limit_denominator(100)
    p, q = ratio.numerator, ratio.denominator
    if p == q or x.size == 0:
        return x.copy()
    return _signal().resample_poly(x, q, p, window=_resample_window(q, p))


def vtlp_warp(
    f: np.ndarray, alpha: float, nyquist: float, boundary_hz: float = 4800.0
) -> np.ndarray:
    """The piecewise-linear VTLP frequency warp of Jaitly & Hinton (2013).

    ``f_b = boundary * min(alpha, 1) / alpha``; ``f' = alpha * f`` for ``f <= f_b``,
    else ``f' = N - (N - alpha f_b) / (N - f_b) * (N - f)`` (``N`` the Nyquist
    frequency), which maps ``[f_b, N]`` linearly onto ``[alpha f_b, N]``.
    """
    fb = boundary_hz * min(alpha, 1.0) / alpha
    upper = nyquist - (nyquist - alpha * fb) / (nyquist - fb) * (nyquist - f)
    return np.where(f <= fb, alpha * f, upper)


def _vtlp_unwarp(f: np.ndarray, alpha: float, nyquist: float, boundary_hz: float):
    """Inverse of :func:`vtlp_warp`: the source frequency of each output frequency."""
    fb = boundary_hz * min(alpha, 1.0) / alpha
    lower = f / alpha
    upper = nyquist - (nyquist - f) * (nyquist - fb) / (nyquist - alpha * fb)
    return np.where(f <= alpha * fb, lower, upper)


def vtlp(
    x: np.ndarray,
    alpha: float,
    sample_rate: int = SAMPLE_RATE,
    boundary_hz: float = 4800.0,
    keep_phase: bool = False,
) -> np.ndarray:
    """Vocal-tract-length perturbation: the spectrum warped by :func:`vtlp_warp`.

    STFT ``X[k, m]`` (512-sample Hann window, hop 128); the output magnitude at bin
    frequency ``f'`` is the input magnitude at ``f = w^-1(f')``, linearly
    interpolated along frequency: ``|Y[k', m]| = |X|(w^-1(f_k'), m)``. Length is
    kept (``istft``, cropped to ``len(x)``).

    Phase: by default a phase vocoder. The instantaneous frequency of source bin
    ``k`` is ``f_i[k, m] = f_k + princarg(phi[k, m] - phi[k, m-1] - 2 pi f_k H / fs)
    fs / (2 pi H)``; output bin ``k'`` (source bin ``s = round(w^-1(f_k') / df)``)
    gets ``psi[k', m] = phi[s, 0] + sum_{j=1..m} 2 pi w(f_i[s, j]) H / fs``, so a
    sinusoid at ``f`` comes out at ``w(f)``; with ``alpha = 1`` this is
    ``phi[k, m]`` (mod 2 pi) and the output equals the input up to rounding.
    ``keep_phase=True`` keeps each bin's original phase instead
    (``Y = |Y| X / |X|``): cheaper, but the frame-to-frame phase advance then still
    says "input frequency", so sinusoids mostly stay where they were (a 1 kHz tone
    with ``alpha = 1.05`` stays at 1 kHz) and lose level; only the envelope moves.

    Args:
        x: the signal.
        alpha: warp factor (> 1 moves the spectrum up: a shorter vocal tract).
        sample_rate: sample rate in Hz.
        boundary_hz: ``boundary`` above; ``boundary * min(alpha, 1)`` must be below
            the Nyquist frequency.
        keep_phase: keep the original phase (see above).

    Returns:
        The warped signal, ``len(x)`` samples (float64, a new array).
    """
    if not alpha > 0:
        raise ValueError(f"vtlp: alpha must be > 0, got {alpha!r}")
    nyquist = sample_rate / 2.0
    if boundary_hz * min(alpha, 1.0) >= nyquist:
        raise ValueError(
            f"vtlp: boundary_hz * min(alpha, 1) = {boundary_hz * min(alpha, 1.0)} "
            f"must be below the Nyquist frequency {nyquist}"
        )
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if n == 0:
        return x.copy()
    sig = _signal()
    xp = np.pad(x, (0, max(_STFT_NPERSEG - n, 0)))
    stft_args = {
        "fs": sample_rate,
        "window": "hann",
        "nperseg": _STFT_NPERSEG,
        "noverlap": _STFT_NPERSEG - _STFT_HOP,
    }
    freqs, _, spec = sig.stft(xp, **stft_args)
    num_bins = freqs.size
    df = sample_rate / _STFT_NPERSEG
    pos = _vtlp_unwarp(freqs, alpha, nyquist, boundary_hz) / df
    i0 = np.clip(np.floor(pos).astype(np.intp), 0, num_bins - 2)
    frac = (pos - i0)[:, None]
    mag = np.abs(spec)
    warped = mag[i0] * (1.0 - frac) + mag[i0 + 1] * frac
    if keep_phase:
        phase = np.where(mag > 0, spec / np.where(mag > 0, mag, 1.0), 1.0)
    else:
        phi = np.angle(spec)
        expected = (2 * np.pi * _STFT_HOP / _STFT_NPERSEG) * np.arange(num_bins)
        dev = np.diff(phi, axis=1) - expected[:, None]
        dev = (dev + np.pi) % (2 * np.pi) - np.pi
        inst_hz = freqs[:, None] + dev * (sample_rate / (2 * np.pi * _STFT_HOP))
        src = np.clip(np.rint(pos).astype(np.intp), 0, num_bins - 1)
        out_hz = vtlp_warp(inst_hz[src], alpha, nyquist, boundary_hz)
        steps = (2 * np.pi * _STFT_HOP / sample_rate) * out_hz
        psi = np.concatenate(
            [phi[src, :1], phi[src, :1] + np.cumsum(steps, axis=1)], axis=1
        )
        phase = np.exp(1j * psi)
    _, y = sig.istft(warped * phase, **stft_args)
    y = y[:n]
    if y.size < n:
        y = np.pad(y, (0, n - y.size))
    return np.ascontiguousarray(y, dtype=np.float64)


# ---------------------------------------------------------------------------- room


def _draw_room(rng: np.random.Generator) -> dict[str, Any]:
    """Room size, RT60 and source / microphone positions (the first draws of ``rng``).

    RT60 ~ U(0.15, 0.9) s, raised where needed to 1.05 x the shortest RT60 Sabine
    allows for the room (all surfaces absorbing: ``24 ln 10 V / (c S)``).
    """
    dims = np.array(
        [rng.uniform(*ROOM_LENGTH_M), rng.uniform(*ROOM_WIDTH_M)]
        + [rng.uniform(*ROOM_HEIGHT_M)]
    )
    rt60 = float(rng.uniform(*RT60_S))
    source = rng.uniform(WALL_MARGIN_M, dims - WALL_MARGIN_M)
    mic = rng.uniform(WALL_MARGIN_M, dims - WALL_MARGIN_M)
    volume = float(np.prod(dims))
    surface = 2.0 * float(dims[0] * dims[1] + dims[0] * dims[2] + dims[1] * dims[2])
    rt60_min = 24.0 * math.log(10.0) * volume / (SPEED_OF_SOUND * surface)
    rt60 = max(rt60, 1.05 * rt60_min)
    return {
        "dims": dims,
        "rt60": rt60,
        "source": source,
        "mic": mic,
        "distance": float(np.linalg.norm(source - mic)),
        "volume": volume,
    }


def _decaying_noise(
    rng: np.random.Generator, num: int, rt60: float, sample_rate: int
) -> np.ndarray:
    """``e[n] exp(-3 ln(10) n / (rt60 fs))``, ``e ~ N(0, 1)``: -60 dB in RT60."""
    n = np.arange(num)
    return rng.standard_normal(num) * np.exp(-_DECAY * n / (rt60 * sample_rate))


def _generated_ir(
    room: dict[str, Any], rng: np.random.Generator, sample_rate: int
) -> np.ndarray:
    """Direct path 1 at n = 0, then decaying noise with the room's reverberant level.

    Diffuse-field theory: reverberant / direct energy ``(d / d_c)^2`` with the
    critical distance ``d_c = 0.057 sqrt(V / RT60)``; the tail ``A e[n] exp(-k n)``
    (``k = 3 ln 10 / (RT60 fs)``) has energy ``A^2 / (1 - exp(-2k))`` ~ that ratio.
    """
    rt60 = room["rt60"]
    num = int(math.ceil(rt60 * sample_rate)) + 1
    crit = 0.057 * math.sqrt(room["volume"] / rt60)
    k = _DECAY / (rt60 * sample_rate)
    amp = (room["distance"] / crit) * math.sqrt(1.0 - math.exp(-2.0 * k))
    ir = np.zeros(num)
    ir[1:] = amp * _decaying_noise(rng, num, rt60, sample_rate)[1:]
    ir[0] = 1.0
    return ir


def _pra_ir(
    room: dict[str, Any], rng: np.random.Generator, sample_rate: int
) -> tuple[np.ndarray, float]:
    """Image sources (order <= ``ISM_MAX_ORDER``) plus a decaying-noise late tail.

    The image-source IR is complete up to the path length ``(order + 1) R_min``
    (``R_min``: the smallest ``l1 l2 / sqrt(l1^2 + l2^2)`` over pairs of room sides,
    the radius that pyroomacoustics' ``inverse_sabine`` uses), i.e. up to ``n_c``
    samples after the direct path. Over ``[n_c / 2, n_c)`` it is cross-faded
    (``cos`` / ``sin``, equal power) into ``A e[n] exp(-k n)`` whose level ``A``
    matches the image-source energy there; the tail lasts to RT60 after the direct
    path. Trimmed so the direct path's peak is sample 0, scaled to 1.

    Returns:
        The IR and the time (s) after the direct path from which it is all tail.
    """
    import pyroomacoustics as pra

    dims = room["dims"]
    rt60 = room["rt60"]
    e_absorption, max_order = pra.inverse_sabine(rt60, list(dims), c=SPEED_OF_SOUND)
    order = int(min(max_order, ISM_MAX_ORDER))
    shoebox = pra.ShoeBox(
        list(dims),
        fs=int(sample_rate),
        materials=pra.Material(float(e_absorption)),
        max_order=order,
    )
    shoebox.add_source(list(room["source"]))
    shoebox.add_microphone(np.asarray(room["mic"], dtype=np.float64)[:, None])
    shoebox.compute_rir()
    early = np.asarray(shoebox.rir[0][0], dtype=np.float64)
    # direct path: delay d / c plus half the fractional-delay filter
    half_fdl = int(pra.constants.get("frac_delay_length")) // 2
    expected = int(round(room["distance"] / SPEED_OF_SOUND * sample_rate)) + half_fdl
    lo = max(expected - 3, 0)
    peak = lo + int(np.argmax(np.abs(early[lo : expected + 4])))
    early = early[peak:] / early[peak]

    r_min = min(
        a * b / math.hypot(a, b)
        for a, b in ((dims[0], dims[1]), (dims[0], dims[2]), (dims[1], dims[2]))
    )
    complete_m = (order + 1) * r_min - room["distance"]
    n_c = int(complete_m / SPEED_OF_SOUND * sample_rate)
    n_c = min(max(n_c, 16), early.size)
    num = max(int(math.ceil(rt60 * sample_rate)) + 1, n_c)
    n_a = n_c // 2
    k = _DECAY / (rt60 * sample_rate)
    window = np.arange(n_a, n_c)
    energy = float(np.sum(early[n_a:n_c] ** 2))
    unit = float(np.sum(np.exp(-2.0 * k * window)))
    tail = math.sqrt(energy / unit) * _decaying_noise(rng, num, rt60, sample_rate)
    ramp = (window - n_a + 0.5) / (n_c - n_a)
    ir = tail.copy()
    ir[:n_a] = early[:n_a]
    ir[n_a:n_c] = (
        np.cos(0.5 * np.pi * ramp) * early[n_a:n_c]
        + np.sin(0.5 * np.pi * ramp) * tail[n_a:n_c]
    )
    ir[0] = 1.0
    return ir, n_c / sample_rate


def room_impulse_response(
    rng: np.random.Generator, sample_rate: int = SAMPLE_RATE, *, method: str = "auto"
) -> tuple[np.ndarray, dict[str, Any]]:
    """The impulse response of a random shoebox room, direct path at sample 0 = 1.

    Room ``U(3, 10) x U(3, 8) x U(2.4, 4)`` m, ``RT60 ~ U(0.15, 0.9)`` s, source
    and microphone uniform with >= 0.5 m to every wall (these are the first draws
    of ``rng``, so both methods see the same room). The IR decays by 60 dB in RT60
    (energy ``~ exp(-6 ln(10) t / RT60)``) and lasts RT60 seconds.

    Methods: ``"pyroomacoustics"``: image sources from ``pra.ShoeBox`` with the
    Sabine absorption of the RT60 (``pra.inverse_sabine``) up to order 10, plus a
    matched decaying-noise late tail (:func:`_pra_ir`); ``"generated"``: a direct
    impulse plus decaying Gaussian noise (:func:`_generated_ir`); ``"auto"``:
    pyroomacoustics, or the generated IR if it cannot be imported or fails.

    Returns:
        ``(ir, info)``; ``info`` is JSON-friendly: ``method``, ``room`` (L, W, H in
        m), ``rt60`` (s), ``distance`` (m), ``source`` and ``mic`` positions.
    """
    if method not in ("auto", "pyroomacoustics", "generated"):
        raise ValueError(
            "room_impulse_response: method must be 'auto', 'pyroomacoustics' or "
            f"'generated', got {method!r}"
        )
    room = _draw_room(rng)
    info: dict[str, Any] = {
        "method": "generated",
        "room": [round(float(v), 3) for v in room["dims"]],
        "rt60": round(room["rt60"], 4),
        "distance": round(room["distance"], 3),
        "source": [round(float(v), 3) for v in room["source"]],
        "mic": [round(float(v), 3) for v in room["mic"]],
    }
    ir = None
    if method != "generated":
        try:
            ir, tail_s = _pra_ir(room, rng, sample_rate)
            info["method"] = "pyroomacoustics"
            info["tail_from_s"] = round(tail_s, 4)
        except Exception as err:  # ImportError, or a failing simulation
            if method == "pyroomacoustics":
                raise
            info["fallback"] = f"{type(err).__name__}: {err}"
    if ir is None:
        ir = _generated_ir(room, rng, sample_rate)
    return ir, info


@functools.lru_cache(maxsize=64)
def _cached_ir(ir_seed: int, sample_rate: int) -> tuple[np.ndarray, dict[str, Any]]:
    """``room_impulse_response(default_rng(ir_seed))``, cached (read-only array)."""
    ir, info = room_impulse_response(np.random.default_rng(ir_seed), sample_rate)
    ir.setflags(write=False)
    return ir, info


def reverberate(x: np.ndarray, ir: np.ndarray, wet: float) -> np.ndarray:
    """Dry / wet mix with a room: ``y = (1 - wet) x + wet (x * ir)[:len(x)]``.

    ``*`` is convolution (``fftconvolve``; the tail past ``len(x)`` is cut), then
    ``y`` is scaled to the input's RMS: ``y *= rms(x) / rms(y)``.
    """
    if not 0.0 <= wet <= 1.0:
        raise ValueError(f"reverberate: wet must be in [0, 1], got {wet!r}")
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x.copy()
    wet_part = _signal().fftconvolve(x, np.asarray(ir, dtype=np.float64))[: x.size]
    y = (1.0 - wet) * x + wet * wet_part
    power_y = float(np.mean(y**2))
    if power_y > 0.0:
        y *= math.sqrt(float(np.mean(x**2)) / power_y)
    return y


# -------------------------------------------------------------------------- device


@functools.lru_cache(maxsize=8)
def _telephone_sos(sample_rate: int) -> np.ndarray:
    """4th-order Butterworth band-pass 300-3400 Hz (second-order sections)."""
    return _signal().butter(
        4, [300.0, 3400.0], "bandpass", fs=sample_rate, output="sos"
    )


@functools.lru_cache(maxsize=8)
def _narrowband_filter(up: int, down: int, sample_rate: int) -> np.ndarray:
    """Low-pass at the intermediate rate ``sample_rate * up``: 3.8 kHz cut-off,
    3.6-4.0 kHz transition, 60 dB stop band (Kaiser design), unit DC gain."""
    sig = _signal()
    rate = sample_rate * up
    width = 400.0 / (rate / 2.0)
    taps, beta = sig.kaiserord(60.0, width)
    taps |= 1
    return sig.firwin(taps, 3800.0, window=("kaiser", beta), fs=rate)


def _narrowband(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Down to 8 kHz and back (nothing above ~4 kHz survives)."""
    if sample_rate <= 8000:
        return x.copy()
    ratio = Fraction(8000, sample_rate)
    up, down = ratio.numerator, ratio.denominator
    h = _narrowband_filter(up, down, sample_rate)
    sig = _signal()
    low = sig.resample_poly(x, up, down, window=h)
    y = sig.resample_poly(low, down, up, window=h)
    y = y[: x.size]
    return np.pad(y, (0, x.size - y.size)) if y.size < x.size else y


def _biquad_peak(f0: float, gain_db: float, q: float, fs: int) -> np.ndarray:
    """RBJ peaking EQ: ``A = 10^(g/40)``, ``w0 = 2 pi f0 / fs``,
    ``alpha = sin(w0) / (2 Q)``; ``b = [1 + alpha A, -2 cos w0, 1 - alpha A]``,
    ``a = [1 + alpha / A, -2 cos w0, 1 - alpha / A]`` (one SOS row)."""
    amp = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * f0 / fs
    alpha = math.sin(w0) / (2.0 * q)
    cw = math.cos(w0)
    b = [1 + alpha * amp, -2 * cw, 1 - alpha * amp]
    a = [1 + alpha / amp, -2 * cw, 1 - alpha / amp]
    return np.array([[*(v / a[0] for v in b), *(v / a[0] for v in a)]])


def _biquad_high_shelf(f0: float, gain_db: float, fs: int) -> np.ndarray:
    """RBJ high shelf (slope 1): ``+gain_db`` above ``f0``, 0 dB below."""
    amp = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * f0 / fs
    cw = math.cos(w0)
    alpha = math.sin(w0) / 2.0 * math.sqrt(2.0)
    sq = 2.0 * math.sqrt(amp) * alpha
    b = [
        amp * ((amp + 1) + (amp - 1) * cw + sq),
        -2 * amp * ((amp - 1) + (amp + 1) * cw),
        amp * ((amp + 1) + (amp - 1) * cw - sq),
    ]
    a = [
        (amp + 1) - (amp - 1) * cw + sq,
        2 * ((amp - 1) - (amp + 1) * cw),
        (amp + 1) - (amp - 1) * cw - sq,
    ]
    return np.array([[*(v / a[0] for v in b), *(v / a[0] for v in a)]])


def draw_mic(rng: np.random.Generator) -> dict[str, Any]:
    """A random microphone / device response (JSON-friendly parameters).

    High-pass at ``log-U(40, 200)`` Hz, low-pass at ``U(3500, 7500)`` Hz and either a
    peaking EQ (``log-U(300, 5000)`` Hz, ``Q ~ U(0.7, 2)``) or a tilt (high shelf at
    ``log-U(800, 3000)`` Hz), gain ``U(-6, 6)`` dB.
    """
    highpass = math.exp(rng.uniform(math.log(40.0), math.log(200.0)))
    lowpass = rng.uniform(3500.0, 7500.0)
    eq = "peak" if rng.uniform() < 0.5 else "tilt"
    if eq == "peak":
        eq_hz = math.exp(rng.uniform(math.log(300.0), math.log(5000.0)))
        eq_q = rng.uniform(0.7, 2.0)
    else:
        eq_hz = math.exp(rng.uniform(math.log(800.0), math.log(3000.0)))
        eq_q = None
    gain = rng.uniform(-6.0, 6.0)
    return {
        "highpass_hz": round(highpass, 1),
        "lowpass_hz": round(float(lowpass), 1),
        "eq": eq,
        "eq_hz": round(eq_hz, 1),
        "eq_gain_db": round(float(gain), 2),
        "eq_q": None if eq_q is None else round(float(eq_q), 3),
    }


def apply_mic(
    x: np.ndarray, mic: dict[str, Any], sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """The response of :func:`draw_mic`'s parameters (causal ``sosfilt``).

    2nd-order Butterworth high-pass (12 dB / octave), 4th-order Butterworth low-pass
    (the low-pass is skipped at or above Nyquist) and the EQ biquad, in cascade.
    """
    sig = _signal()
    x = np.asarray(x, dtype=np.float64)
    sections = [
        sig.butter(2, mic["highpass_hz"], "highpass", fs=sample_rate, output="sos")
    ]
    if mic["lowpass_hz"] < 0.49 * sample_rate:
        sections.append(
            sig.butter(4, mic["lowpass_hz"], "lowpass", fs=sample_rate, output="sos")
        )
    if mic["eq_hz"] < 0.49 * sample_rate:
        if mic["eq"] == "peak":
            sections.append(
                _biquad_peak(mic["eq_hz"], mic["eq_gain_db"], mic["eq_q"], sample_rate)
            )
        else:
            sections.append(
                _biquad_high_shelf(mic["eq_hz"], mic["eq_gain_db"], sample_rate)
            )
    return sig.sosfilt(np.concatenate(sections), x)


def band_limit(
    x: np.ndarray,
    kind: str,
    sample_rate: int = SAMPLE_RATE,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """A device / transmission band.

    * ``"wideband"``: unchanged (a copy);
    * ``"telephone"``: 4th-order Butterworth band-pass 300-3400 Hz, zero phase
      (``sosfiltfilt``, so the magnitude response is ``|H(f)|^2``);
    * ``"narrowband_8k"``: resampled to 8 kHz and back (anti-aliasing low-pass with
      its stop band from 4 kHz), so nothing above 4 kHz remains;
    * ``"mic"``: a random microphone, :func:`apply_mic` of :func:`draw_mic` ``(rng)``
      (``rng`` required).

    Raises:
        ValueError: for another ``kind``, or ``"mic"`` without ``rng``.
    """
    x = np.asarray(x, dtype=np.float64)
    if kind == "wideband":
        return x.copy()
    if kind == "telephone":
        if x.size == 0:
            return x.copy()
        sig = _signal()
        sos = _telephone_sos(sample_rate)
        pad = min(3 * (2 * sos.shape[0] + 1), x.size - 1)
        return sig.sosfiltfilt(sos, x, padlen=max(pad, 0))
    if kind == "narrowband_8k":
        return _narrowband(x, sample_rate)
    if kind == "mic":
        if rng is None:
            raise ValueError("band_limit: kind='mic' needs rng (a numpy Generator)")
        return apply_mic(x, draw_mic(rng), sample_rate)
    raise ValueError(f"band_limit: kind must be one of {BAND_KINDS}, got {kind!r}")


# -------------------------------------------------------------------------- levels


def peak_normalize(x: np.ndarray, dbfs: float) -> np.ndarray:
    """``x * 10^(dbfs / 20) / max|x|`` (peak at ``dbfs``); silence is returned as is."""
    x = np.asarray(x, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return x.copy()
    return x * (10.0 ** (dbfs / 20.0) / peak)


def rms_dbfs(x: np.ndarray) -> float:
    """``20 log10(sqrt(mean(x^2)))`` relative to full scale 1 (``-inf`` if silent)."""
    x = np.asarray(x, dtype=np.float64)
    power = float(np.mean(x**2)) if x.size else 0.0
    return 10.0 * math.log10(power) if power > 0.0 else -math.inf


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech + g noise`` with ``10 log10(P_speech / P_{g noise}) = snr_db``.

    ``P`` is the mean square over the whole arrays; ``noise`` is tiled or cropped to
    ``len(speech)`` first; ``g = sqrt(P_speech / (P_noise 10^(snr_db / 10)))``.

    Raises:
        ValueError: if ``noise`` is empty or silent.
    """
    speech = np.asarray(speech, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if noise.size == 0:
        raise ValueError("mix_at_snr: noise is empty")
    noise = np.resize(noise, speech.size)
    p_noise = float(np.mean(noise**2)) if noise.size else 0.0
    if speech.size and p_noise == 0.0:
        raise ValueError("mix_at_snr: noise is silent")
    if speech.size == 0:
        return speech.copy()
    gain = math.sqrt(float(np.mean(speech**2)) / (p_noise * 10.0 ** (snr_db / 10.0)))
    return speech + gain * noise


def babble(
    utterances: Sequence[np.ndarray],
    num_talkers: int,
    num_samples: int,
    rng: np.random.Generator,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Babble: ``num_talkers`` overlapping talkers, RMS 0.1.

    Each talker is a concatenation of the utterances in random orders (reshuffled
    after each pass) with gaps ``U(0, 0.2)`` s, starting at a random point of it,
    scaled to RMS 1; the sum is scaled to RMS 0.1:
    ``b = 0.1 s / rms(s)``, ``s = sum_t x_t / rms(x_t)``.

    Raises:
        ValueError: if ``utterances`` is empty (or all empty) or ``num_talkers < 1``.
    """
    pool = [np.asarray(u, dtype=np.float64).ravel() for u in utterances]
    pool = [u for u in pool if u.size]
    if not pool:
        raise ValueError("babble: utterances is empty")
    if num_talkers < 1:
        raise ValueError(f"babble: num_talkers must be >= 1, got {num_talkers}")
    longest = max(u.size for u in pool)
    max_gap = int(0.2 * sample_rate)
    total = np.zeros(num_samples)
    for _ in range(num_talkers):
        parts: list[np.ndarray] = []
        length = 0
        while length < num_samples + longest:
            for i in rng.permutation(len(pool)):
                gap = int(rng.integers(0, max_gap + 1))
                parts += [np.zeros(gap), pool[i]]
                length += gap + pool[i].size
        stream = np.concatenate(parts)
        start = int(rng.integers(0, stream.size - num_samples + 1))
        talker = stream[start : start + num_samples]
        power = float(np.mean(talker**2)) if num_samples else 0.0
        if power > 0.0:
            total += talker / math.sqrt(power)
    power = float(np.mean(total**2)) if num_samples else 0.0
    return total * (0.1 / math.sqrt(power)) if power > 0.0 else total


# ------------------------------------------------------------------------- channel


def _check_range(name: str, value: Any, low: float, high: float) -> None:
    """``value`` must be ``(a, b)`` with ``low <= a <= b <= high``."""
    ok = isinstance(value, tuple | list) and len(value) == 2
    ok = ok and all(isinstance(v, int | float) for v in value)
    if not ok or not low <= value[0] <= value[1] <= high:
        raise ValueError(
            f"ChannelConfig.{name} must be an ordered pair (a, b) with "
            f"{low} <= a <= b <= {high}, got {value!r}"
        )


@dataclass(frozen=True)
class ChannelConfig:
    """Ranges and probabilities of :func:`draw_channel`.

    Attributes:
        speed: range of the :func:`speed_perturb` factor (uniform).
        vtlp_alpha: range of the :func:`vtlp` warp factor (uniform).
        reverb_probability: chance of a room (:func:`room_impulse_response`).
        reverb_wet: range of :func:`reverberate`'s ``wet``.
        band_probabilities: ``(kind, probability)`` of each :func:`band_limit` kind;
            the probabilities sum to 1.
    """

    speed: tuple[float, float] = (0.9, 1.1)
    vtlp_alpha: tuple[float, float] = (0.88, 1.12)
    reverb_probability: float = 0.4
    reverb_wet: tuple[float, float] = (0.2, 0.8)
    band_probabilities: tuple[tuple[str, float], ...] = (
        ("wideband", 0.5),
        ("mic", 0.25),
        ("telephone", 0.15),
        ("narrowband_8k", 0.10),
    )

    def __post_init__(self) -> None:
        """Checks every field (``ValueError`` naming the field)."""
        _check_range("speed", self.speed, 1e-9, math.inf)
        _check_range("vtlp_alpha", self.vtlp_alpha, 1e-9, math.inf)
        _check_range("reverb_wet", self.reverb_wet, 0.0, 1.0)
        p = self.reverb_probability
        if not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise ValueError(
                f"ChannelConfig.reverb_probability must be in [0, 1], got {p!r}"
            )
        bands = self.band_probabilities
        msg = "ChannelConfig.band_probabilities"
        try:
            names = [str(name) for name, _ in bands]
            probs = [float(prob) for _, prob in bands]
        except (TypeError, ValueError) as err:
            raise ValueError(f"{msg} must be (kind, probability) pairs") from err
        if not names:
            raise ValueError(f"{msg} must not be empty")
        unknown = [name for name in names if name not in BAND_KINDS]
        if unknown or len(set(names)) != len(names):
            raise ValueError(
                f"{msg}: kinds must be distinct, from {BAND_KINDS}, got {names}"
            )
        if any(not 0.0 <= prob <= 1.0 for prob in probs):
            raise ValueError(f"{msg}: probabilities must be in [0, 1], got {probs}")
        if abs(sum(probs) - 1.0) > 1e-6:
            raise ValueError(f"{msg}: probabilities must sum to 1, got {sum(probs)}")


#: Parameters that leave a signal unchanged (``apply_channel(x, NO_CHANNEL) == x``).
NO_CHANNEL: dict[str, Any] = {
    "speed": 1.0,
    "vtlp_alpha": 1.0,
    "reverb": None,
    "band": "wideband",
    "mic": None,
}


def draw_channel(
    rng: np.random.Generator, config: ChannelConfig = ChannelConfig()
) -> dict[str, Any]:
    """One utterance's speaker and channel, as JSON-friendly parameters.

    Draws, in this order: ``speed ~ U(config.speed)``, ``vtlp_alpha ~
    U(config.vtlp_alpha)`` (both rounded to 4 decimals), a room with probability
    ``reverb_probability`` (``ir_seed``, ``wet ~ U(reverb_wet)``; the room's size,
    RT60 and distance are recorded for reference, the IR is regenerated by
    :func:`apply_channel` from ``default_rng(ir_seed)``), the band (categorical) and,
    for ``"mic"``, :func:`draw_mic`.

    Returns:
        ``{"speed", "vtlp_alpha", "reverb": None | {"ir_seed", "wet", "rt60",
        "room", "distance"}, "band", "mic": None | dict}``.
    """
    speed = round(float(rng.uniform(*config.speed)), 4)
    alpha = round(float(rng.uniform(*config.vtlp_alpha)), 4)
    reverb = None
    if rng.uniform() < config.reverb_probability:
        ir_seed = int(rng.integers(0, 2**31))
        wet = round(float(rng.uniform(*config.reverb_wet)), 3)
        room = _draw_room(np.random.default_rng(ir_seed))
        reverb = {
            "ir_seed": ir_seed,
            "wet": wet,
            "rt60": round(room["rt60"], 4),
            "room": [round(float(v), 3) for v in room["dims"]],
            "distance": round(room["distance"], 3),
        }
    names = [name for name, _ in config.band_probabilities]
    probs = np.array([prob for _, prob in config.band_probabilities], dtype=np.float64)
    band = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    mic = draw_mic(rng) if band == "mic" else None
    return {
        "speed": speed,
        "vtlp_alpha": alpha,
        "reverb": reverb,
        "band": band,
        "mic": mic,
    }


def apply_channel(
    x: np.ndarray, params: dict[str, Any], sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """:func:`draw_channel`'s parameters applied: speed -> VTLP -> room -> band.

    Deterministic given ``params`` (the room IR comes from
    ``room_impulse_response(default_rng(ir_seed))``, cached per seed; its method is
    pyroomacoustics where importable). Steps at their identity (speed 1, alpha 1,
    no room, wideband) are skipped, so ``apply_channel(x, NO_CHANNEL)`` equals ``x``.
    The length changes with speed: ``~ len(x) / speed``.
    """
    y = np.array(x, dtype=np.float64, copy=True)
    if params["speed"] != 1.0:
        y = speed_perturb(y, params["speed"], sample_rate)
    if params["vtlp_alpha"] != 1.0:
        y = vtlp(y, params["vtlp_alpha"], sample_rate)
    reverb = params.get("reverb")
    if reverb:
        ir, _ = _cached_ir(int(reverb["ir_seed"]), int(sample_rate))
        y = reverberate(y, ir, reverb["wet"])
    band = params.get("band", "wideband")
    if band == "mic":
        y = apply_mic(y, params["mic"], sample_rate)
    elif band != "wideband":
        y = band_limit(y, band, sample_rate)
    return y
