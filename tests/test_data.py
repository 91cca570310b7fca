"""Speech Commands loader, toy datasets and augmentations on small local fixtures."""

import gzip
import logging
import math
import os
import struct
import wave

import numpy as np
import pytest

from lmuformer_keras.data import (
    COMMAND_WORDS,
    LABELS_12,
    SPEECH_COMMANDS_WORDS,
    FeatureAugmenter,
    WavFormatError,
    digits,
    frequency_mask,
    mixup,
    mnist1d,
    psmnist,
    speech_commands,
    speech_commands_waveforms,
    time_mask,
    time_shift,
    write_wav_int16,
)
from lmuformer_keras.features import get_frontend


def _tone(seed, n=16000):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    x = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 3000) * t)
    x += 0.02 * rng.standard_normal(n)
    return (x * 32767).astype(np.int16)


def make_sc(root, words, per_word=3, noise=True, short=False):
    """Tiny SC v2 layout: clip 0 of each word -> validation, clip 1 -> test."""
    os.makedirs(root, exist_ok=True)
    val, test = [], []
    for w_i, word in enumerate(words):
        os.makedirs(os.path.join(root, word), exist_ok=True)
        for k in range(per_word):
            n = 8000 if (short and k == 2) else 16000
            rel = f"{word}/spk{k}_nohash_0.wav"
            write_wav_int16(os.path.join(root, rel), _tone(100 * w_i + k, n))
            (val if k == 0 else test if k == 1 else []).append(rel)
    with open(os.path.join(root, "validation_list.txt"), "w") as fh:
        fh.write("\n".join(val) + "\n")
    with open(os.path.join(root, "testing_list.txt"), "w") as fh:
        fh.write("\n".join(test) + "\n")
    if noise:
        os.makedirs(os.path.join(root, "_background_noise_"), exist_ok=True)
        rng = np.random.default_rng(1)
        x = (rng.standard_normal(40000) * 2000).astype(np.int16)
        write_wav_int16(os.path.join(root, "_background_noise_", "white.wav"), x)
    return root


@pytest.fixture
def sc35(tmp_path):
    return make_sc(str(tmp_path / "sc"), SPEECH_COMMANDS_WORDS, short=True)


def test_speech_commands_35(sc35, tmp_path):
    ds = speech_commands(sc35, classes=35, frontend="fbank128", cache_dir=False)
    assert ds.labels == sorted(SPEECH_COMMANDS_WORDS)
    assert ds.x_train.shape == (35, 128, 128) and ds.x_train.dtype == np.float32
    assert ds.x_val.shape[0] == 35 and ds.x_test.shape[0] == 35
    assert sorted(ds.y_train.tolist()) == list(range(35))
    assert ds.frontend == get_frontend("fbank128").params
    s = ds.summary
    assert s["wav_files_found"] == 105 and s["clips"] == {
        "train": 35,
        "val": 35,
        "test": 35,
    }
    assert s["read"]["train"]["wav_read"] == 35
    assert s["read"]["train"]["shorter_than_clip"] == 35  # the 0.5 s clips
    assert sum(s["skipped_counts"].values()) == 0 and s["cache"] == "off"
    # short clips are padded the frontend's way: fbank128 pads frames (raw 0)
    w = speech_commands_waveforms(sc35, "train", classes=35)
    i = 3
    np.testing.assert_array_equal(
        ds.x_train[i], get_frontend("fbank128")(w.x[i, : w.lengths[i]])
    )
    assert w.x.shape == (35, 16000) and w.x.dtype == np.int16
    np.testing.assert_array_equal(w.y, ds.y_train)


