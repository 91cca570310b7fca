"""Writes golden vectors from the Python apps for the Java ``kws-core`` unit tests.

Usage::

    python apps/android/make_golden.py --model_dir EXPORT --out_dir DIR \\
        --wav a.wav [--wav b.wav ...] [--stream_wav a.wav]

``EXPORT`` is an ``lmuformer-export`` folder (or the tests' stand-in). ``DIR`` receives:

- ``metadata.json`` (the export's, written as format version 2) and every WAV as
  16 kHz mono 16-bit (read with the Python app's reader: resampled / mixed down if
  needed);
- ``golden.json`` with
  - ``features``: the NumPy micro40 features of every WAV (``frontend(x, pad=False)``);
  - ``model_tensors``: shape, dtype, scale and zero point of every model input and
    output, as LiteRT reports them (for ``ModelMetadata.validate``);
  - ``stream``: for ``--stream_wav`` (default: the first WAV), every step of the
    Python ``StreamingInterpreter``: the raw values of every input and output tensor
    (by position: quantized frame, state inputs, logits, state outputs), the
    posteriors and smoothed scores, and the detections. A Java stub interpreter replays
    the outputs and checks the inputs it is given;
  - ``smoothing``: the Python smoothing defaults and ignored-label rule, and two random
    posterior streams with their Python detections (default and custom settings).

Run ``javac`` + JUnit with ``-Dkws.golden=DIR`` (see ``tests/test_apps_android.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROJECT_PACKAGES = ("lmuformer_apps", "lmuformer_keras")
"""This project's packages: without them, a one-line hint to install it."""

try:
    from lmuformer_apps import kws_stream
except ModuleNotFoundError as error:  # only the project itself, not a dependency
    if (error.name or "").partition(".")[0] not in PROJECT_PACKAGES:
        raise
    sys.exit(
        f"make_golden.py: {error.name} is not installed; run `pip install -e .` "
        f"from the repository root ({REPO})"
    )


def _values(a) -> list:
    a = np.asarray(a).reshape(-1)
    return a.tolist() if a.dtype.kind in "iu" else [float(v) for v in a]


def _detections(found) -> list[dict]:
    return [
        {"label": d.label, "index": d.index, "time_ms": d.time_ms, "score": d.score}
        for d in found
    ]


def stream_steps(kws, model_dir: str, samples: np.ndarray) -> dict:
    """Every step of the Python loop on ``samples`` (see the module docstring)."""
    it = kws.StreamingInterpreter(model_dir)
    stream = kws.KWSStream(it)
    details_in = it._interpreter.get_input_details()
    details_out = it._interpreter.get_output_details()
    frames = stream.frontend.streamer().push(samples)
    steps, found = [], []
    for t, frame in enumerate(frames):
        q = it.quantize_frame(frame)
        inputs = [None] * len(details_in)
        inputs[it.frame_info.position] = q
        for state, info in zip(it.states, it.state_infos, strict=True):
            inputs[info.input.position] = state
        raw = it.step_quantized(q)
        outputs = [None] * len(details_out)
        outputs[it.logits_info.position] = raw
        for state, info in zip(it.states, it.state_infos, strict=True):
            outputs[info.output.position] = state
        posteriors = kws.softmax(it.logits_info.dequantize(raw))
        detection = stream.smoother.process(posteriors, stream.frame_time_ms(t))
        if detection is not None:
            found.append(detection)
        scores = stream.smoother.scores
        steps.append(
            {
                "inputs": [_values(a) for a in inputs],
                "outputs": [_values(a) for a in outputs],
                "posteriors": [float(v) for v in posteriors],
                "smoothed": None if scores is None else [float(v) for v in scores],
            }
        )
    check = kws.KWSStream.from_dir(model_dir).push(samples)
    if check != found:
        raise RuntimeError("make_golden: KWSStream disagrees with the step recording")

    def tensors(details):
        return [
            {
                "shape": [int(s) for s in d["shape"]],
                "dtype": np.dtype(d["dtype"]).name,
                "scale": float(d["quantization"][0]),
                "zero_point": int(d["quantization"][1]),
            }
            for d in details
        ]

    return {
        "model_tensors": {
            "inputs": tensors(details_in),
            "outputs": tensors(details_out),
        },
        "steps": steps,
        "detections": _detections(found),
    }


