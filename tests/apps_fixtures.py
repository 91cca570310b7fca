"""Stand-in exported model and test audio for the apps tests (``tests/test_apps*.py``).

Until a trained LMUFormer export exists, the apps are exercised on a tiny stand-in
written here: a step graph with the exporter's interface (a ``micro40`` frame in, frame
logits and two states out, full int8, ``metadata.json`` in the exporter's format), so
the runner, the state copy, the metadata checks and the CLIs run for real.

The stand-in is a hand-made tone spotter over ``micro40`` features ``x`` (40 bins):

- evidence ``u = x @ W + b`` for the labels ``_silence_`` (low overall level),
  ``_unknown_`` (constant), ``low`` (mel bins 5-11, about 400-650 Hz, stand out) and
  ``high`` (bins 24-30, about 2.4-3.4 kHz, stand out);
- state ``leaky`` ``(4,)``: ``leaky' = 0.8 leaky + 0.2 u`` (a leaky integrator, time
  constant 5 frames: the recurrent state whose drift the long-stream test watches);
- state ``buffer`` ``(3, 4)``: the last three ``u`` (a shift register);
- logits ``leaky' + mean(buffer')``.

Each state update is ``concat([state, new])`` sliced back, which makes the converter
give the state input and output one scale and zero point (as the real exporter
guarantees), so copying output bytes to input bytes is exact.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import warnings

import numpy as np

SAMPLE_RATE = 16000
STANDIN_LABELS = ["_silence_", "_unknown_", "low", "high"]
LOW_HZ = 500.0
HIGH_HZ = 3000.0
LEAK = 0.8
BUFFER_FRAMES = 3
NUM_FEATURES = 40
ARENA_BYTES = 8192  # stand-in value (a real export measures it)


# ------------------------------------------------------------------------ audio
def tone(freq: float, seconds: float, amplitude: float = 0.3) -> np.ndarray:
    """A sine as float64 (amplitude > 1 clips when converted to int16)."""
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    return amplitude * np.sin(2.0 * np.pi * freq * t)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * SAMPLE_RATE)))


def noise(seconds: float, rms: float = 0.003, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, rms, int(round(seconds * SAMPLE_RATE)))


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(x) * 32767.0), -32768, 32767).astype(np.int16)


def tone_stream() -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """About 5 s of int16 audio: silence, tones (one clipped), quiet noise.

    Returns ``(samples, events)`` with ``events = [(label, start_s, end_s), ...]``
    for the tones.
    """
    parts = [
        ("", silence(0.5)),
        ("low", tone(LOW_HZ, 0.8)),
        ("", silence(0.7)),
        ("high", tone(HIGH_HZ, 0.8)),
        ("", noise(0.7)),
        ("low", tone(LOW_HZ, 0.8, amplitude=3.0)),  # clipped
        ("", silence(0.6)),
    ]
    events, pos = [], 0.0
    for label, x in parts:
        seconds = x.shape[0] / SAMPLE_RATE
        if label:
            events.append((label, pos, pos + seconds))
        pos += seconds
    return to_int16(np.concatenate([x for _, x in parts])), events


def speech(text: str, voice: str = "en-us", rate: int = 160) -> np.ndarray | None:
    """espeak-ng speech resampled to 16 kHz int16, or ``None`` without espeak-ng."""
    try:
        from lmuformer_keras.data.espeak import get_espeak

        engine = get_espeak()
    except (ImportError, OSError, RuntimeError):
        return None
    from lmuformer_apps.kws_stream.audio import resample
    from lmuformer_apps.kws_stream.audio import to_int16 as f2i

    raw = engine.synth(text, voice, rate=rate)
    if raw.size == 0:
        return None
    x = resample(raw.astype(np.float64) / 32768.0, engine.sample_rate, SAMPLE_RATE)
    return f2i(x)


def write_test_wavs(out_dir: str) -> dict[str, str]:
    """Writes a few 16 kHz mono WAVs (tones, chirp, noise, speech if available)."""
    from lmuformer_apps.kws_stream.audio import write_wav

    os.makedirs(out_dir, exist_ok=True)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    chirp = 0.5 * np.sin(2 * np.pi * (100 * t + 3900 * t**2))
    rng = np.random.default_rng(1)
    clips = {
        "tones": tone_stream()[0],
        "chirp": to_int16(chirp),
        "noise": to_int16(rng.normal(0.0, 0.2, SAMPLE_RATE)),
        "clipped": to_int16(tone(LOW_HZ, 0.5, amplitude=4.0)),
        "silence": np.zeros(SAMPLE_RATE // 2, np.int16),
    }
    for name, text, voice in (
        ("speech_yes", "yes", "en-us"),
        ("speech_stop", "stop the music", "en-gb-scotland+m2"),
    ):
        x = speech(text, voice)
        if x is not None:
            clips[name] = x
    paths = {}
    for name, x in clips.items():
        path = os.path.join(out_dir, f"{name}.wav")
        write_wav(path, x, SAMPLE_RATE)
        paths[name] = path
    return paths


# ---------------------------------------------------------------- stand-in model
def standin_weights() -> tuple[np.ndarray, np.ndarray]:
    """``(W (40, 4), b (4,))`` of the evidence ``u = x @ W + b``."""
    f = NUM_FEATURES
    w = np.zeros((f, 4), np.float32)
    b = np.zeros(4, np.float32)
    mean = np.full(f, 1.0 / f)
    low = np.zeros(f)
    low[5:12] = 1.0 / 7.0
    high = np.zeros(f)
    high[24:31] = 1.0 / 7.0
    w[:, 0], b[0] = -4.0 * mean, -0.8  # silence: level below about -0.2
    b[1] = 0.5  # unknown: constant
    w[:, 2], b[2] = 6.0 * (low - mean), -1.5
    w[:, 3], b[3] = 6.0 * (high - mean), -1.5
    return w, b


def standin_float_step(frame, leaky, buffer):
    """NumPy float reference: ``(logits (1, 4), leaky' (1, 4), buffer' (1, 3, 4))``."""
    w, b = standin_weights()
    u = np.asarray(frame, np.float32) @ w + b
    new_leaky = LEAK * leaky + (1.0 - LEAK) * u
    new_buffer = np.concatenate([buffer[:, 1:], u[:, None, :]], axis=1)
    logits = new_leaky + new_buffer.mean(axis=1)
    return logits.astype(np.float32), new_leaky.astype(np.float32), new_buffer


def _calibration_frames() -> np.ndarray:
    from lmuformer_keras.features import get_frontend

    x = np.concatenate(
        [
            tone_stream()[0].astype(np.float64) / 32768.0,
            noise(0.5, rms=0.2, seed=3),
            tone(1200.0, 0.5),
        ]
    )
    return get_frontend("micro40")(to_int16(x), pad=False)


def _convert(quantization: str) -> tuple[bytes, list[str], list[str]]:
    """Converts the stand-in; returns ``(model, input names, output names)``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    w, b = standin_weights()
    c, k = len(STANDIN_LABELS), BUFFER_FRAMES

    def step(frame, leaky, buffer):
        u = tf.matmul(frame, w) + b
        new = LEAK * leaky + (1.0 - LEAK) * u
        new_leaky = tf.concat([leaky, new], axis=1)[:, c:]
        new_buffer = tf.concat([buffer, u[:, None, :]], axis=1)[:, 1:, :]
        logits = new_leaky + tf.reduce_mean(new_buffer, axis=1)
        return [tf.identity(logits), tf.identity(new_leaky), tf.identity(new_buffer)]

    names = ["frame", "leaky", "buffer"]
    signature = [
        tf.TensorSpec((1, NUM_FEATURES), tf.float32, name=names[0]),
        tf.TensorSpec((1, c), tf.float32, name=names[1]),
        tf.TensorSpec((1, k, c), tf.float32, name=names[2]),
    ]
    concrete = tf.function(step, input_signature=signature, autograph=False)
    concrete = concrete.get_concrete_function()
    out_names = [t.name.split(":")[0] for t in concrete.outputs]
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if quantization == "int8":
        frames = _calibration_frames()

        def representative_dataset():
            leaky = np.zeros((1, c), np.float32)
            buffer = np.zeros((1, k, c), np.float32)
            for frame in frames:
                x = frame[None, :].astype(np.float32)
                yield [x, leaky, buffer.astype(np.float32)]
                _, leaky, buffer = standin_float_step(x, leaky, buffer)

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif quantization != "float32":
        raise ValueError(f"quantization must be int8 or float32, got {quantization!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated conversion path, statistics
        model = converter.convert()
    return bytes(model), names, out_names


def _clean(name: str) -> str:
    name = name.split(":")[0]
    return name[len("serving_default_") :] if name.startswith("serving_") else name


def build_standin_export(out_dir: str, quantization: str = "int8") -> dict:
    """Writes ``model.tflite`` + ``metadata.json`` (the exporter's format, built with
    the contract's ``ExportMetadata``); returns the metadata's JSON object."""
    from lmuformer_apps.kws_stream.model_dir import load_interpreter_class
    from lmuformer_keras.contract import (
        ExportedState,
        ExportMetadata,
        Frontend,
        QuantizedTensor,
    )

    model, in_names, out_names = _convert(quantization)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "model.tflite"), "wb") as fh:
        fh.write(model)
    it = load_interpreter_class()(model_content=model)
    it.allocate_tensors()
    ins = {
        _clean(d["name"]): QuantizedTensor.from_tensor_detail(d, p)
        for p, d in enumerate(it.get_input_details())
    }
    outs = {
        _clean(d["name"]): QuantizedTensor.from_tensor_detail(d, p)
        for p, d in enumerate(it.get_output_details())
    }
    states = []
    for name, in_name, out_name in zip(
        ("leaky", "buffer"), in_names[1:], out_names[1:], strict=True
    ):
        t_in = ins[in_name]
        states.append(
            ExportedState(
                name=name,
                input=t_in,
                output=outs[out_name],
                initial_value=0.0,
                initial_quantized=int(t_in.quantize(0.0)) if t_in.quantized else None,
            )
        )
    metadata = ExportMetadata(
        frame=ins[in_names[0]],
        logits=outs[out_names[0]],
        states=states,
        quantization=quantization,
        labels=STANDIN_LABELS,
        frontend=Frontend.named("micro40"),
        arena_bytes=ARENA_BYTES,
        arena_bytes_min=ARENA_BYTES,
        model_bytes=len(model),
        note="stand-in model written by tests/apps_fixtures.py, not a trained KWS",
    ).validate()
    metadata.save(os.path.join(out_dir, "metadata.json"))
    return metadata.to_dict()