def test_speech_commands_12_class_mapping(sc35):
    ds = speech_commands(
        sc35, classes=12, frontend="micro40", cache_dir=False, progress=False
    )
    assert ds.labels == list(LABELS_12)
    assert ds.x_train.shape[1:] == (49, 40)
    samp = ds.summary["sampling_12"]
    for split in ("train", "val", "test"):
        assert samp[split]["known"] == 10
        assert samp[split]["unknown_available"] == 25
        assert samp[split]["unknown_sampled"] == math.ceil(10 * 0.1) == 1
        assert samp[split]["silence"] == 1
    y = ds.y_train
    assert np.bincount(y, minlength=12).tolist() == [1, 1] + [1] * 10
    # the waveform accessor gives the same clips; silence is cut from the noise file
    w = speech_commands_waveforms(sc35, "train", classes=12)
    sil = w.x[w.y == 0][0]
    assert 0 < np.abs(sil).max() <= 2000 * 6
    # every command word keeps its own label index
    idx = speech_commands_waveforms(sc35, "val", classes=12)
    assert set(idx.y.tolist()) == set(range(12))
    # unknown_percentage=None keeps all other words
    ds_all = speech_commands(
        sc35, classes=12, frontend="micro40", cache_dir=False, unknown_percentage=None
    )
    assert (ds_all.y_train == 1).sum() == 25
    assert LABELS_12[2:] == COMMAND_WORDS


def test_classes_all_and_skipped_are_reported(tmp_path, caplog):
    root = make_sc(str(tmp_path / "sc"), ["cat", "dog"], noise=False)
    with open(os.path.join(root, "cat", "README.txt"), "w") as fh:
        fh.write("x")
    with open(os.path.join(root, "dog", ".DS_Store"), "w") as fh:
        fh.write("x")
    os.makedirs(os.path.join(root, ".cache"))
    with caplog.at_level(logging.INFO, logger="lmuformer_keras.data"):
        ds = speech_commands(root, classes="all", frontend="micro40", cache_dir=False)
    assert ds.labels == ["cat", "dog"]
    sk = ds.summary["skipped_counts"]
    assert sk["non_wav_files"] == 1 and sk["hidden"] == 2
    assert "cat/README.txt" in ds.summary["skipped"]["non_wav_files"]
    assert any("skipped 3" in r.getMessage() for r in caplog.records)
    # extra word folders are counted when not used by classes=35
    root35 = make_sc(str(tmp_path / "sc35"), [*SPEECH_COMMANDS_WORDS, "extra"])
    ds35 = speech_commands(root35, classes=35, frontend="micro40", cache_dir=False)
    assert ds35.summary["skipped"]["unused_word_folders"] == ["extra"]
    assert ds35.summary["skipped_counts"]["unused_word_files"] == 3
    assert ds35.summary["skipped_counts"]["unused_list_entries"] == 2


def test_feature_cache(sc35, tmp_path):
    cache = str(tmp_path / "cache")
    a = speech_commands(sc35, classes=35, frontend="micro40", cache_dir=cache)
    b = speech_commands(sc35, classes=35, frontend="micro40", cache_dir=cache)
    assert a.summary["cache"] == "miss" and b.summary["cache"] == "hit"
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert b.summary["read"] == a.summary["read"]
    c = speech_commands(sc35, classes=12, frontend="micro40", cache_dir=cache)
    assert c.summary["cache"] == "miss"
    assert len(os.listdir(cache)) == 2
    # a changed file list changes the key
    write_wav_int16(os.path.join(sc35, "cat", "new_nohash_0.wav"), _tone(5))
    d = speech_commands(sc35, classes=35, frontend="micro40", cache_dir=cache)
    assert d.summary["cache"] == "miss" and len(d.x_train) == 36


def _write_raw_wav(path, rate=16000, channels=1, width=2, frames=b"\0\0" * 100):
    with wave.open(path, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames)


