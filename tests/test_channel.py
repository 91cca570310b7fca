"""Speaker and channel variety (``lmuformer_keras.data.channel``): fast checks."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lmuformer_keras.data import channel, kws_render
from lmuformer_keras.data.channel import ChannelConfig

FS = 16000
T = np.arange(FS) / FS


def _tone(freq, n=FS):
    return np.sin(2 * np.pi * freq * np.arange(n) / FS)


def _peak_hz(y):
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return np.fft.rfftfreq(y.size, 1.0 / FS)[np.argmax(spec)]


def _gain_db(y, x, trim=2000):
    """Power ratio away from the edges (filter start-up)."""
    return 10 * np.log10(np.mean(y[trim:-trim] ** 2) / np.mean(x[trim:-trim] ** 2))


def _schroeder_rt60(h):
    """T20 (-5 to -25 dB of the backward-integrated energy) times 3."""
    edc = np.cumsum(h[::-1] ** 2)[::-1]
    edc_db = 10 * np.log10(edc / edc[0] + 1e-300)
    i5, i25 = np.argmax(edc_db < -5), np.argmax(edc_db < -25)
    assert i25 > i5 > 0
    slope = np.polyfit(np.arange(i5, i25) / FS, edc_db[i5:i25], 1)[0]
    return -60.0 / slope


def test_speed_perturb_length_and_pitch():
    y = channel.speed_perturb(_tone(1000.0), 1.25)
    assert abs(y.size - FS / 1.25) <= 1
    assert abs(_peak_hz(y) - 1250.0) <= 5.0
    slow = channel.speed_perturb(_tone(1000.0), 0.9)
    assert abs(slow.size - FS / 0.9) <= 2
    assert abs(_peak_hz(slow) - 900.0) <= 5.0
    with pytest.raises(ValueError, match="factor"):
        channel.speed_perturb(_tone(1000.0), 0.0)


def test_vtlp_identity_and_shift():
    x = channel.make_noise("pink", 0.5, np.random.default_rng(0))
    same = channel.vtlp(x, 1.0)
    assert same.shape == x.shape and np.max(np.abs(same - x)) < 1e-8
    tone = _tone(1000.0)
    up = channel.vtlp(tone, 1.1)
    assert up.size == tone.size
    assert abs(_peak_hz(up) - 1100.0) <= 15.0
    down = channel.vtlp(tone, 0.9)
    assert abs(_peak_hz(down) - 900.0) <= 15.0
    # the warp itself: alpha f below the boundary, Nyquist fixed
    f = np.array([1000.0, 8000.0])
    assert np.allclose(channel.vtlp_warp(f, 1.1, 8000.0), [1100.0, 8000.0])


def test_band_limit_telephone():
    assert _gain_db(channel.band_limit(_tone(100.0), "telephone"), _tone(100.0)) < -20
    assert _gain_db(channel.band_limit(_tone(6000.0), "telephone"), _tone(6000.0)) < -20
    kept = _gain_db(channel.band_limit(_tone(1000.0), "telephone"), _tone(1000.0))
    assert abs(kept) < 1.0


def test_band_limit_narrowband_and_wideband():
    x = np.random.default_rng(1).standard_normal(FS)
    y = channel.band_limit(x, "narrowband_8k")
    assert y.shape == x.shape
    power = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(FS, 1.0 / FS)
    assert 10 * np.log10(power[freqs > 4200].sum() / power.sum()) < -40
    tone = _tone(1000.0)
    assert abs(_gain_db(channel.band_limit(tone, "narrowband_8k"), tone)) < 1.0
    wide = channel.band_limit(x, "wideband")
    assert np.array_equal(wide, x) and wide is not x


def test_band_limit_mic_and_errors():
    x = np.random.default_rng(2).standard_normal(FS // 4)
    with pytest.raises(ValueError, match="rng"):
        channel.band_limit(x, "mic")
    a = channel.band_limit(x, "mic", rng=np.random.default_rng(5))
    b = channel.band_limit(x, "mic", rng=np.random.default_rng(5))
    c = channel.band_limit(x, "mic", rng=np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.allclose(a, c)
    assert not np.allclose(a, x)
    with pytest.raises(ValueError, match=r"kind.*telephone.*'radio'"):
        channel.band_limit(x, "radio")


def test_reverberate_keeps_length_rms_and_lengthens_decay():
    ir, _ = channel.room_impulse_response(np.random.default_rng(3))
    x = np.zeros(FS)
    x[1000] = 1.0
    x += 1e-6 * np.random.default_rng(0).standard_normal(FS)
    y = channel.reverberate(x, ir, 0.6)
    assert y.shape == x.shape
    assert np.isclose(np.sqrt(np.mean(y**2)), np.sqrt(np.mean(x**2)), rtol=1e-9)

    def decay_samples(sig):  # samples after the impulse until 99% of its energy
        energy = np.cumsum(sig[1000:] ** 2)
        return int(np.argmax(energy >= 0.99 * energy[-1]))

    assert decay_samples(x) < 10 and decay_samples(y) > 0.02 * FS
    assert np.array_equal(channel.reverberate(x, ir, 0.0), x)


def test_room_impulse_response_deterministic_and_pra():
    ir1, info1 = channel.room_impulse_response(np.random.default_rng(7))
    ir2, info2 = channel.room_impulse_response(np.random.default_rng(7))
    ir3, _ = channel.room_impulse_response(np.random.default_rng(8))
    assert np.array_equal(ir1, ir2) and info1 == info2
    assert ir1.size != ir3.size or not np.allclose(ir1, ir3)
    assert ir1[0] == 1.0 and np.max(np.abs(ir1)) <= 1.0 + 1e-9
    json.dumps(info1)
    has_pra = importlib.util.find_spec("pyroomacoustics") is not None
    assert info1["method"] == ("pyroomacoustics" if has_pra else "generated")
    lo, hi = channel.RT60_S
    assert lo <= info1["rt60"] <= hi
    assert all(d >= 2.4 for d in info1["room"])
    if has_pra:  # image sources + matched tail: the drawn RT60, roughly
        assert abs(_schroeder_rt60(ir1) / info1["rt60"] - 1.0) < 0.35


def test_room_impulse_response_fallback(monkeypatch):
    for seed in (0, 1, 2):
        ir, info = channel.room_impulse_response(
            np.random.default_rng(seed), method="generated"
        )
        assert info["method"] == "generated" and ir[0] == 1.0
        assert abs(_schroeder_rt60(ir[1:]) / info["rt60"] - 1.0) < 0.25
    monkeypatch.setitem(sys.modules, "pyroomacoustics", None)  # import fails
    ir_auto, info_auto = channel.room_impulse_response(np.random.default_rng(0))
    assert info_auto["method"] == "generated" and "fallback" in info_auto
    ir_gen, _ = channel.room_impulse_response(
        np.random.default_rng(0), method="generated"
    )
    assert np.array_equal(ir_auto, ir_gen)


def test_levels_and_mix_at_snr():
    x = 0.3 * _tone(440.0)
    y = channel.peak_normalize(x, -6.0)
    assert np.isclose(np.max(np.abs(y)), 10 ** (-6 / 20))
    assert np.array_equal(channel.peak_normalize(np.zeros(5), -6.0), np.zeros(5))
    assert np.isclose(channel.rms_dbfs(np.full(10, 0.1)), -20.0)
    rng = np.random.default_rng(4)
    for noise_len in (3000, 40000):
        noise = rng.standard_normal(noise_len)
        mixed = channel.mix_at_snr(x, noise, 7.5)
        assert mixed.shape == x.shape
        residual = mixed - x
        snr = 10 * np.log10(np.mean(x**2) / np.mean(residual**2))
        assert abs(snr - 7.5) < 0.01


def test_babble():
    rng = np.random.default_rng(5)
    utts = [
        channel.make_noise("pink", s, rng) * 3.0**k for k, s in enumerate((0.3, 0.5))
    ]
    b = channel.babble(utts, 3, 12345, np.random.default_rng(0))
    assert b.shape == (12345,) and np.isclose(np.sqrt(np.mean(b**2)), 0.1)
    again = channel.babble(utts, 3, 12345, np.random.default_rng(0))
    assert np.array_equal(b, again)
    with pytest.raises(ValueError, match="empty"):
        channel.babble([], 2, 100, rng)


def test_draw_and_apply_channel():
    params = [channel.draw_channel(np.random.default_rng(s)) for s in range(40)]
    again = [channel.draw_channel(np.random.default_rng(s)) for s in range(40)]
    assert params == again
    text = json.dumps(params)
    assert json.loads(text) == params
    assert {p["band"] for p in params} == set(channel.BAND_KINDS)
    assert any(p["reverb"] for p in params) and not all(p["reverb"] for p in params)
    x = channel.make_noise("pink", 1.0, np.random.default_rng(9)) * np.hanning(FS)
    assert np.array_equal(channel.apply_channel(x, channel.NO_CHANNEL), x)
    p = next(p for p in params if p["reverb"] and p["band"] != "wideband")
    y1 = channel.apply_channel(x, p)
    channel._cached_ir.cache_clear()  # the IR is regenerated from ir_seed
    y2 = channel.apply_channel(x, json.loads(json.dumps(p)))
    assert np.array_equal(y1, y2)
    assert abs(y1.size - FS / p["speed"]) <= 2
    assert not np.allclose(y1[: min(y1.size, FS)], x[: min(y1.size, FS)])


@pytest.mark.parametrize(
    "field,value",
    [
        ("speed", (1.1, 0.9)),
        ("vtlp_alpha", (0.0, 1.1)),
        ("reverb_probability", 1.5),
        ("reverb_wet", (0.5, 1.2)),
        ("band_probabilities", (("wideband", 0.5), ("mic", 0.4))),
        ("band_probabilities", (("wideband", 0.5), ("radio", 0.5))),
    ],
)
def test_channel_config_validation(field, value):
    with pytest.raises(ValueError, match=field):
        ChannelConfig(**{field: value})


# make_noise values of the implementation that lived in kws_render, rng([11, i])
_NOISE_REFERENCE = {
    "white": [0.0034197347690822547, 0.13599296910778774, 0.12248851413095876],
    "pink": [0.000296158332477384, 0.01510922224522612, 0.01535799294565885],
    "brown": [-0.02354187711885219, -0.02550071856598227, -0.029632535172601875],
    "hum50": [-0.09123911317336222, -0.07727760630987852, -0.07298939872755858],
    "hum60": [0.12002642053987968, 0.13215110925100784, 0.0930106815529916],
}


def test_kws_render_make_noise_unchanged():
    assert kws_render.NOISE_TYPES == channel.NOISE_TYPES == tuple(_NOISE_REFERENCE)
    for i, kind in enumerate(kws_render.NOISE_TYPES):
        a = kws_render.make_noise(kind, 0.25, np.random.default_rng([11, i]))
        b = channel.make_noise(kind, 0.25, np.random.default_rng([11, i]))
        assert np.array_equal(a, b) and a.shape == (4000,)
        assert np.allclose(a[:3], _NOISE_REFERENCE[kind], rtol=1e-9, atol=0)
        assert np.isclose(np.sqrt(np.mean(a**2)), 0.1)
    with pytest.raises(ValueError, match="kind"):
        kws_render.make_noise("purple", 0.1, np.random.default_rng(0))


def test_kws_render_imports_as_script():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (
        "import sys; sys.path.insert(0, 'lmuformer_keras/data'); "
        "import kws_render, channel; "
        "assert kws_render.make_noise is channel.make_noise; "
        "assert 'scipy' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=60)