def as_version_1(meta: dict) -> dict:
    """The version-1 ``metadata.json`` the exporter wrote before the contract, for
    the same export (``meta``: a version-2 JSON object)."""
    frame, logits = meta["frame"], meta["logits"]
    frontend = meta["frontend"]
    states = []
    for s in meta["states"]:
        t_in, t_out = s["input"], s["output"]
        states.append(
            {
                "name": s["name"],
                "input_index": t_in["position"],
                "output_index": t_out["position"],
                "input_name": t_in["name"],
                "output_name": t_out["name"],
                "shape": t_in["shape"][1:],
                "tensor_shape": t_in["shape"],
                "dtype": t_in["dtype"],
                "bytes": int(np.prod(t_in["shape"])) * np.dtype(t_in["dtype"]).itemsize,
                "scale": t_in["scale"],
                "zero_point": t_in["zero_point"],
                "initial_value": s["initial_value"],
                "initial_quantized": s["initial_quantized"],
            }
        )
    old = {
        "format_version": 1,
        "model_file": meta["model_file"],
        "c_array": meta["c_array"],
        "quantization": meta["quantization"],
        "labels": meta["labels"],
        "num_features": frame["shape"][1],
        "num_classes": logits["shape"][1],
        "frontend": frontend,
        "frame_hop_ms": None if frontend is None else frontend["frame_hop_ms"],
        "frame_input_index": frame["position"],
        "logits_output_index": logits["position"],
        "input": frame,
        "output": logits,
        "states": states,
        "clip_decision": "argmax of the mean over frames of the dequantized logits",
        "streaming": "per frame: ...",
    }
    for key in ("arena_bytes", "arena_bytes_min", "model_bytes", "ops",
                "macs_per_frame", "smoothing", "note"):  # fmt: skip
        if key in meta:
            old[key] = meta[key]
    return old