@pytest.mark.parametrize(
    "kind,match",
    [
        ("rate", r"bad_nohash_0\.wav' is 8000 Hz, 1 channel\(s\), 16-bit"),
        ("stereo", r"is 16000 Hz, 2 channel\(s\)"),
        ("8bit", r"8-bit; expected 16000 Hz mono 16-bit"),
        ("corrupt", r"Corrupt or unreadable WAV file .*bad_nohash_0\.wav"),
        ("empty", r"Empty WAV file .*bad_nohash_0\.wav"),
        ("zero_bytes", r"Corrupt or unreadable WAV file"),
    ],
)
def test_bad_wavs_raise_naming_the_file(tmp_path, kind, match):
    root = make_sc(str(tmp_path / "sc"), ["cat", "dog"], noise=False)
    bad = os.path.join(root, "cat", "bad_nohash_0.wav")
    if kind == "rate":
        _write_raw_wav(bad, rate=8000)
    elif kind == "stereo":
        _write_raw_wav(bad, channels=2, frames=b"\0" * 400)
    elif kind == "8bit":
        _write_raw_wav(bad, width=1, frames=b"\0" * 100)
    elif kind == "corrupt":
        with open(bad, "wb") as fh:
            fh.write(b"not a wav file at all" * 10)
    elif kind == "empty":
        _write_raw_wav(bad, frames=b"")
    else:
        with open(bad, "wb"):
            pass
    with pytest.raises(WavFormatError, match=match):
        speech_commands(root, classes="all", frontend="micro40", cache_dir=False)


def test_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        speech_commands(str(tmp_path / "nope"), cache_dir=False)
    root = make_sc(str(tmp_path / "sc"), ["cat", "dog"], noise=False)
    os.remove(os.path.join(root, "testing_list.txt"))
    with pytest.raises(FileNotFoundError, match="testing_list.txt"):
        speech_commands(root, classes="all", cache_dir=False)
    root = make_sc(str(tmp_path / "sc2"), ["cat", "dog"], noise=False)
    os.makedirs(os.path.join(root, "bird"))
    with pytest.raises(ValueError, match=r"Empty class folder .*bird"):
        speech_commands(root, classes="all", cache_dir=False)
    root = make_sc(str(tmp_path / "sc3"), ["cat", "dog"], noise=False)
    with pytest.raises(ValueError, match=r"word folders missing .*'backward'"):
        speech_commands(root, classes=35, cache_dir=False)
    with pytest.raises(ValueError, match=r"command word folders missing .*'yes'"):
        speech_commands(root, classes=12, cache_dir=False)
    with pytest.raises(ValueError, match="classes must be 35, 12 or 'all'"):
        speech_commands(root, classes=10, cache_dir=False)
    with open(os.path.join(root, "validation_list.txt"), "a") as fh:
        fh.write("cat/missing.wav\n")
    with pytest.raises(ValueError, match=r"validation_list.txt .*'cat/missing.wav'"):
        speech_commands(root, classes="all", cache_dir=False)
    root = make_sc(str(tmp_path / "sc4"), COMMAND_WORDS, noise=False)
    with pytest.raises(ValueError, match="_background_noise_"):
        speech_commands(root, classes=12, cache_dir=False)
    with pytest.raises(ValueError, match="split must be one of"):
        speech_commands_waveforms(root, "dev", classes="all")


def test_wrong_frontend_name(sc35):
    with pytest.raises(ValueError, match="Unknown frontend name='mel64'"):
        speech_commands(sc35, frontend="mel64", cache_dir=False)


def test_mnist1d_and_digits():
    m = mnist1d()
    assert m.x_train.shape == (3500, 40, 1) and m.x_val.shape == (500, 40, 1)
    assert m.x_test.shape == (1000, 40, 1) and m.x_train.dtype == np.float32
    assert set(np.unique(m.y_train)) == set(range(10)) and m.frontend is None
    d = digits()
    assert d.x_train.shape == (1257, 64, 1) and d.x_val.shape == (180, 64, 1)
    assert d.x_test.shape == (360, 64, 1)
    assert d.x_train.min() >= 0 and d.x_train.max() <= 1
    np.testing.assert_array_equal(digits().y_test, d.y_test)  # fixed split


def _fake_mnist(n):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)


def _write_idx(path, arr):
    header = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(
        f">{arr.ndim}I", *arr.shape
    )
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