def smoothing_streams(kws, seed: int = 0) -> list[dict]:
    """Random posterior streams with bursts, and the Python detections."""
    labels = ["_silence_", "_unknown_", "yes", "no", "up"]
    rng = np.random.default_rng(seed)
    n = 2000
    times = [30.0 + 20.0 * t for t in range(n)]
    logits = rng.normal(0.0, 1.0, (n, len(labels)))
    for start in rng.integers(0, n - 40, size=30):
        logits[start : start + rng.integers(10, 40), rng.integers(0, len(labels))] += 5
    posteriors = kws.softmax(logits)
    out = []
    for settings in (
        {},
        {
            "average_window_ms": 200.0,
            "detection_threshold": 0.5,
            "suppression_ms": 300.0,
            "minimum_count": 3,
        },
    ):
        rc = kws.RecognizeCommands(labels, **settings)
        found = rc.process_many(posteriors, times)
        out.append(
            {
                "labels": labels,
                "settings": {
                    "average_window_ms": rc.average_window_ms,
                    "detection_threshold": rc.detection_threshold,
                    "suppression_ms": rc.suppression_ms,
                    "minimum_count": rc.minimum_count,
                },
                "times_ms": times,
                "posteriors": [[float(v) for v in row] for row in posteriors],
                "detections": _detections(found),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--wav", action="append", required=True)
    parser.add_argument("--stream_wav", default=None)
    args = parser.parse_args(argv)

    kws = kws_stream
    os.makedirs(args.out_dir, exist_ok=True)
    metadata = kws.load_metadata(args.model_dir)  # version 1 is upgraded
    metadata.save(os.path.join(args.out_dir, "metadata.json"))  # as version 2
    frontend = kws.model_dir.frontend_from_metadata(metadata)
    features, loaded = [], {}
    for path in args.wav:
        audio = kws.read_wav(path, target_rate=frontend.sample_rate)
        name = os.path.basename(path)
        kws.write_wav(
            os.path.join(args.out_dir, name), audio.samples, audio.sample_rate
        )
        loaded[path] = audio.samples
        frames = frontend(audio.samples, sample_rate=audio.sample_rate, pad=False)
        features.append({"wav": name, "frames": [_values(f) for f in frames]})
    stream_path = args.stream_wav or args.wav[0]
    samples = loaded.get(stream_path)
    if samples is None:
        samples = kws.read_wav(stream_path, target_rate=frontend.sample_rate).samples
    stream = stream_steps(kws, args.model_dir, samples)
    stream["wav"] = os.path.basename(stream_path)
    smoothing = kws.smoothing
    probe = [
        "_silence_",
        "_unknown_",
        "silence",
        "Unknown",
        "_background_noise_",
        "yes",
    ]
    probe += ["_x", "x_", "background", "noise", *(metadata.labels or [])]
    golden = {
        "feature_tolerance": 1e-3,  # Java (double) vs NumPy; MICRO40_TOLERANCE is 2e-3
        "features": features,
        "model_tensors": stream.pop("model_tensors"),
        "stream": stream,
        "smoothing": {
            "defaults": {
                "average_window_ms": smoothing.DEFAULT_AVERAGE_WINDOW_MS,
                "detection_threshold": smoothing.DEFAULT_DETECTION_THRESHOLD,
                "suppression_ms": smoothing.DEFAULT_SUPPRESSION_MS,
                "minimum_count": smoothing.DEFAULT_MINIMUM_COUNT,
            },
            "ignored": {label: smoothing.is_ignored_label(label) for label in probe},
            "streams": smoothing_streams(kws),
        },
    }
    with open(os.path.join(args.out_dir, "golden.json"), "w", encoding="utf-8") as fh:
        json.dump(golden, fh)
    n = len(stream["steps"])
    print(
        f"wrote {args.out_dir}/golden.json: {len(features)} WAV(s), {n} stream steps, "
        f"{len(stream['detections'])} detection(s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
