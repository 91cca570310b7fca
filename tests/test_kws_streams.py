"""Multi-engine synthetic set, negative speech, streaming-aware windows."""

import json
import os

import numpy as np
import pytest

from lmuformer_keras.data import generate_synthetic_kws
from lmuformer_keras.data import kws_streams as ks
from lmuformer_keras.data.speech_commands import LABELS_12, speech_commands

WORDS = ("yes", "no", "stop", "bed")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("corpus") / "set")
    manifest = generate_synthetic_kws(
        root,
        words=WORDS,
        train_voices=("en-us+m1", "en+f1"),
        val_voices=("en-us+m3",),
        test_voices=("en-gb-x-rp+f4",),
        engine_clips_per_word={"flite": 2, "festival": 1, "piper": 2},
        negative_words=30,
        negative_sentences=6,
        noise_seconds=2.0,
        progress=False,
    )
    return root, manifest


def test_every_engine_renders_and_is_recorded(corpus):
    root, m = corpus
    assert m["params"]["engines"] == ["espeak", "flite", "festival", "piper"]
    assert m["engines_not_installed"] == []
    engines = {v["engine"] for v in m["voices"].values()}
    assert engines == set(m["params"]["engines"])
    assert m["not_reproducible_voices"] == ["piper:en_US-joe-medium"]
    # word clips of every engine, read back by the Speech Commands loader
    ds = speech_commands(root, classes="all", frontend="micro40", cache_dir=False)
    assert ds.labels == sorted(WORDS)
    assert ds.summary["skipped"]["non_word_folders"] == ["_utterances_"]
    n = len(WORDS) * (4 * 1 + 5 * 2 + 3 * 1 + 1 * 2)
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == n
    # each voice's utterances: its words and its share of the negative speech
    info = m["voices"]["flite:slt"]
    with np.load(os.path.join(root, info["utterances"])) as data:
        records = json.loads(str(data["records"]))
        bounds = data["bounds"]
    kinds = {r["kind"] for r in records}
    assert "word" in kinds and kinds & {"near_miss", "negative_word", "sentence"}
    assert len(bounds) == len(records) == info["utterance_count"]
    texts = {r["text"] for r in records if r["kind"] != "word"}
    assert not texts & {"yes", "no", "stop", "know", "up"}
    assert all(r["split"] in ("train", "val") for r in records)


def test_held_out_engine_drops_its_speakers(corpus):
    root, m = corpus
    dropped = ks.held_out_voices(m, ["festival"])
    assert "festival:ked_diphone" in dropped
    assert {"flite:kal", "flite:kal16", "flite:slt"} <= set(dropped)  # same people
    assert "flite:awb" not in dropped and "piper:en_US-joe-medium" not in dropped
    with pytest.raises(ValueError, match="'festivalx' is not an engine"):
        ks.held_out_voices(m, ["festivalx"])


@pytest.mark.parametrize("mode", ks.MODES)
def test_stream_dataset(corpus, mode):
    root, _ = corpus
    ds = ks.stream_dataset(root, exclude_engines=["piper"], mode=mode, progress=False)
    assert ds.labels == list(LABELS_12)
    assert ds.x_train.shape[1:] == (49, 40) and np.isfinite(ds.x_train).all()
    counts = np.bincount(ds.y_train, minlength=12)
    assert counts[0] > 0 and counts[1] > 0  # silence, unknown
    assert all(counts[LABELS_12.index(w)] > 0 for w in ("yes", "no", "stop"))
    assert counts[LABELS_12.index("up")] == 0  # not rendered
    assert "piper" not in ds.summary["engines"]
    again = ks.stream_dataset(root, exclude_engines=["piper"], mode=mode,
                              progress=False)  # fmt: skip
    np.testing.assert_array_equal(again.x_train, ds.x_train)


def test_frame_labels_by_hand():
    cfg = ks.StreamConfig()
    labels = list(LABELS_12)
    stop = labels.index("stop")
    # "stop" over samples [32000, 40000): frames 99..124 see it (a frame covers
    # [320 t, 320 t + 480)); the other word is seen from frame 199
    events = [(stop, 32000, 40000, True), (labels.index("_unknown_"), 64000, 70000,
                                           False)]  # fmt: skip
    lab = ks.frame_labels(events, 400, labels, 480, 320, cfg)
    assert (lab[:48] == ks.SKIP).all()
    assert lab[60] == labels.index("_silence_")
    assert lab[105] == labels.index("_unknown_")  # only the start of the word
    assert (lab[118:124] == ks.SKIP).all()  # nearly finished: not used
    assert (lab[124:145] == stop).all()  # its end in the last 20 frames
    assert (lab[145:151] == ks.SKIP).all()  # whole but old
    assert lab[160] == labels.index("_unknown_")  # only its tail
    assert lab[175] == labels.index("_silence_")
    assert lab[210] == labels.index("_unknown_")  # other speech
    assert lab[330] == labels.index("_silence_")


def test_stream_dataset_errors(corpus, tmp_path):
    root, _ = corpus
    with pytest.raises(ValueError, match="mode must be one of"):
        ks.stream_dataset(root, mode="frames")
    with pytest.raises(FileNotFoundError, match="No synthetic_kws_manifest.json"):
        ks.stream_dataset(str(tmp_path))
