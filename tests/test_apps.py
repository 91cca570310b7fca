"""Laptop streaming app (``lmuformer_apps.kws_stream``) on a stand-in exported model.

The stand-in (``tests/apps_fixtures.py``) is a tiny int8 tone spotter with two states
written in the exporter's ``metadata.json`` format, so the runner, state copy,
metadata checks, smoothing and CLI all run for real. TensorFlow is only used to convert
the stand-in; the apps use LiteRT, beside any Keras backend.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import apps_fixtures as af

PYTHONPATH = af.ensure_apps_importable()

from lmuformer_apps.kws_stream import (  # noqa: E402
    AudioFileError,
    KWSStream,
    MetadataError,
    RecognizeCommands,
    StreamingInterpreter,
    cli,
    is_ignored_label,
    quantize,
    read_wav,
    softmax,
    write_wav,
)

LABELS = ["_silence_", "_unknown_", "yes", "no"]
# The stand-in's posteriors are much softer than a trained model's (its clipped tone
# peaks at 0.85, under the default threshold 0.95): streams over it use this.
STANDIN_SMOOTHING = {"detection_threshold": 0.6}


@pytest.fixture(scope="module")
def export_dir():
    return af.standin_export_dir("int8")


# ------------------------------------------------------------------- smoothing
def _one_hot(index, n=4, p=0.9):
    v = np.full(n, (1.0 - p) / (n - 1))
    v[index] = p
    return v


def test_smoothing_defaults_and_validation():
    rc = RecognizeCommands(LABELS)
    assert rc.average_window_ms == 700 and rc.detection_threshold == 0.95
    assert rc.suppression_ms == 1000 and rc.minimum_count == 10
    assert rc.ignored.tolist() == [True, True, False, False]
    for kwargs, name in (
        ({"average_window_ms": 0}, "average_window_ms"),
        ({"detection_threshold": 1.5}, "detection_threshold"),
        ({"suppression_ms": -1}, "suppression_ms"),
        ({"minimum_count": 0}, "minimum_count"),
        ({"ignored_labels": ["nope"]}, "ignored_labels"),
    ):
        with pytest.raises(ValueError, match=name):
            RecognizeCommands(LABELS, **kwargs)
    with pytest.raises(ValueError, match="expected 4 posteriors"):
        rc.process(np.ones(3) / 3, 0)
    rc.process(_one_hot(0), 100)
    with pytest.raises(ValueError, match="before the previous"):
        rc.process(_one_hot(0), 80)
    assert is_ignored_label("_silence_") and is_ignored_label("unknown")
    assert not is_ignored_label("yes") and not is_ignored_label("_x")


def test_smoothing_detects_suppresses_and_ignores():
    rc = RecognizeCommands(
        LABELS,
        average_window_ms=500,
        detection_threshold=0.6,
        suppression_ms=2000,
        minimum_count=5,
    )
    times = np.arange(0, 6000, 20)
    label_at = np.zeros(times.shape[0], int)  # silence
    label_at[(times >= 500) & (times < 1000)] = 2  # yes
    label_at[(times >= 1000) & (times < 1500)] = 3  # no, right after: reported
    label_at[(times >= 1500) & (times < 2000)] = 2  # yes again, inside suppression
    label_at[(times >= 3000) & (times < 3500)] = 1  # unknown: never reported
    label_at[(times >= 4000) & (times < 4500)] = 2  # yes, after suppression
    found = rc.process_many([_one_hot(i) for i in label_at], times)
    # the 25-frame geometric mean of 0.9 / 0.033 posteriors reaches 0.6 with 16
    # frames (the arithmetic mean would need 17)
    assert [(d.label, d.time_ms) for d in found] == [
        ("yes", 800.0),
        ("no", 1300.0),
        ("yes", 4300.0),
    ]
    assert all(0.6 <= d.score <= 1 for d in found)
    # a silence-only or unknown-only stream never detects
    rc.reset()
    assert not rc.process_many([_one_hot(0)] * 100, np.arange(100) * 20)
    rc.reset()
    assert not rc.process_many([_one_hot(1, p=1.0)] * 100, np.arange(100) * 20)


def test_smoothing_minimum_count_and_window():
    rc = RecognizeCommands(LABELS, average_window_ms=100, minimum_count=3)
    assert rc.process(_one_hot(2, p=1.0), 0) is None  # 1 result < minimum_count
    assert rc.scores is None
    assert rc.process(_one_hot(2, p=1.0), 20) is None
    detection = rc.process(_one_hot(2, p=1.0), 40)
    assert detection is not None and detection.label == "yes"
    # results older than the window are dropped: 100 ms window at 20 ms -> 5 results
    for t in range(60, 400, 20):
        rc.process(_one_hot(0, p=1.0), t)
    assert rc.scores[0] == pytest.approx(1.0)
    # a gap longer than the window leaves 1 result: below minimum_count again
    assert rc.process(_one_hot(2, p=1.0), 2000) is None and rc.scores is None


def test_softmax_stable():
    p = softmax(np.array([1000.0, 0.0, -1000.0]))
    assert np.isfinite(p).all() and p[0] == pytest.approx(1.0)


# --------------------------------------------------------------------- runner
def test_quantize_rounds_half_away_and_saturates():
    q = quantize(np.array([0.5, -0.5, 1.5, -1.5, 1e9, -1e9, np.nan]), 1.0, 0, np.int8)
    assert q.tolist() == [1, -1, 2, -2, 127, -128, 0]
    assert quantize(np.array([0.25]), None, 0, np.float32).dtype == np.float32


def test_interpreter_reads_metadata_and_tracks_float_reference(export_dir):
    it = StreamingInterpreter(export_dir)
    assert it.labels == af.STANDIN_LABELS and it.num_features == 40
    assert [s.name for s in it.state_infos] == ["leaky", "buffer"]
    init = it.initial_states()
    assert [s.shape for s in init] == [(1, 4), (1, 3, 4)]
    for state, info in zip(init, it.state_infos, strict=True):
        assert np.all(state == info.input.zero_point)  # quantized 0.0
    from lmuformer_keras.features import get_frontend

    frames = get_frontend("micro40")(af.tone_stream()[0], pad=False)
    logits = it.run(frames)
    # float reference with the same (dequantized) frames
    fi = it.frame_info
    q = quantize(frames, fi.scale, fi.zero_point, fi.dtype)
    x = ((q.astype(np.float64) - fi.zero_point) * fi.scale).astype(np.float32)
    leaky, buffer = np.zeros((1, 4), np.float32), np.zeros((1, 3, 4), np.float32)
    ref = []
    for t in range(frames.shape[0]):
        out, leaky, buffer = af.standin_float_step(x[t : t + 1], leaky, buffer)
        ref.append(out[0])
    ref = np.stack(ref)
    # int8 rounding of every op over a recurrent state: a few output LSB at most
    lsb = it.logits_info.scale
    assert np.max(np.abs(logits - ref)) < 6 * lsb, np.max(np.abs(logits - ref)) / lsb
    # states really carried: without the state copy the leaky part would be 5x off
    assert np.mean(np.argmax(logits, 1) == np.argmax(ref, 1)) > 0.97
    # reset replays bit-exactly
    it.reset()
    assert np.array_equal(it.run(frames), logits)
    assert it.frames_processed == frames.shape[0]


def test_state_bytes_are_copied_each_step(export_dir):
    """The state input of step t+1 is the state output of step t, byte for byte."""
    it = StreamingInterpreter(export_dir)
    interp = it._interpreter
    from lmuformer_keras.features import get_frontend

    frames = get_frontend("micro40")(af.tone_stream()[0], pad=False)[:40]
    for frame in frames:
        before = it.states
        it.step(frame)
        fed = [
            interp.get_tensor(it._in_index[s.input.position]) for s in it.state_infos
        ]
        for a, b in zip(before, fed, strict=True):
            assert np.array_equal(a, b)
        outs = [
            interp.get_tensor(it._out_index[s.output.position]) for s in it.state_infos
        ]
        for a, b in zip(it.states, outs, strict=True):
            assert np.array_equal(a, b)


def _tied(k: int, key: str, value) -> dict:
    """A change to both tensors of state ``k`` (they are tied)."""
    return {f"states.{k}.input.{key}": value, f"states.{k}.output.{key}": value}


def _mismatch_cases(meta):
    leaky = meta["states"][0]["input"]
    return [
        ({"frame.scale": meta["frame"]["scale"] * 1.5}, "frame input.*scale"),
        ({"frame.zero_point": 5}, "frame input.*zero_point"),
        ({"logits.dtype": "int16"}, "'int8' but the logits output is int16"),
        (_tied(0, "scale", leaky["scale"] * 2), "state 0 \\('leaky'\\).*scale"),
        (_tied(1, "zero_point", 7), "state 1 \\('buffer'\\).*zero_point"),
        (_tied(0, "shape", [1, 5]), "state 0.*shape"),
        (
            {
                "states.0.input.position": meta["states"][1]["input"]["position"],
                "states.1.input.position": meta["states"][0]["input"]["position"],
            },
            "state 0.*shape",
        ),
        ({"labels": ["a"] * 5}, "5 labels but the logits have num_classes=4"),
        ({"frame.position": 7}, "frame position=7 is out of range"),
        ({"states": meta["states"][:1]}, "1 state\\(s\\).*model has 3 inputs"),
        ({"frame.shape": [1, 32]}, "shape \\[1, 40\\], metadata implies \\[1, 32\\]"),
        (_tied(0, "scale", None), "an int8 tensor needs a scale"),
        (
            {"states.0.output.scale": 0.5},
            "states\\[0\\].*input .* and output .* differ",
        ),
        ({"frame_input_index": 0}, "unknown key\\(s\\) \\['frame_input_index'\\]"),
    ]


def test_metadata_mismatch_is_refused_naming_it(export_dir, tmp_path):
    with open(os.path.join(export_dir, "metadata.json")) as fh:
        meta = json.load(fh)
    for k, (changes, pattern) in enumerate(_mismatch_cases(meta)):
        bad = af.copy_export(export_dir, str(tmp_path / f"bad{k}"), **changes)
        with pytest.raises(MetadataError, match=pattern):
            StreamingInterpreter(bad)


def test_metadata_missing_or_not_json(export_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="metadata.json"):
        StreamingInterpreter(str(tmp_path))
    bad = af.copy_export(export_dir, str(tmp_path / "bad"))
    with open(os.path.join(bad, "metadata.json"), "w") as fh:
        fh.write("{not json")
    with pytest.raises(MetadataError, match="not valid JSON"):
        StreamingInterpreter(bad)
    bad2 = af.copy_export(export_dir, str(tmp_path / "bad2"))
    with open(os.path.join(bad2, "model.tflite"), "wb") as fh:
        fh.write(b"garbage" * 10)
    with pytest.raises(MetadataError, match="not a loadable TFLite model"):
        StreamingInterpreter(bad2)


def test_version_1_export_folder_still_runs(export_dir, tmp_path):
    """A version-1 ``metadata.json`` (the layout before the contract) is upgraded on
    reading and streams exactly as the version-2 one."""
    with open(os.path.join(export_dir, "metadata.json")) as fh:
        meta = json.load(fh)
    old = af.copy_export(export_dir, str(tmp_path / "v1"))
    af.write_metadata(old, af.as_version_1(meta))
    frames = np.random.default_rng(0).normal(size=(20, 40)).astype(np.float32)
    it1, it2 = StreamingInterpreter(old), StreamingInterpreter(export_dir)
    assert it1.metadata == it2.metadata
    np.testing.assert_array_equal(it1.run(frames), it2.run(frames))
    # without tensor_shape / initial_quantized: "shape" is without the batch axis
    v1 = af.as_version_1(meta)
    for state in v1["states"]:
        state.pop("tensor_shape")
        state.pop("initial_quantized")
    af.write_metadata(old, v1)
    it = StreamingInterpreter(old)
    assert [s.shape for s in it.initial_states()] == [(1, 4), (1, 3, 4)]


# ---------------------------------------------------------------- KWS stream
def _check_detections(detections, events, latency_s=0.6):
    assert [d.label for d in detections] == [label for label, _, _ in events]
    for d, (_, start, end) in zip(detections, events, strict=True):
        assert start < d.time_ms / 1000.0 < min(end, start + latency_s) + 0.05


def test_stream_detects_tones_in_any_chunking(export_dir):
    x, events = af.tone_stream()
    whole = KWSStream.from_dir(export_dir, **STANDIN_SMOOTHING)
    found = whole.push(x)
    _check_detections(found, events)
    times, post, smoothed = whole.history()
    assert post.shape == (whole.frames, 4) and np.isnan(smoothed[0]).all()
    assert times[0] == 30.0 and np.allclose(np.diff(times), 20.0)
    # the same stream in random chunks (including empty ones) gives the same result
    rng = np.random.default_rng(0)
    chunked = KWSStream.from_dir(export_dir, **STANDIN_SMOOTHING)
    found2, pos = [], 0
    while pos < x.shape[0]:
        n = int(rng.integers(0, 900))
        found2 += chunked.push(x[pos : pos + n])
        pos += n
    assert found2 == found
    assert np.array_equal(chunked.history()[1], post)
    # reset restarts the stream exactly
    whole.reset()
    assert whole.push(x) == found


def test_stream_bad_audio_never_crashes(export_dir):
    stream = KWSStream.from_dir(export_dir)
    assert stream.push(np.zeros(0, np.int16)) == []
    assert stream.push(np.zeros(100, np.int16)) == []  # shorter than a frame
    assert stream.push(np.zeros(16000 * 3, np.int16)) == []  # digital silence
    loud = np.full(16000, 32767, np.int16)  # DC at full scale (clipping)
    stream.push(loud)
    square = np.where(np.arange(16000) % 32 < 16, 32767, -32768).astype(np.int16)
    stream.push(square)
    bad = np.random.default_rng(0).normal(0, 5.0, 16000)  # float far outside [-1, 1]
    bad[::100] = np.nan
    stream.push(bad)
    post = stream.history()[1]
    assert np.isfinite(post).all()
    with pytest.raises(ValueError, match="mono 1-D"):
        stream.push(np.zeros((10, 2), np.int16))
    with pytest.raises(ValueError, match="int16 or float"):
        stream.push(np.zeros(10, np.int32))


def test_thirty_minutes_stream_no_state_drift(export_dir):
    """30 min of audio streamed in 1 s chunks through the int8 stand-in.

    The audio repeats a 4.9 s pattern (tones, silence, quiet noise, a clipped tone)
    whose length is a whole number of hops (245), and 1 s chunks straddle its
    boundaries. After the first repetition (which starts from zero states) the model
    must behave identically in every repetition: states equal at equal phases, the
    same detections at the same offsets. So nothing drifts or saturates, and it keeps
    detecting to the end.
    """
    x, events = af.tone_stream()
    period = x.shape[0]
    assert period % 320 == 0
    period_ms = 1000.0 * period / af.SAMPLE_RATE
    total = 30 * 60 * af.SAMPLE_RATE
    chunk = af.SAMPLE_RATE
    stream = KWSStream.from_dir(export_dir, history_frames=0, **STANDIN_SMOOTHING)
    states_at_chunk_end = []
    for start in range(0, total, chunk):
        stream.push(np.take(x, np.arange(start, start + chunk), mode="wrap"))
        states_at_chunk_end.append([s.copy() for s in stream.interpreter.states])
    assert stream.samples == total and stream.frames == (total - 480) // 320 + 1
    # chunk ends repeat their phase every lcm(16000, 78400) samples = 49 chunks
    cycle = np.lcm(chunk, period) // chunk
    for n in range(cycle, len(states_at_chunk_end)):
        ref = states_at_chunk_end[cycle + n % cycle]
        for a, b in zip(states_at_chunk_end[n], ref, strict=True):
            assert np.array_equal(a, b), n
    per_cycle = [[] for _ in range(int(np.ceil(total / period)))]
    for d in stream.detections:
        k = int(d.time_ms // period_ms)
        per_cycle[k].append((d.label, round(d.time_ms - k * period_ms, 6)))
    assert [label for label, _ in per_cycle[1]] == [e[0] for e in events]
    for found in per_cycle[1:-1]:
        assert found == per_cycle[1]
    assert len(stream.detections) >= 3 * (len(per_cycle) - 1)


# ---------------------------------------------------------------------- audio
def test_read_wav_resamples_and_mixes_down(tmp_path):
    rate = 44100
    t = np.arange(rate) / rate
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([left, -0.2 * left], axis=1)
    path = tmp_path / "stereo44k.wav"
    write_wav(path, af.to_int16(stereo), rate)
    audio = read_wav(path)
    assert audio.sample_rate == 16000 and audio.samples.dtype == np.int16
    assert audio.samples.shape[0] == 16000
    assert any("resampled 44100 Hz -> 16000 Hz" in n for n in audio.notes)
    assert any("mixed 2 channels down to mono" in n for n in audio.notes)
    # the tone survives: 440 Hz at amplitude (0.5 - 0.1) / 2 = 0.2
    spectrum = np.abs(np.fft.rfft(audio.samples / 32768.0))
    assert np.argmax(spectrum) == 440
    assert np.max(np.abs(audio.samples[100:-100])) / 32768.0 == pytest.approx(
        0.2, abs=0.01
    )
    native = tmp_path / "mono16k.wav"
    write_wav(native, af.to_int16(left[:16000]), 16000)
    assert read_wav(native).notes == []


def _raw_wav(path, fmt_tag, channels, rate, bits, data: bytes):
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    with open(path, "wb") as fh:
        fh.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_read_wav_bit_depths_and_bad_files(tmp_path):
    x = 0.25 * np.sin(2 * np.pi * 300 * np.arange(1600) / 16000)
    u8 = np.clip(np.round(x * 128 + 128), 0, 255).astype(np.uint8)
    _raw_wav(tmp_path / "u8.wav", 1, 1, 16000, 8, u8.tobytes())
    i24 = np.round(x * (1 << 23)).astype(np.int32)
    b24 = np.stack([(i24 >> s) & 0xFF for s in (0, 8, 16)], 1).astype(np.uint8)
    _raw_wav(tmp_path / "i24.wav", 1, 1, 16000, 24, b24.tobytes())
    for name in ("u8.wav", "i24.wav"):
        audio = read_wav(tmp_path / name)
        assert np.max(np.abs(audio.samples / 32768.0 - x)) < 0.01
        assert any("16-bit" in n for n in audio.notes)
    floats = tmp_path / "float.wav"
    _raw_wav(floats, 3, 1, 16000, 32, x.astype("<f4").tobytes())
    with pytest.raises(AudioFileError, match="float.wav.*not an integer-PCM WAV"):
        read_wav(floats)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00garbage that is not a wav file")
    with pytest.raises(AudioFileError, match="corrupt.wav"):
        read_wav(corrupt)
    truncated = tmp_path / "truncated.wav"
    _raw_wav(truncated, 1, 1, 16000, 16, np.zeros(1000, "<i2").tobytes())
    truncated.write_bytes(truncated.read_bytes()[:-501])
    with pytest.raises(AudioFileError, match="truncated.wav"):
        read_wav(truncated)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        read_wav(tmp_path / "missing.wav")


# ------------------------------------------------------------------------ CLI
def test_cli_streams_wav_and_saves_png(export_dir, tmp_path, capsys):
    x, events = af.tone_stream()
    wav = tmp_path / "tones.wav"
    write_wav(wav, x)
    png = tmp_path / "post.png"
    code = cli.run(
        [
            "lmuformer-stream",
            f"--model_dir={export_dir}",
            f"--wav={wav}",
            f"--png={png}",
            "--threshold=0.6",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [line for line in out.splitlines() if line.startswith("detected")]
    assert [line.split()[3] for line in lines] == [e[0] for e in events]
    assert "3 detection(s)" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_resamples_stereo_and_reports(export_dir, tmp_path, capsys):
    x, events = af.tone_stream()
    from lmuformer_apps.kws_stream.audio import resample

    up = af.to_int16(resample(x / 32768.0, 16000, 48000))
    wav = tmp_path / "tones48k_stereo.wav"
    write_wav(wav, np.stack([up, up], axis=1), 48000)
    code = cli.run(
        [
            "lmuformer-stream",
            f"--model_dir={export_dir}",
            f"--wav={wav}",
            "--chunk_ms=7",
            "--threshold=0.6",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "note: resampled 48000 Hz -> 16000 Hz" in out
    assert "note: mixed 2 channels down to mono" in out
    detected = [line.split()[3] for line in out.splitlines() if "detected" in line]
    assert detected == [e[0] for e in events]


def test_cli_errors(export_dir, tmp_path, capsys, monkeypatch):
    wav = tmp_path / "a.wav"
    write_wav(wav, np.zeros(8000, np.int16))
    assert cli.run(["p", f"--model_dir={export_dir}"]) == 2
    assert "exactly one of --wav or --mic" in capsys.readouterr().err
    assert cli.run(["p", f"--wav={wav}"]) == 2
    assert "--model_dir is required" in capsys.readouterr().err
    assert cli.run(["p", "--bogus_flag=1"]) == 2
    capsys.readouterr()
    bad = af.copy_export(export_dir, str(tmp_path / "bad"), **{"logits.zero_point": 9})
    assert cli.run(["p", f"--model_dir={bad}", f"--wav={wav}"]) == 1
    err = capsys.readouterr().err
    assert "logits output" in err and "zero_point" in err
    floats = tmp_path / "f.wav"
    _raw_wav(floats, 3, 1, 16000, 32, np.zeros(100, "<f4").tobytes())
    assert cli.run(["p", f"--model_dir={export_dir}", f"--wav={floats}"]) == 1
    assert "f.wav" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # as if not installed
    assert cli.run(["p", f"--model_dir={export_dir}", "--mic"]) == 1
    assert "needs the optional 'sounddevice' package" in capsys.readouterr().err
    assert cli.run(["p", "--help"]) == 0
    assert "--model_dir" in capsys.readouterr().out


def test_cli_console_entry_in_subprocess(export_dir, tmp_path):
    """``python -m lmuformer_apps.kws_stream`` (what the console script runs)."""
    wav = tmp_path / "short.wav"
    write_wav(wav, af.tone_stream()[0][:3000])  # 0.19 s: a few frames, no decision
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmuformer_apps.kws_stream",
            f"--model_dir={export_dir}",
            f"--wav={wav}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "8 frames (0.19 s of audio), 0 detection(s)" in proc.stdout
    # the app needs LiteRT only: streaming never imports TensorFlow or Keras
    code = (
        "import sys, lmuformer_apps.kws_stream.cli as c; "
        f"c.run(['p', '--model_dir={export_dir}', '--wav={wav}']); "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("[]"), proc.stdout


def test_float32_export_runs(tmp_path):
    """A float32 export (no quantization) goes through the same loop."""
    out = str(tmp_path / "f32")
    af.build_standin_export(out, quantization="float32")
    stream = KWSStream.from_dir(out, **STANDIN_SMOOTHING)
    x, events = af.tone_stream()
    _check_detections(stream.push(x), events)
    assert stream.interpreter.frame_info.scale is None
