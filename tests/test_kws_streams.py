"""Multi-engine synthetic set, negative speech, streaming-aware windows."""

import json
import os

import numpy as np
import pytest

from lmuformer_keras.data import generate_synthetic_kws
from lmuformer_keras.data import kws_stream_layout as layout
from lmuformer_keras.data import kws_streams as ks
from lmuformer_keras.data.kws_clips import after_context
from lmuformer_keras.data.kws_mining import mine_hard_negatives
from lmuformer_keras.data.kws_utterances import Utterance, held_out_voices
from lmuformer_keras.data.speech_commands import speech_commands
from lmuformer_keras.data.speech_commands_layout import LABELS_12

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
        engine_clips_per_word={
            "flite": 2,
            "festival": 1,
            "festival_accented": 1,
            "piper": 2,
        },  # fmt: skip
        negative_words=30,
        negative_sentences=6,
        noise_seconds=2.0,
        progress=False,
    )
    return root, manifest


def test_every_engine_renders_and_is_recorded(corpus):
    root, m = corpus
    assert m["params"]["engines"] == [
        "espeak", "flite", "festival", "festival_accented", "piper"
    ]  # fmt: skip
    assert m["engines_not_installed"] == []
    engines = {v["engine"] for v in m["voices"].values()}
    assert engines == set(m["params"]["engines"])
    assert m["not_reproducible_voices"] == ["piper:en_US-joe-medium"]
    # word clips of every engine, read back by the Speech Commands loader
    ds = speech_commands(root, classes="all", frontend="micro40", cache_dir=False)
    assert ds.labels == sorted(WORDS)
    assert ds.summary["skipped"]["non_word_folders"] == ["_utterances_"]
    n = len(WORDS) * (4 * 1 + 5 * 2 + 3 * 1 + 9 * 1 + 1 * 2)
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
    dropped = held_out_voices(m, ["festival"])
    assert "festival:ked_diphone" in dropped
    assert {"flite:kal", "flite:kal16", "flite:slt"} <= set(dropped)  # same people
    assert "flite:awb" not in dropped and "piper:en_US-joe-medium" not in dropped
    with pytest.raises(ValueError, match="'festivalx' is not an engine"):
        held_out_voices(m, ["festivalx"])


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


def test_clip_context_puts_speech_before_the_keyword(corpus):
    cfg = ks.StreamConfig(clip_context=1.0)
    rng = np.random.default_rng(0)
    keyword = np.ones(8000)
    negative = Utterance(np.full(16000, 0.5), "sentence", "a b", "espeak", "m1",
                         "train")  # fmt: skip
    for _ in range(20):
        x = after_context(keyword, [negative], 16000, rng, cfg)
        assert x.size <= 16000
        np.testing.assert_array_equal(x[-8000:], keyword)  # whole, at the end
        before = x[:-8000]
        assert 0.1 * 16000 <= np.count_nonzero(before) <= 0.6 * 16000
        assert np.count_nonzero(before[np.flatnonzero(before)[-1] + 1 :]) == 0  # pause
    # no room before a keyword as long as the clip: unchanged
    assert after_context(np.ones(16000), [negative], 16000, rng, cfg).size == 16000
    # in clips mode: the same labels, other features
    root, _ = corpus
    base = ks.stream_dataset(root, mode="clips", progress=False)
    ctx = ks.stream_dataset(root, mode="clips", config=cfg, progress=False)
    np.testing.assert_array_equal(ctx.y_train, base.y_train)
    assert not np.array_equal(ctx.x_train, base.x_train)
    assert ctx.summary["config"]["clip_context"] == 1.0
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="clip_context must be in"):
            ks.StreamConfig(clip_context=bad)


def test_frame_labels_by_hand():
    cfg = ks.StreamConfig()
    labels = list(LABELS_12)
    stop = labels.index("stop")
    # "stop" over samples [32000, 40000): frames 99..124 see it (a frame covers
    # [320 t, 320 t + 480)); the other word is seen from frame 199
    events = [(stop, 32000, 40000, True), (labels.index("_unknown_"), 64000, 70000,
                                           False)]  # fmt: skip
    lab = layout.frame_labels(events, 400, labels, 480, 320, cfg)
    assert (lab[:48] == layout.SKIP).all()
    assert lab[60] == labels.index("_silence_")
    assert lab[105] == labels.index("_unknown_")  # only the start of the word
    assert (lab[118:124] == layout.SKIP).all()  # nearly finished: not used
    assert (lab[124:145] == stop).all()  # its end in the last 20 frames
    assert (lab[145:151] == layout.SKIP).all()  # whole but old
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


