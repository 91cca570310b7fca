"""Synthetic keyword set: tiny generation, read back by the Speech Commands loader."""

import hashlib
import os

import numpy as np
import pytest

from lmuformer_keras.data import kws_render, speech_commands, synthetic_kws_params
from lmuformer_keras.data.kws_render import speaker_id
from lmuformer_keras.data.synthetic_kws import (
    DEFAULT_TEST_VOICES,
    DEFAULT_TRAIN_VOICES,
    DEFAULT_VAL_VOICES,
    generate_synthetic_kws,
)

TINY = {
    "words": ("yes", "no", "up"),
    "train_voices": ("en-us+m1", "en+f1"),
    "val_voices": ("en-us+m3",),
    "test_voices": ("en-gb-x-rp+f4",),
    "noise_seconds": 2.0,
    "engines": ("espeak",),
    "negative_words": 0,
    "negative_sentences": 0,
    "progress": False,
}


def _digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            if name.endswith((".wav", ".txt")):
                path = os.path.join(dirpath, name)
                h.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as fh:
                    h.update(fh.read())
    return h.hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("skws") / "a")
    manifest = generate_synthetic_kws(root, seed=0, workers=2, **TINY)
    return root, manifest


def test_tiny_generation_and_read_back(tiny):
    root, manifest = tiny
    assert manifest["complete"] and not manifest["cached"]
    assert manifest["counts"] == {"train": 6, "val": 3, "test": 3}
    assert manifest["seconds"] < 15
    assert manifest["not_reproducible_voices"] == []
    ds = speech_commands(root, classes="all", frontend="micro40", cache_dir=False)
    assert ds.labels == ["no", "up", "yes"]
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (6, 3, 3)
    assert ds.x_train.shape == (6, 49, 40)
    assert ds.summary["skipped_counts"]["hidden"] == 0
    noise = sorted(os.listdir(os.path.join(root, "_background_noise_")))
    assert noise == sorted(f"{k}_noise.wav" for k in kws_render.NOISE_TYPES)
    # clips are 1 s, not silent, not clipped everywhere
    w = ds.x_train.reshape(6, -1)
    assert np.isfinite(w).all()


def test_held_out_voices_are_disjoint(tiny):
    root, _ = tiny

    def speakers(list_name):
        with open(os.path.join(root, list_name)) as fh:
            return {line.split("/")[1].split("_")[0] for line in fh if line.strip()}

    val, test = speakers("validation_list.txt"), speakers("testing_list.txt")
    train = {speaker_id(v) for v in TINY["train_voices"]}
    assert val == {speaker_id(v) for v in TINY["val_voices"]}
    assert test == {speaker_id(v) for v in TINY["test_voices"]}
    assert not (train & val) and not (train & test) and not (val & test)
    # default lists: disjoint voices and disjoint variants
    variants = [
        {v.split("+")[1] for v in vs}
        for vs in (DEFAULT_TRAIN_VOICES, DEFAULT_VAL_VOICES, DEFAULT_TEST_VOICES)
    ]
    assert not (variants[0] & variants[1]) and not (variants[0] & variants[2])
    assert not (variants[1] & variants[2])
    n = len(DEFAULT_TRAIN_VOICES) + len(DEFAULT_VAL_VOICES) + len(DEFAULT_TEST_VOICES)
    assert 3000 <= n * 35 <= 6000  # default size


def test_deterministic_cached_and_independent_of_workers(tiny, tmp_path, monkeypatch):
    root, manifest = tiny
    again = generate_synthetic_kws(root, seed=0, workers=2, **TINY)
    assert again["cached"]
    # smaller chunks (2 worker processes) with one worker at a time: same bytes
    monkeypatch.setattr(synthetic_kws_params, "VOICES_PER_PROCESS", 2)
    b = str(tmp_path / "b")
    generate_synthetic_kws(b, seed=0, workers=1, **TINY)
    c = str(tmp_path / "c")
    generate_synthetic_kws(c, seed=0, workers=2, **TINY)
    assert _digest(b) == _digest(c)
    d = generate_synthetic_kws(c, seed=1, workers=2, **TINY)  # new params: redone
    assert not d["cached"] and _digest(c) != _digest(b)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"share voices \['en-us\+m1'\]"):
        generate_synthetic_kws(
            str(tmp_path / "x"), **dict(TINY, val_voices=("en-us+m1",))
        )
    with pytest.raises(ValueError, match="unknown voice 'en-us\\+nosuchvariant'"):
        generate_synthetic_kws(
            str(tmp_path / "y"), **dict(TINY, test_voices=("en-us+nosuchvariant",))
        )
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and has no synthetic_kws_manifest"):
        generate_synthetic_kws(str(foreign), **TINY)
    assert (foreign / "notes.txt").exists()


def test_bad_words(tmp_path):
    with pytest.raises(ValueError, match="'_silence_' cannot be a word folder name"):
        generate_synthetic_kws(str(tmp_path / "w"), **dict(TINY, words=("_silence_",)))
    with pytest.raises(ValueError, match="words must be unique"):
        generate_synthetic_kws(str(tmp_path / "w"), **dict(TINY, words=("no", "no")))
