"""Keyword detection on long streams with the trained model (``apps/pretrained``).

``apps/pretrained/tiny_kws_synthetic`` is an int8 LMUFormer ``tiny_kws`` export
trained on the synthetic keywords of every engine (espeak-ng, flite, festival, Piper),
with its detection smoothing (980 ms, 0.98) chosen on espeak-ng validation voices and
written into its metadata. :mod:`lmuformer_apps.kws_stream.evaluate`
builds a long stream of keywords spoken by held-out voices (gaps and continuous noise
between them) and a noise-only stream; :class:`KWSStream` with the default smoothing
must detect at least 80 % of the keywords within 0.5 s of their end, with at most one
false detection per minute of noise. The streams are rendered in a fresh process, so
the figures are the same in every run (measured: see the asserts' comments).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

import apps_fixtures as af

af.ensure_apps_importable()

from lmuformer_apps.kws_stream import KWSStream  # noqa: E402
from lmuformer_apps.kws_stream import evaluate as ev  # noqa: E402
from lmuformer_apps.kws_stream.smoothing import Detection  # noqa: E402
from lmuformer_keras.contract import ExportMetadata  # noqa: E402

MODEL_DIR = os.path.join(af.REPO, "apps", "pretrained", "tiny_kws_synthetic")
SMALL_MODEL_DIR = os.path.join(af.REPO, "apps", "pretrained", "small_kws_synthetic")
# the shipped models, the preset each was trained with, and its board's budgets:
# (flash for model.tflite, RAM for the TFLite Micro arena), in bytes
SHIPPED = {
    "tiny": (MODEL_DIR, "lmuformer_tiny_kws", 64 * 1024, 32 * 1024),
    "small": (SMALL_MODEL_DIR, "lmuformer_small_kws", 256 * 1024, 128 * 1024),
}
SEED = 7  # not one of the seeds the smoothing defaults were chosen on (0-4)


@pytest.fixture(scope="module")
def stream():
    return KWSStream.from_dir(MODEL_DIR, history_frames=0)


@pytest.fixture(scope="module", params=sorted(SHIPPED))
def shipped_stream(request):
    """A stream over each shipped model (tiny, small)."""
    return KWSStream.from_dir(SHIPPED[request.param][0], history_frames=0)


@pytest.fixture(scope="module")
def voices():
    # two accents of each held-out variant (m6, f4, klatt5): 6 voices
    return list(ev.default_test_voices()[::4])


@pytest.fixture(scope="module")
def keywords(voices):
    # without speaker / channel variety: clean held-out espeak-ng voices. (The
    # engine-by-engine figures with channel variety: docs/kws_robustness.md.)
    return ev.keyword_stream(ev.KEYWORDS, voices, seed=SEED, channel=False)


def _dbfs(x: np.ndarray) -> float:
    x = x.astype(np.float64) / 32768.0
    return 10.0 * np.log10(np.mean(x**2) + 1e-20)


def test_keyword_stream_layout(keywords, voices):
    samples, events = keywords
    assert samples.dtype == np.int16
    assert len(events) == len(ev.KEYWORDS) * len(voices) == 60
    assert sorted(e[0] for e in events) == sorted(ev.KEYWORDS * len(voices))
    starts = np.array([a for _, a, _ in events])
    ends = np.array([b for _, _, b in events])
    assert np.all(ends > starts) and np.all(ends - starts < 1.01)
    gaps = starts - np.concatenate([[0.0], ends[:-1]])
    assert gaps.min() >= 1.0 and gaps.max() <= 2.0
    assert samples.shape[0] / ev.SAMPLE_RATE == pytest.approx(ends[-1] + 3.0, abs=1e-3)
    # background in every gap and after the last word, at -50 dBFS RMS (over a 1-2 s
    # gap, brown noise, mostly slow drift, can be far from its long-term RMS)
    gap_starts = np.concatenate([[0.0], ends])
    gap_ends = np.append(starts, ends[-1] + 3.0)
    levels = [
        _dbfs(samples[int(a * ev.SAMPLE_RATE) + 80 : int(b * ev.SAMPLE_RATE) - 80])
        for a, b in zip(gap_starts, gap_ends, strict=True)
    ]
    assert min(levels) > -70.0 and max(levels) < -40.0
    assert np.median(levels) == pytest.approx(ev.DEFAULT_NOISE_DBFS, abs=1.5)
    # words 10-30 dB above it (the background adds to the word's power)
    for _, a, b in events:
        word = samples[int(a * ev.SAMPLE_RATE) : int(b * ev.SAMPLE_RATE)]
        assert -40.5 <= _dbfs(word) <= -19.5
    # rendered in a fresh process: the same samples every time
    again, events_again = ev.keyword_stream(ev.KEYWORDS, voices[:1], seed=SEED)
    once, _ = ev.keyword_stream(ev.KEYWORDS, voices[:1], seed=SEED)  # channel too
    assert np.array_equal(again, once) and len(events_again) == 10


def test_keywords_detected_at_the_right_time(shipped_stream, keywords):
    samples, events = keywords
    found = ev.run_stream(shipped_stream, samples)
    result = ev.score_detections(
        found, events, tolerance_s=0.5, duration_s=samples.shape[0] / 16000
    )
    print(json.dumps({k: result[k] for k in ("hits", "misses", "false_detections")}))
    print("missed", result["missed"], "false", result["false"], result["latency_s"])
    # measured: tiny 50 / 60 (recall 0.83; 2 of 6 "off" found), small 55 / 60
    # (0.92); median latency -0.06 / -0.09 s (before the word's end). The espeak-ng-only
    # model found 59 / 60 here, at 15 false detections per minute of non-keyword
    # speech against the tiny model's 0.0. Six renderings per word are too few to
    # rank models word by word (on the judge's 24 per word, the tiny model finds
    # "off" 11 times, the four-engine model before it 6), so each word must be found
    # at least twice: a word the model cannot hear at all still fails.
    assert result["keywords"] == 60
    assert result["recall"] >= 0.80, result["missed"]
    assert all(c["hits"] >= 2 for c in result["per_word"].values()), result["per_word"]
    assert -0.5 < result["latency_s"]["median"] < 0.3
    # false detections while keywords are spoken (mostly a word's end read as another
    # word, e.g. "up" after "stop"): measured 2 in 2 min (1.0 / min; small 1.0); the
    # espeak-ng-only model gave 12 (6.1 / min)
    assert result["false_per_minute"] <= 10.0, result["false"]


def test_noise_only_stream_has_at_most_one_false_detection_per_minute(
    shipped_stream,
):
    samples = ev.noise_stream(3.5, seed=SEED)
    assert samples.shape[0] == 3.5 * 60 * 16000
    seconds = samples.reshape(-1, 16000)
    levels = [_dbfs(s) for s in seconds]
    assert max(levels) > -35.0  # loud noise ...
    assert min(levels) < -85.0  # ... and (near) silence
    found = ev.run_stream(shipped_stream, samples)
    result = ev.score_detections(found, [], duration_s=samples.shape[0] / 16000)
    # measured: 0 false detections (both models)
    assert result["minutes"] == pytest.approx(3.5)
    assert result["false_per_minute"] <= 1.0, result["false"]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_fits_its_board_and_says_what_it_is(name):
    """Flash and arena within the board's budget, as measured by the export; the
    metadata valid (format version 2) and made for the preset it names; both models
    share one label list and one frontend."""
    model_dir, preset, flash, arena = SHIPPED[name]
    meta = ExportMetadata.load(os.path.join(model_dir, "metadata.json"))
    size = os.path.getsize(os.path.join(model_dir, meta.model_file))
    assert size == meta.model_bytes <= flash, (size, meta.model_bytes, flash)
    assert meta.arena_bytes_min <= meta.arena_bytes <= arena, meta.arena_bytes
    with open(os.path.join(model_dir, "train_metrics.json"), encoding="utf-8") as f:
        assert json.load(f)["config"]["preset"] == preset
    tiny = ExportMetadata.load(os.path.join(MODEL_DIR, "metadata.json"))
    assert meta.labels == tiny.labels
    assert meta.frontend == tiny.frontend


def test_score_detections_by_hand():
    events = [("yes", 1.0, 1.5), ("no", 4.0, 4.4), ("up", 8.0, 8.3), ("go", 12.0, 12.4)]
    detections = [
        Detection("yes", 2, 1400.0, 0.99),  # hit, 0.1 s before the end
        Detection("yes", 2, 1900.0, 0.99),  # hit already used: false
        ("no", 4.95),  # 0.55 s after the end: a miss and a false detection
        ("down", 8.2),  # wrong label: false, and "up" is missed
        ("go", 12.9),  # exactly end + tolerance: hit
        ("_silence_", 3.0),  # ignored labels are never counted
        ("_unknown_", 8.1),
    ]
    r = ev.score_detections(detections, events, tolerance_s=0.5, duration_s=120.0)
    assert (r["keywords"], r["hits"], r["misses"], r["false_detections"]) == (
        4,
        2,
        2,
        3,
    )
    assert r["recall"] == 0.5
    assert r["false_per_minute"] == pytest.approx(1.5)
    assert r["missed"] == [("no", 4.0, 4.4), ("up", 8.0, 8.3)]
    assert r["false"] == [("yes", 1.9), ("no", 4.95), ("down", 8.2)]
    assert r["per_word"]["yes"] == {"keywords": 1, "hits": 1, "false": 1}
    assert r["per_word"]["down"] == {"keywords": 0, "hits": 0, "false": 1}
    assert r["latency_s"]["min"] == pytest.approx(-0.1)
    assert r["latency_s"]["max"] == pytest.approx(0.5)
    # a detection before the word's start does not count for it
    early = ev.score_detections([("yes", 0.9)], [("yes", 1.0, 1.5)])
    assert (early["hits"], early["false_detections"]) == (0, 1)
    # nothing spoken, nothing detected
    empty = ev.score_detections([], [], duration_s=60.0)
    assert empty["false_per_minute"] == 0.0 and empty["latency_s"] is None
    with pytest.raises(ValueError, match="tolerance_s=-1"):
        ev.score_detections([], events, tolerance_s=-1)
    with pytest.raises(ValueError, match="ends before it starts"):
        ev.score_detections([], [("yes", 2.0, 1.0)])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"gap_s=\(2.0, 1.0\)"):
        ev.keyword_stream(["yes"], ["en-us+m6"], gap_s=(2.0, 1.0))
    with pytest.raises(ValueError, match="repeats=0"):
        ev.keyword_stream(["yes"], ["en-us+m6"], repeats=0)
    with pytest.raises(ValueError, match="noise_dbfs=3"):
        ev.keyword_stream(["yes"], ["en-us+m6"], noise_dbfs=3.0)
    with pytest.raises(ValueError, match="minutes=0"):
        ev.noise_stream(0)


def test_missing_lmuformer_keras_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "lmuformer_keras.data", None)
    with pytest.raises(ImportError, match="renders keywords with espeak-ng"):
        ev.noise_stream(0.1)


def test_cli_writes_report(tmp_path, capsys):
    out = tmp_path / "report.json"
    code = ev.main(
        [
            "--model_dir",
            MODEL_DIR,
            "--voices",
            "en-us+f4,en-gb-scotland+klatt5",
            "--no_channel",
            "--minutes",
            "0.5",
            "--seed",
            str(SEED),
            "--out",
            str(out),
            "--wav_dir",
            str(tmp_path / "wavs"),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "keywords:" in text and "noise only:" in text
    report = json.loads(out.read_text())
    kw = report["keyword_stream"]
    assert kw["keywords"] == 20 and kw["recall"] >= 0.8
    assert kw["channel"] is False
    with open(os.path.join(MODEL_DIR, "metadata.json")) as f:
        shipped = json.load(f)
    assert (
        report["smoothing"]["detection_threshold"]
        == (shipped["smoothing"]["detection_threshold"])
    )
    assert report["noise_stream"]["minutes"] == pytest.approx(0.5)
    assert sorted(os.listdir(tmp_path / "wavs")) == [
        "keywords.json",
        "keywords.wav",
        "noise.wav",
    ]
    assert ev.main(["--model_dir", MODEL_DIR, "--minutes", "-1"]) == 1
    assert "noise_minutes=-1" in capsys.readouterr().err


def test_thirty_minute_keyword_stream_keeps_detecting(stream, keywords):
    """30 minutes of the keyword stream, repeated, through one ``KWSStream``.

    The stream is padded to whole hops so every repetition is frame-aligned. After the
    first repetition (which starts from zero states) nothing may drift: the states
    stay inside the int8 range without pinning, and every repetition detects the
    keywords as well as the first one did.
    """
    samples, events = keywords
    hop = 320
    pad = (-samples.shape[0]) % hop
    period = np.concatenate([samples, np.zeros(pad, np.int16)])
    period_s = period.shape[0] / ev.SAMPLE_RATE
    reps = int(np.ceil(30 * 60 / period_s))
    stream.reset()
    per_rep, saturated = [], []
    for _ in range(reps):
        found = []
        for start in range(0, period.shape[0], 16000):
            found.extend(stream.push(period[start : start + 16000]))
        per_rep.append(found)
        states = stream.interpreter.states
        saturated.append(
            max(float(np.mean(np.abs(s.astype(np.int32)) >= 127)) for s in states)
        )
    assert reps * period_s >= 30 * 60
    offsets = [0.0] + [period_s * (k + 1) for k in range(reps - 1)]
    recalls = []
    for found, offset in zip(per_rep, offsets, strict=True):
        shifted = [(d.label, d.time_ms / 1000.0 - offset) for d in found]
        r = ev.score_detections(shifted, events, duration_s=period_s)
        recalls.append(r["recall"])
    # measured: 0.85-0.87 in every repetition; no state pinned at the rails
    assert min(recalls) >= 0.80, recalls
    assert max(recalls) - min(recalls) <= 0.05, recalls
    assert max(saturated) < 0.5, saturated
    scores = [d.score for found in per_rep for d in found]
    assert all(0.0 <= x <= 1.0 for x in scores)


def test_engine_evaluation_cli(tmp_path, capsys):
    """``--engine``: four streams of another engine's voices, confusion matrix."""
    from lmuformer_apps.kws_stream import held_out

    out = tmp_path / "flite.json"
    code = ev.main(
        ["--model_dir", MODEL_DIR, "--engine", "flite", "--minutes", "0.2",
         "--speech_minutes", "0.3", "--seed", str(SEED), "--keywords", "51",
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "engine flite (5 voices)" in text and "confusion" in text
    report = json.loads(out.read_text())
    assert report["voices"] == ["kal", "kal16", "awb", "rms", "slt"]
    # --keywords 51: 10 keywords x 5 voices, repeated twice
    assert report["isolated"]["keywords"] == report["phrases"]["keywords"] == 100
    spoken = sum(sum(row.values()) for row in report["confusion"].values())
    assert spoken == 200  # every keyword of both streams, detected or missed
    misses = sum(row.get("miss", 0) for row in report["confusion"].values())
    hits = sum(row.get(w, 0) for w, row in report["confusion"].items())
    assert hits <= report["isolated"]["hits"] + report["phrases"]["hits"]
    assert misses >= report["isolated"]["misses"] + report["phrases"]["misses"] - 200
    low, high = report["summary"]["isolated_recall_ci95"]
    assert 0.0 <= low <= report["isolated"]["recall"] <= high <= 1.0 and low < high
    s = report["summary"]
    assert s["speech_minutes"] >= 0.3 and s["noise_hours"] == pytest.approx(0.2 / 60)
    assert set(s["meets"]) == set(held_out.GOALS)
    table = held_out.leave_one_out_table([report])
    assert table.splitlines()[2].startswith("| flite | 5 |")
    named = held_out.leave_one_out_table([report], ["streams"]).splitlines()
    assert named[0].startswith("| held-out engine | model |")
    assert named[1].count("|") == 9
    assert named[2].startswith("| flite | streams | 5 |")
    with pytest.raises(ValueError, match="2 model names for 1 reports"):
        held_out.leave_one_out_table([report], ["a", "b"])
    assert ev.main(["--model_dir", MODEL_DIR, "--engine", "nope"]) == 1
    assert "unknown text-to-speech engine 'nope'" in capsys.readouterr().err
    for argv, message in (
        (["--keywords", "0", "--engine", "flite"], "--keywords must be >= 1, got"),
        (["--keywords", "100"], "--keywords=100 needs --engine"),
    ):
        with pytest.raises(SystemExit) as stop:
            ev.main(["--model_dir", MODEL_DIR, *argv])
        assert stop.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(ValueError, match="min_keywords must be an integer >= 1"):
        held_out.evaluate_engine(MODEL_DIR, "flite", min_keywords=0)


_DROP = object()  # _model_copy: a copy without a smoothing record


def _model_copy(tmp_path, smoothing=None):
    import shutil

    out = tmp_path / "model"
    shutil.copytree(MODEL_DIR, out)
    if smoothing is not None:
        meta = json.loads((out / "metadata.json").read_text())
        if smoothing is _DROP:
            del meta["smoothing"]
        else:
            meta["smoothing"] = smoothing
        (out / "metadata.json").write_text(json.dumps(meta))
    return str(out)


def test_metadata_smoothing_is_the_apps_default(tmp_path):
    from lmuformer_apps.kws_stream import MetadataError

    shipped = KWSStream.from_dir(MODEL_DIR).smoother
    assert (shipped.average_window_ms, shipped.detection_threshold) == (980.0, 0.98)
    plain = KWSStream.from_dir(_model_copy(tmp_path / "a", smoothing=_DROP)).smoother
    assert plain.average_window_ms == 700.0 and plain.detection_threshold == 0.95
    tuned = _model_copy(tmp_path / "b", {"average_window_ms": 300,
                                         "detection_threshold": 0.7})  # fmt: skip
    sm = KWSStream.from_dir(tuned).smoother
    assert (sm.average_window_ms, sm.detection_threshold) == (300.0, 0.7)
    assert sm.suppression_ms == plain.suppression_ms  # not in the record: default
    given = KWSStream.from_dir(tuned, detection_threshold=0.9).smoother
    assert (given.average_window_ms, given.detection_threshold) == (300.0, 0.9)
    cases = ((["x"], "'smoothing' must be an object"),
             ({"detection_threshold": "high"}, "must be a number"),
             ({"average_window_ms": -5}, "average_window_ms"))  # fmt: skip
    for record, match in cases:
        bad = _model_copy(tmp_path / f"bad{len(str(record))}", record)
        with pytest.raises(MetadataError, match=match):
            KWSStream.from_dir(bad)


def test_tune_smoothing_on_validation_voices(tmp_path, capsys):
    from lmuformer_apps.kws_stream import tune_smoothing as ts

    model = _model_copy(tmp_path)
    result = ts.tune(model, voices=["en-us+m3", "en+f2"], speech_minutes=0.5,
                     noise_minutes=0.5, windows_ms=(300.0, 700.0),
                     thresholds=(0.6, 0.95))  # fmt: skip
    assert len(result["grid"]) == 4
    best = result["smoothing"]
    row = next(r for r in result["grid"]
               if (r["average_window_ms"], r["detection_threshold"])
               == (best["average_window_ms"], best["detection_threshold"]))  # fmt: skip
    qualified = [r for r in result["grid"] if r["speech_false_per_minute"] <= 0.5
                 and not r["noise_false"]]  # fmt: skip
    assert result["chosen_by"]["qualified"] == bool(qualified)
    if qualified:
        assert row["recall"] == max(r["recall"] for r in qualified)
    # a lower threshold never reports less at the same window: each label's moments
    # above it are a superset, and reports at least suppression_ms apart taken
    # earliest first are the most such a set holds. In streams without keywords every
    # report is false, so their rate cannot drop (recall may: an early report outside
    # the tolerance suppresses the timely one)
    rows = {(r["average_window_ms"], r["detection_threshold"]): r
            for r in result["grid"]}  # fmt: skip
    for w in (300.0, 700.0):
        lo, hi = rows[(w, 0.6)], rows[(w, 0.95)]
        for name in ("sentences", "noise"):
            assert lo[name]["false_per_minute"] >= hi[name]["false_per_minute"]
    ts.write_smoothing(model, result)
    sm = KWSStream.from_dir(model).smoother
    assert sm.average_window_ms == best["average_window_ms"]
    assert sm.detection_threshold == best["detection_threshold"]
    with pytest.raises(ValueError, match="max_false_per_minute must be >= 0"):
        ts.tune(model, max_false_per_minute=-1)
    assert ts.main(["--model_dir", model, "--max_false_per_minute", "-1"]) == 1
    assert "max_false_per_minute must be >= 0, got -1" in capsys.readouterr().err