def _always(prob: float, label: str = "yes"):
    def predict(x):
        p = np.full((len(x), 12), (1.0 - prob) / 11.0)
        p[:, LABELS_12.index(label)] = prob
        return p

    return predict


def test_mine_hard_negatives(corpus):
    root, _ = corpus
    unknown, silence = LABELS_12.index("_unknown_"), LABELS_12.index("_silence_")
    # a model that always fires: one window per stream (one long run of false alarms)
    x, y, s = mine_hard_negatives(_always(0.9), root, minutes=1.0, progress=False)
    assert x.shape == (2, 49, 40) and s["hard_negatives"] == 2 == s["false_alarm_runs"]
    assert set(y.tolist()) <= {unknown, silence} and s["minutes"] == 1.0
    assert s["windows_scored"] > 2 * (1500 - 49) // 2 - 10  # every 2nd window of 30 s
    # below the threshold, or firing on a non-keyword class: nothing
    for predict in (_always(0.2), _always(0.99, "_unknown_")):
        x, y, s = mine_hard_negatives(predict, root, minutes=0.5, progress=False)
        assert x.shape == (0, 49, 40) and y.shape == (0,) and s["hard_negatives"] == 0

    # a model that fires on loud windows: separate runs, the loudest kept first
    def loud(x):
        level = x[:, -5:, :].mean(axis=(1, 2))
        p = np.full((len(x), 12), 0.0)
        p[:, LABELS_12.index("stop")] = level > np.quantile(level, 0.7)
        p[:, unknown] = 1.0 - p[:, LABELS_12.index("stop")]
        return p

    x, y, s = mine_hard_negatives(loud, root, minutes=1.0, progress=False)
    assert s["false_alarm_runs"] > 2 and len(y) == s["false_alarm_runs"]
    x3, _, s3 = mine_hard_negatives(loud, root, minutes=1.0, max_windows=3,
                                    progress=False)  # fmt: skip
    assert len(x3) == 3 == s3["hard_negatives"] and s3["false_alarm_runs"] == len(y)
    for kwargs, match in (({"minutes": 0}, "minutes must be > 0"),
                          ({"threshold": 1.0}, "threshold must be in"),
                          ({"stride": 0}, "stride must be >= 1")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            mine_hard_negatives(_always(0.9), root, **kwargs)


def test_load_dataset_with_hard_negatives(corpus, tmp_path):
    from lmuformer_keras.training import datasets as dsets
    from lmuformer_keras.training import trainer

    root, _ = corpus
    ds = dsets.load_dataset("kws_streams", root, progress=False)
    model = trainer.build_model("lmuformer_tiny_kws", ds)
    path = str(tmp_path / "model.keras")
    model.save(path)
    spec = dsets.HardNegatives(path, minutes=0.5, threshold=0.01, max_fraction=0.5)
    mined = dsets.load_dataset("kws_streams", root, hard_negatives=spec,
                               progress=False)  # fmt: skip
    h = mined.summary["hard_negatives"]
    assert h["hard_negatives"] >= 1 and h["model"] == os.path.abspath(path)
    assert len(mined.y_train) == len(ds.y_train) + h["hard_negatives"]
    np.testing.assert_array_equal(mined.x_train[: len(ds.y_train)], ds.x_train)
    np.testing.assert_array_equal(mined.y_test, ds.y_test)
    with pytest.raises(dsets.DatasetError, match="--hard_negatives_from works with"):
        dsets.load_dataset("synthetic_kws", root, hard_negatives=spec)
    with pytest.raises(dsets.DatasetError, match="no such file 'nope.keras'"):
        dsets.load_dataset("kws_streams", root, hard_negatives=dsets.HardNegatives(
            "nope.keras"), progress=False)  # fmt: skip
