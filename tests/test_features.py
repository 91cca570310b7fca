"""Frontends against independent computations (TF / torch / plain loops)."""

import json

import numpy as np
import pytest

from lmuformer_keras.features import (
    FBANK128_PARAMS,
    MICRO40_PARAMS,
    MICRO40_TOLERANCE,
    Frontend,
    compute_features,
    get_frontend,
    list_frontends,
    mel_filterbank,
)

# float32 TF/torch pipelines vs the float64 NumPy reference, normalised units.
FBANK128_TOLERANCE = FBANK128_PARAMS["tolerance"]


def _test_signal(num_samples=16000, seed=0):
    """Speech-like int16 test clip: chirp + harmonics + noise, a silent gap, a DC."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / 16000.0
    f0 = 120 + 80 * t
    x = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / 16000)
    x += 0.1 * np.sin(2 * np.pi * 3 * np.cumsum(f0) / 16000)
    x += 0.05 * np.sin(2 * np.pi * (500 + 6000 * t) * t)
    x += 0.01 * rng.standard_normal(num_samples)
    x[num_samples // 3 : num_samples // 3 + 2000] = 0.0
    x += 0.02
    return np.round(x * 32767).astype(np.int16)


def _kaldi_mel_loop(num_bins, fft_size, sample_rate, low, high):
    """Kaldi's MelBanks written as its loop (strict inequalities)."""

    def mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)

    delta = (mel(high) - mel(low)) / (num_bins + 1)
    w = np.zeros((fft_size // 2 + 1, num_bins))
    for b in range(num_bins):
        left = mel(low) + b * delta
        centre = left + delta
        right = centre + delta
        for i in range(fft_size // 2):
            m = mel(i * sample_rate / fft_size)
            if left < m < right:
                if m <= centre:
                    w[i, b] = (m - left) / (centre - left)
                else:
                    w[i, b] = (right - m) / (right - centre)
    return w


def _fbank128_torch(x_int16):
    """The torchaudio.compliance.kaldi.fbank steps, in torch float32."""
    torch = pytest.importorskip("torch")
    p = FBANK128_PARAMS
    x = torch.tensor(x_int16.astype(np.float32) / 32768.0)
    x = x - x.mean()
    frames = x.unfold(0, 400, 160)
    frames = frames - frames.mean(dim=1, keepdim=True)
    prev = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - 0.97 * prev
    frames = frames * torch.hann_window(400, periodic=False)
    power = torch.fft.rfft(frames, n=512).abs() ** 2
    mel = torch.tensor(
        _kaldi_mel_loop(128, 512, 16000, 20.0, 8000.0), dtype=torch.float32
    )
    fb = torch.clamp(power @ mel, min=torch.finfo(torch.float32).eps).log()
    fb = torch.nn.functional.pad(fb, (0, 0, 0, 128 - fb.shape[0]))
    return ((fb - p["norm_mean"]) / p["norm_scale"]).numpy()


def _micro40_tf(x_int16):
    """micro40 with tf.signal (stft + linear_to_mel_weight_matrix), float32."""
    tf = pytest.importorskip("tensorflow")
    p = MICRO40_PARAMS
    x = tf.constant(x_int16.astype(np.float32) / 32768.0)
    need = 48 * 320 + 480
    x = tf.pad(x, [[0, max(0, need - int(x.shape[0]))]])
    stft = tf.signal.stft(x, 480, 320, fft_length=512, window_fn=tf.signal.hann_window)
    power = tf.math.real(stft) ** 2 + tf.math.imag(stft) ** 2
    mel = tf.signal.linear_to_mel_weight_matrix(40, 257, 16000, 20.0, 7600.0)
    logmel = tf.math.log(power @ mel + 1e-6)[:49]
    return ((logmel - p["norm_mean"]) / p["norm_scale"]).numpy()


def test_registry():
    assert list_frontends() == ["fbank128", "micro40"]
    f = get_frontend("fbank128")
    assert f.name == "fbank128" and f.num_features == 128
    assert f.frame_hop_ms == 10.0 and f.sample_rate == 16000
    m = get_frontend("micro40")
    assert m.num_features == 40 and m.frame_hop_ms == 20.0 and m.frame_length_ms == 30
    with pytest.raises(ValueError, match="Unknown frontend name='mfcc'"):
        get_frontend("mfcc")


def test_wrong_sample_rate_and_shape():
    f = get_frontend("micro40")
    x = np.zeros(16000, np.int16)
    with pytest.raises(ValueError, match="sample_rate=8000"):
        f(x, sample_rate=8000)
    with pytest.raises(ValueError, match="mono 1-D"):
        f(np.zeros((2, 16000), np.int16))
    with pytest.raises(ValueError, match="int16 or float"):
        f(np.zeros(16000, np.int32))
    with pytest.raises(ValueError, match="sample_rate=44100"):
        f.batch([x], sample_rate=44100)


def test_mel_filterbank_matches_kaldi_loop_and_tf():
    tf = pytest.importorskip("tensorflow")
    for bins, low, high in [(128, 20.0, 8000.0), (40, 20.0, 7600.0)]:
        ours = mel_filterbank(bins, 512, 16000, low, high)
        np.testing.assert_allclose(
            ours, _kaldi_mel_loop(bins, 512, 16000, low, high), atol=1e-12
        )
        ref = tf.signal.linear_to_mel_weight_matrix(bins, 257, 16000, low, high).numpy()
        np.testing.assert_allclose(ours, ref, atol=2e-5)
    # micro40 has no empty filter (every channel sees at least one FFT bin)
    assert (get_frontend("micro40").mel_weights().sum(0) > 0).all()


def test_fbank128_against_torch_kaldi_steps():
    f = get_frontend("fbank128")
    for n in (16000, 12345):
        x = _test_signal(n)
        ours = f(x)
        assert ours.shape == (128, 128) and ours.dtype == np.float32
        ref = _fbank128_torch(x)
        np.testing.assert_allclose(ours, ref, atol=FBANK128_TOLERANCE, rtol=0)
    # frames past the clip are the normalised zero pad (as in the reference)
    pad = (0.0 + 6.845978) / (2 * 5.5654526)
    np.testing.assert_allclose(ours[f.num_frames(12345, pad=False) :], pad, atol=1e-6)


def test_fbank128_clip_mean_removal_and_int16_float_equivalence():
    f = get_frontend("fbank128")
    x = _test_signal()
    np.testing.assert_allclose(f(x), f(x.astype(np.float64) / 32768.0), atol=1e-5)
    # a constant offset does not change fbank128 (clip mean + per-frame DC removal)
    np.testing.assert_allclose(f(x.astype(np.float64) / 32768 + 0.1), f(x), atol=1e-4)


def test_micro40_against_tf_signal():
    m = get_frontend("micro40")
    for n in (16000, 9000):
        x = _test_signal(n, seed=n)
        ours = m(x)
        assert ours.shape == (49, 40)
        np.testing.assert_allclose(ours, _micro40_tf(x), atol=MICRO40_TOLERANCE, rtol=0)


def test_sine_lands_in_its_mel_bin():
    m = get_frontend("micro40")
    t = np.arange(16000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 1000 * t) * 32767).astype(np.int16)
    feats = m(x)
    w = m.mel_weights()
    assert np.argmax(feats[10]) == np.argmax(w[32])  # bin 32 = 1000 Hz


@pytest.mark.parametrize(
    "name,length,step",
    [("fbank128", 400, 160), ("micro40", 480, 320)],
)
def test_frame_counts(name, length, step):
    f = get_frontend(name)
    for n in (0, length - 1, length, length + step - 1, length + step, 16000, 20000):
        expect = 0 if n < length else 1 + (n - length) // step
        assert f.num_frames(n, pad=False) == expect
        out = f(np.zeros(n, np.int16) + 1, pad=False)
        assert out.shape == (expect, f.num_features)
        assert f(np.zeros(n, np.int16)).shape == (f.num_frames_target, f.num_features)
    assert f.num_frames(16000, pad=False) == {"fbank128": 98, "micro40": 49}[name]


@pytest.mark.parametrize("name", ["fbank128", "micro40"])
def test_streaming_equals_offline(name):
    f = get_frontend(name)
    x = _test_signal(16000, seed=3)
    stream = f.streamer()
    chunks = [stream.push(x[i : i + 123]) for i in range(0, x.size, 123)]
    counts = np.cumsum([c.shape[0] for c in chunks])
    ends = np.minimum(np.arange(123, x.size + 123, 123), x.size)
    assert list(counts) == [f.num_frames(int(e), pad=False) for e in ends]
    np.testing.assert_allclose(np.concatenate(chunks), f(x, pad=False), atol=1e-4)


@pytest.mark.parametrize("name", ["fbank128", "micro40"])
def test_params_json_round_trip(name):
    f = get_frontend(name)
    text = json.dumps(f.params)
    back = Frontend.from_params(text)
    assert back.params == f.params
    assert get_frontend(json.loads(text)).params == f.params
    x = _test_signal(14000, seed=1)
    np.testing.assert_array_equal(back(x), f(x))
    p = f.params
    p["name"] = "changed"
    assert f.name == name  # params are a copy


def test_batch_helper_matches_single_clips():
    x = np.stack([_test_signal(16000, seed=s) for s in range(5)])
    lengths = [16000, 9000, 16000, 400, 0]
    for name in ("fbank128", "micro40"):
        f = get_frontend(name)
        out = compute_features(name, x, lengths=lengths, chunk_size=2)
        assert out.shape == (5, f.num_frames_target, f.num_features)
        for i, n in enumerate(lengths):
            np.testing.assert_array_equal(out[i], f(x[i][:n]))


def test_bad_params_raise():
    p = dict(MICRO40_PARAMS, window="hamming")
    with pytest.raises(ValueError, match="window"):
        Frontend(p)
    p = {k: v for k, v in MICRO40_PARAMS.items() if k != "fft_size"}
    with pytest.raises(ValueError, match="fft_size"):
        Frontend(p)
