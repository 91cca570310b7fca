"""Edges that fail clearly and lose nothing: export folder, metadata, audio, cache.

- ``lmuformer-export`` writes into a sibling folder and swaps it in: a failure after
  the model file is written leaves a previous export byte-identical;
- ``metadata.json`` cannot open files outside its folder, and wrong JSON types give a
  ``MetadataError`` naming the key and the value (never a raw ``TypeError`` /
  ``KeyError``): the typed ``ExportMetadata.from_json`` of the contract;
- untrusted WAV headers (1 Hz, 0 Hz, 10 MHz) and frontend params (1e9 bins, NaN
  scale) are refused before anything huge is allocated; NaN audio is named;
- a directory where a WAV is expected says "is a directory";
- the Speech Commands feature cache sees an edited clip of the same size.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct

import numpy as np
import pytest

import apps_fixtures as af

PYTHONPATH = af.ensure_apps_importable()

from lmuformer_apps.kws_stream import (  # noqa: E402
    AudioFileError,
    KWSStream,
    MetadataError,
    StreamingInterpreter,
    cli,
    read_wav,
    write_wav,
)
from lmuformer_apps.kws_stream.audio import resample  # noqa: E402
from lmuformer_keras.data import speech_commands, write_wav_int16  # noqa: E402
from lmuformer_keras.data.wav import WavFormatError, read_wav_int16  # noqa: E402
from lmuformer_keras.features import get_frontend  # noqa: E402
from lmuformer_keras.features.base import Frontend  # noqa: E402


def _snapshot(folder) -> dict[str, bytes]:
    out = {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            out[name] = f.read()
    return out


def _siblings(folder) -> list[str]:
    parent, base = os.path.split(os.fspath(folder))
    return sorted(n for n in os.listdir(parent) if n.startswith(base + "."))


# ----------------------------------------------------------------- atomic export
@pytest.fixture(scope="module")
def small_model():
    pytest.importorskip("tensorflow")
    from export_fixtures import build_lmuformer, make_sign_task

    x, _ = make_sign_task(8, seed=3)
    return build_lmuformer(), x


def _export(model, x, out):
    import lmuformer_export as le

    return le.export_streaming_model(
        model, x, str(out), verify=False, verbose=False, max_calibration_samples=50
    )


def test_failed_export_leaves_previous_export_byte_identical(
    small_model, tmp_path, monkeypatch
):
    import lmuformer_export.convert as convert

    model, x = small_model
    out = tmp_path / "out"
    _export(model, x, out)
    before = _snapshot(out)
    assert "metadata.json" in before and "model.tflite" in before
    stage = f"{os.path.realpath(out)}.tmp-{os.getpid()}"
    seen = {}

    def fail(model_bytes):  # runs after model.tflite is written, before metadata
        seen["staged"] = sorted(os.listdir(stage))
        raise RuntimeError("injected failure after the model file")

    monkeypatch.setattr(convert, "find_min_arena", fail)
    with pytest.raises(RuntimeError, match="injected"):
        _export(model, x, out)
    assert "model.tflite" in seen["staged"]  # the new model was written (staged)
    assert _snapshot(out) == before
    assert _siblings(out) == []  # the staging folder is gone

    # a failure while writing report.json (the last file): same
    import lmuformer_export.artifacts as artifacts

    monkeypatch.undo()
    real_write_json = artifacts.write_json

    def fail_report(data, path):
        if path.endswith("report.json"):
            raise OSError(f"{path}: injected disk full")
        return real_write_json(data, path)

    monkeypatch.setattr(artifacts, "write_json", fail_report)
    with pytest.raises(OSError, match="injected disk full"):
        _export(model, x, out)
    assert _snapshot(out) == before and _siblings(out) == []


def test_export_replaces_previous_export_whole(small_model, tmp_path):
    model, x = small_model
    out = tmp_path / "out"
    _export(model, x, out)
    (out / "metadata.json").write_text("{}")  # a stale file of a previous export
    (out / "op_resolver.h").unlink()
    report = _export(model, x, out)
    assert sorted(os.listdir(out)) == sorted(report["files"])
    assert json.loads((out / "metadata.json").read_text())["model_file"] == (
        "model.tflite"
    )
    assert _siblings(out) == []


def test_export_refuses_out_that_is_a_file_or_foreign_folder(small_model, tmp_path):
    import lmuformer_export as le

    model, x = small_model
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    with pytest.raises(le.OutputDirError, match=r"--out .*notes\.txt.* regular file"):
        _export(model, x, target)
    assert target.read_text() == "keep me"
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("keep me")
    with pytest.raises(le.OutputDirError, match=r"thesis\.tex"):
        _export(model, x, folder)
    assert sorted(os.listdir(folder)) == ["thesis.tex"]


def test_export_cli_out_is_a_regular_file_exits_2(tmp_path, capsys):
    from lmuformer_export import cli as export_cli

    target = tmp_path / "out.bin"
    target.write_bytes(b"x")
    code = export_cli.main(
        [
            "lmuformer-export",
            f"--model={tmp_path / 'm.keras'}",
            f"--calibration={tmp_path / 'c.npz'}",
            f"--out={target}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "usage error" in err and "--out" in err and "out.bin" in err
    assert target.read_bytes() == b"x"


# ------------------------------------------------------------------------ metadata
@pytest.fixture(scope="module")
def export_dir():
    return af.standin_export_dir("int8")


def test_model_file_outside_the_folder_is_refused(export_dir, tmp_path):
    outside = tmp_path / "outside.tflite"
    shutil.copy(os.path.join(export_dir, "model.tflite"), outside)
    for value in ("../outside.tflite", str(outside), "../../../../etc/passwd", "."):
        folder = tmp_path / f"m{abs(hash(value))}"
        af.copy_export(export_dir, str(folder), model_file=value)
        with pytest.raises(MetadataError, match=r"model_file=.*outside the model"):
            StreamingInterpreter(folder)
    folder = tmp_path / "inside"
    af.copy_export(export_dir, str(folder), model_file="./sub/../model.tflite")
    assert StreamingInterpreter(folder).num_classes == 4  # inside: fine


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"model_file": 5}, r"model_file must be a file name.*int 5"),
        ({"states": "leaky"}, r"'states' must be a list, got str 'leaky'"),
        ({"states": ["a", "b"]}, r"states\[0\] must be a JSON object"),
        ({"frame": "frame"}, r"metadata frame must be a JSON object"),
        ({"logits": [1, 2]}, r"metadata logits must be a JSON object"),
        ({"labels": "abcd"}, r"labels must be a list"),
        ({"labels": [1, 2, 3, 4]}, r"labels\[0\] must be a string, got int 1"),
        ({"states.0.initial_quantized": 300}, r"initial_quantized=300 is out of"),
        ({"states.0.initial_quantized": "0"}, r"initial_quantized must be an int"),
        ({"states.0.input.scale": "big"}, r"input scale must be a number, got 'big'"),
        ({"states.0.input.shape": "1x4"}, r"input shape must be a list"),
        ({"states.0.input.shape": [4]}, r"shape must start with the batch axis 1"),
        ({"frame.zero_point": [0]}, r"frame zero_point must be an integer"),
        ({"frame.zero_point": 999}, r"zero_point=999 is out of the int8 range"),
        ({"frame.dtype": "int4"}, r"frame dtype 'int4' is not supported"),
        ({"frame.position": -1}, r"frame position must be >= 0, got -1"),
        ({"arena_bytes": "big"}, r"arena_bytes must be an integer, got 'big'"),
        ({"format_version": 3}, r"format_version=3 is not supported"),
        ({"format_version": "2"}, r"format_version must be an integer, got '2'"),
        ({"quantization": "int4"}, r"quantization must be one of"),
        ({"smoothing": ["x"]}, r"'smoothing' must be an object"),
    ],
)
def test_wrong_metadata_types_raise_metadata_error(
    export_dir, tmp_path, changes, match
):
    folder = af.copy_export(export_dir, str(tmp_path / "m"), **changes)
    with pytest.raises(MetadataError, match=match):
        StreamingInterpreter(folder)


@pytest.mark.parametrize(
    "frontend,match",
    [
        ("micro40", r"frontend must be a JSON object.*str 'micro40'"),
        (["micro40"], r"frontend must be a JSON object.*list"),
        ({"name": 7}, r"'params' must be a JSON object"),
        ({"name": "micro40"}, r"'params' must be a JSON object"),
    ],
)
def test_wrong_frontend_types_raise_metadata_error(
    export_dir, tmp_path, frontend, match
):
    folder = af.copy_export(export_dir, str(tmp_path / "m"), frontend=frontend)
    with pytest.raises(MetadataError, match=match):
        KWSStream.from_dir(folder)


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("fft_size", 10**9, r"fft_size must be in \[2, 32768\], got fft_size=1000"),
        ("num_mel_bins", 10**9, r"num_mel_bins must be in \[1, 512\]"),
        ("frame_length", 10**9, r"frame_length must be in \[1, 32768\]"),
        ("frame_step", 1.5, r"frame_step must be an integer, got frame_step=1.5"),
        ("norm_scale", math.nan, r"norm_scale must be finite, got norm_scale=nan"),
        ("norm_mean", math.inf, r"norm_mean must be finite"),
        ("sample_rate", 1, r"sample_rate must be in \[1000, 384000\]"),
    ],
)
def test_absurd_frontend_params_in_metadata(export_dir, tmp_path, key, value, match):
    folder = af.copy_export(
        export_dir, str(tmp_path / "m"), **{f"frontend.params.{key}": value}
    )
    with pytest.raises(MetadataError, match=match):
        KWSStream.from_dir(folder)


def test_nan_audio_is_named_by_the_frontend():
    frontend = get_frontend("micro40")
    x = np.zeros(16000, np.float32)
    x[123] = np.nan
    with pytest.raises(ValueError, match=r"waveform has 1 non-finite.*index 123"):
        frontend(x)
    with pytest.raises(ValueError, match=r"waveform 1 has 1 non-finite"):
        frontend.batch([np.zeros(16000, np.float32), x])
    with pytest.raises(ValueError, match=r"streamed chunk has 1 non-finite"):
        frontend.streamer().push(x)
    params = frontend.params
    params["norm_scale"] = float("inf")
    with pytest.raises(ValueError, match=r"norm_scale must be finite"):
        Frontend(params)


# --------------------------------------------------------------------------- audio
def _raw_wav(path, rate: int, frames: int = 100) -> str:
    data = b"\0\0" * frames
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2 % 2**32, 2, 16)
    chunks = b"fmt " + struct.pack("<I", 16) + fmt + b"data"
    with open(path, "wb") as f:
        f.write(header + chunks + struct.pack("<I", len(data)) + data)
    return str(path)


@pytest.mark.parametrize("rate", [0, 1, 999, 10_000_000])
def test_wav_header_rate_out_of_bounds(tmp_path, rate):
    path = _raw_wav(tmp_path / "odd.wav", rate)
    with pytest.raises(
        AudioFileError, match=rf"odd\.wav: header sample rate {rate} Hz"
    ):
        read_wav(path)


def test_wav_header_rate_in_bounds_still_resamples(tmp_path):
    path = _raw_wav(tmp_path / "ok.wav", 8000, frames=800)
    audio = read_wav(path)
    assert audio.source_rate == 8000 and audio.samples.shape == (1600,)
    with pytest.raises(ValueError, match=r"source_rate=1 Hz is outside"):
        resample(np.zeros(10), 1, 16000)


def test_directory_where_a_wav_is_expected(tmp_path, export_dir, capsys):
    folder = tmp_path / "clip.wav"
    folder.mkdir()
    with pytest.raises(AudioFileError, match=r"clip\.wav' is a directory"):
        read_wav(folder)
    with pytest.raises(WavFormatError, match=r"clip\.wav' is a directory"):
        read_wav_int16(folder)
    code = cli.run(["lmuformer-stream", f"--model_dir={export_dir}", f"--wav={folder}"])
    assert code == 1
    assert "is a directory" in capsys.readouterr().err
    write_wav(tmp_path / "real.wav", np.zeros(10, np.int16))  # a file still works
    assert read_wav(tmp_path / "real.wav").samples.shape == (10,)


def test_model_dir_that_is_a_file(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"x")
    with pytest.raises(MetadataError, match=r"model\.tflite' is a file, not a folder"):
        StreamingInterpreter(path)


# ------------------------------------------------------------------ feature cache
def _tone(freq: float, n: int = 16000) -> np.ndarray:
    t = np.arange(n) / 16000.0
    return (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)


def test_feature_cache_sees_an_edited_clip_of_the_same_size(tmp_path):
    root = tmp_path / "sc"
    for w, word in enumerate(("yes", "no")):
        (root / word).mkdir(parents=True)
        for k in range(3):
            write_wav_int16(
                root / word / f"s{k}_nohash_0.wav", _tone(300 + 400 * w + k)
            )
    (root / "validation_list.txt").write_text("yes/s0_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("no/s0_nohash_0.wav\n")
    cache = str(tmp_path / "cache")
    kwargs = dict(classes="all", frontend="micro40", cache_dir=cache, progress=False)
    a = speech_commands(str(root), **kwargs)
    assert a.summary["cache"] == "miss"
    assert speech_commands(str(root), **kwargs).summary["cache"] == "hit"

    clip = root / "yes" / "s1_nohash_0.wav"
    size, mtime = clip.stat().st_size, clip.stat().st_mtime_ns
    write_wav_int16(clip, _tone(3000.0))  # same length, other samples
    if clip.stat().st_mtime_ns == mtime:  # a coarse-timestamp filesystem
        os.utime(clip, ns=(mtime + 10**6, mtime + 10**6))
    assert clip.stat().st_size == size
    b = speech_commands(str(root), **kwargs)
    assert b.summary["cache"] == "miss"
    assert not np.array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.x_val, b.x_val)  # the other clips: same
