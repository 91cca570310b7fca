"""Rooms: :func:`room_impulse_response`, its cache and :func:`reverberate`."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from ._common import SAMPLE_RATE, _signal

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