def write_metadata(out_dir: str, metadata: dict) -> str:
    path = os.path.join(out_dir, "metadata.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(metadata, fh, indent=2)
        fh.write("\n")
    return path


def copy_export(src_dir: str, dst_dir: str, **changes) -> str:
    """Copies an export folder, applying ``changes`` to the metadata (dotted keys)."""
    shutil.copytree(src_dir, dst_dir)
    with open(os.path.join(dst_dir, "metadata.json"), encoding="utf-8") as fh:
        metadata = json.load(fh)
    for key, value in changes.items():
        target = metadata
        parts = key.split(".")
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        last = parts[-1]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    write_metadata(dst_dir, metadata)
    return dst_dir


_CACHE: dict[str, str] = {}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ensure_apps_importable() -> str:
    """Checks that ``lmuformer_apps`` imports; returns a subprocess ``PYTHONPATH``.

    The package is ``apps/`` as installed by ``pip install -e ".[dev]"`` (the
    ``package-dir`` mapping of ``pyproject.toml``); nothing is registered by hand. The
    returned path puts the repository root ahead of the caller's ``PYTHONPATH``.

    Raises:
        RuntimeError: the project is not installed (with the command to run).
    """
    import importlib

    try:
        importlib.import_module("lmuformer_apps")
    except ModuleNotFoundError as error:
        raise RuntimeError(
            f"the apps tests need the project installed: run `pip install -e "
            f'".[dev]"` from the repository root ({REPO}) ({error})'
        ) from error
    return os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)


def standin_export_dir(quantization: str = "int8") -> str:
    """A stand-in export folder, built once per process (removed at exit)."""
    if quantization not in _CACHE:
        root = tempfile.mkdtemp(prefix=f"lmuformer_standin_{quantization}_")
        atexit.register(shutil.rmtree, root, True)
        out = os.path.join(root, "export")
        build_standin_export(out, quantization)
        _CACHE[quantization] = out
    return _CACHE[quantization]