def test_psmnist_npz_and_idx(tmp_path):
    xtr, ytr = _fake_mnist(30)
    xte, yte = _fake_mnist(10)
    npz = str(tmp_path / "mnist.npz")
    np.savez(npz, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    a = psmnist(npz, validation_size=10)
    assert a.x_train.shape == (20, 784, 1) and a.x_val.shape == (10, 784, 1)
    perm = np.random.default_rng(0).permutation(784)
    np.testing.assert_allclose(a.x_test[3, :, 0], xte[3].reshape(-1)[perm] / 255.0)
    idx = tmp_path / "idx"
    idx.mkdir()
    _write_idx(str(idx / "train-images-idx3-ubyte.gz"), xtr)
    _write_idx(str(idx / "train-labels-idx1-ubyte.gz"), ytr)
    _write_idx(str(idx / "t10k-images-idx3-ubyte.gz"), xte)
    _write_idx(str(idx / "t10k-labels-idx1-ubyte.gz"), yte)
    b = psmnist(str(idx), validation_size=10)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    missing = str(tmp_path / "nowhere" / "mnist.npz")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        psmnist(missing)


def test_augmenter_shapes_and_off_when_not_training():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 49, 40)).astype(np.float32)
    y = rng.integers(0, 12, 16)
    aug = FeatureAugmenter(49, 40, 12, seed=1)
    cfg = aug.get_config()
    assert (cfg["freq_mask"], cfg["time_mask"], cfg["time_shift"]) == (15, 18, 4)
    assert FeatureAugmenter(128, 128, 35).get_config()["freq_mask"] == 48
    xo, yo = aug(x, y, training=False)
    assert xo is x
    np.testing.assert_array_equal(yo, np.eye(12, dtype=np.float32)[y])
    xa, ya = aug(x, y, training=True)
    assert xa.shape == x.shape and xa.dtype == np.float32 and ya.shape == (16, 12)
    assert not np.allclose(xa, x)
    np.testing.assert_allclose(ya.sum(1), 1.0, rtol=1e-6)
    xb, yb = FeatureAugmenter(49, 40, 12, seed=1)(x, y, training=True)
    np.testing.assert_array_equal(xa, xb)  # seeded
    np.testing.assert_array_equal(ya, yb)
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 49, 40\)"):
        aug(x[:, :10], y)


def test_mixup_fraction_and_soft_labels():
    x = np.arange(2000, dtype=np.float32).reshape(1000, 2)
    y = np.arange(1000) % 5
    xm, ym = mixup(x, y, 5, rng=0, prob=0.6, alpha=10.0)
    mixed = np.any(xm != x, axis=1)
    assert 0.55 < mixed.mean() < 0.65  # 60 % of samples
    np.testing.assert_allclose(ym.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(ym[~mixed], np.eye(5, dtype=np.float32)[y[~mixed]])
    # x and y are mixed with the same lambda: recover it from x and check y
    lam = ym[mixed][np.arange(mixed.sum()), y[mixed]]
    assert lam.min() > 0.1 and lam.max() <= 1.0
    waves = np.zeros((4, 16000), np.int16)
    xw, yw = mixup(waves, [0, 1, 2, 3], 4, rng=1)
    assert xw.shape == (4, 16000) and xw.dtype == np.float32


def test_masks_and_shift():
    x = np.ones((50, 20, 30), np.float32)
    fm = frequency_mask(x, 10, rng=0)
    widths = (fm == 0).all(axis=1).sum(axis=1)
    assert widths.max() <= 9 and widths.max() > 0
    tm = time_mask(x, 8, rng=0)
    assert (tm == 0).all(axis=2).sum(axis=1).max() <= 7
    seq = np.arange(20, dtype=np.float32)[None, :, None].repeat(3, 0)
    sh = time_shift(seq, 5, rng=0)
    for row in sh:
        s = int(np.argmin(row[:, 0]))
        np.testing.assert_array_equal(row[:, 0], np.roll(np.arange(20), s))
        assert min(s, 20 - s) <= 5
