"""Tests of the export pipeline (lmuformer_export) on toy streaming models.

Runs under every Keras backend: under JAX and torch the conversion itself runs in a
TensorFlow-backend child process (lmuformer_export.tf_subprocess); calibration, graph
edits and verification run here. Each toy is exported once per module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from export_fixtures import (
    NUM_FEATURES,
    build_toy_streaming_model,
    make_toy_dataset,
    make_trained_toy,
)

import lmuformer_export as le
from lmuformer_export.flatbuffer import INTEGER_TYPES, TFLiteGraph
from lmuformer_export.model_io import map_io
from lmuformer_export.tflm_ops import TFLM_ADD_METHODS
from lmuformer_export.verify import compare_runtimes, initial_quantized_states

ARTIFACTS = [
    "model.tflite",
    "model_data.cc",
    "model_data.h",
    "op_resolver.h",
    "metadata.json",
    "report.json",
]
STREAM_FRAMES = 200


def _env() -> dict:
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
        TF_CPP_MIN_LOG_LEVEL="3",
    )


@pytest.fixture(scope="module")
def test_set():
    return make_toy_dataset(100, seed=7)


def _export(tmp_path_factory, test_set, spiking: bool, quantization="int8", **kw):
    toy, train_accuracy = make_trained_toy(spiking=spiking, n_train=300)
    assert train_accuracy >= 0.95
    x_cal, y_cal = make_toy_dataset(60, seed=3)
    x_test, y_test = test_set
    out = tmp_path_factory.mktemp(f"{'spiking' if spiking else 'plain'}_{quantization}")
    report = le.export_streaming_model(
        toy,
        x_cal,
        str(out),
        quantization=quantization,
        y=y_cal,
        test_x=x_test,
        test_y=y_test,
        verbose=False,
        **kw,
    )
    return {"toy": toy, "report": report, "out": str(out)}


@pytest.fixture(scope="module")
def plain(tmp_path_factory, test_set):
    return _export(tmp_path_factory, test_set, spiking=False, max_tflm_clips=20)


@pytest.fixture(scope="module")
def spiking(tmp_path_factory, test_set):
    return _export(tmp_path_factory, test_set, spiking=True, max_tflm_clips=20)


@pytest.fixture(params=["plain", "spiking"])
def exported(request):
    return request.getfixturevalue(request.param)


def _read(exported, name):
    with open(os.path.join(exported["out"], name), "rb") as f:
        return f.read()


def _metadata(exported) -> dict:
    return json.loads(_read(exported, "metadata.json"))


# ------------------------------------------------------------------ artifacts
def test_export_writes_every_artifact(exported):
    for name in ARTIFACTS:
        assert os.path.getsize(os.path.join(exported["out"], name)) > 0, name
    report = json.loads(_read(exported, "report.json"))
    assert report["model_bytes"] == len(_read(exported, "model.tflite"))
    assert report["macs_per_frame"] == exported["report"]["macs_per_frame"] > 0


def test_metadata_describes_the_stream(exported):
    meta = _metadata(exported)
    toy = exported["toy"]
    assert meta["labels"] == toy.labels
    assert meta["frontend"]["name"] == toy.frontend["name"]
    assert meta["frontend"]["params"] == toy.frontend["params"]
    assert meta["frame_hop_ms"] == toy.frontend["frame_hop_ms"]
    assert meta["num_features"] == NUM_FEATURES
    assert meta["num_classes"] == len(toy.labels)
    assert meta["quantization"] == "int8"
    assert [s["name"] for s in meta["states"]] == [s.name for s in toy.state_specs]
    for state, spec in zip(meta["states"], toy.state_specs, strict=True):
        assert tuple(state["shape"]) == spec.shape
        assert state["dtype"] == "int8"
        assert state["initial_value"] == 0.0
        assert state["initial_quantized"] == state["zero_point"]
    assert meta["arena_bytes"] >= meta["arena_bytes_min"] > 0
    assert meta["arena_bytes"] % 16 == 0
    assert meta["model_bytes"] == len(_read(exported, "model.tflite"))


def test_only_tflm_builtins_and_integer_tensors(exported):
    graph = TFLiteGraph(_read(exported, "model.tflite"))
    ops = graph.op_names()
    assert set(ops) <= set(TFLM_ADD_METHODS), ops
    assert "CAST" not in ops and "DEQUANTIZE" not in ops
    dtypes = {graph.tensor_dtype(t) for t in range(len(graph.tensors))}
    assert dtypes <= INTEGER_TYPES, dtypes
    assert "float32" not in dtypes
    for t in graph.inputs + graph.outputs:
        assert graph.tensor_dtype(t) == "int8"


def test_constant_buffers_are_16_byte_aligned(exported):
    """The flatbuffer is re-written after the graph edits: keep the alignment."""
    from ai_edge_litert import schema_py_generated as schema

    data = bytearray(_read(exported, "model.tflite"))
    model = schema.Model.GetRootAsModel(data, 0)
    checked = 0
    for i in range(model.BuffersLength()):
        buffer = model.Buffers(i)
        if buffer.DataLength() == 0:
            continue
        start = buffer._tab.Vector(buffer._tab.Offset(4))  # absolute data offset
        assert start % 16 == 0, (i, start)
        checked += 1
    assert checked > 0


def test_spiking_cast_is_folded_into_select(spiking):
    # The toy's spike is cast(h >= th, float32), as in the LIF layers.
    assert spiking["report"]["bool_casts_folded"] == 1
    ops = TFLiteGraph(_read(spiking, "model.tflite")).op_names()
    assert "SELECT_V2" in ops and "GREATER_EQUAL" in ops


def test_state_output_params_equal_input_params(exported):
    """Checked with LiteRT's own view of the model, not the exporter's."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=_read(exported, "model.tflite"))
    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    meta = _metadata(exported)
    methods = {s["name"]: s["method"] for s in exported["report"]["states"]}
    assert methods["conv_buffer"] == "shared"  # the frame shift ties it already
    assert methods["lmu_memory"] == "requantized_on_input"
    for state in meta["states"]:
        q_in = inputs[state["input_index"]]["quantization"]
        q_out = outputs[state["output_index"]]["quantization"]
        assert q_in == q_out, state["name"]
        assert q_in == (pytest.approx(state["scale"], rel=1e-7), state["zero_point"])
        assert list(inputs[state["input_index"]]["shape"]) == state["tensor_shape"]
    frame = inputs[meta["frame_input_index"]]
    assert list(frame["shape"]) == [1, NUM_FEATURES]
    assert frame["quantization"][1] == meta["input"]["zero_point"]
    logits = outputs[meta["logits_output_index"]]
    assert list(logits["shape"]) == [1, meta["num_classes"]]


# --------------------------------------------------------------- verification
def test_int8_decisions_agree_with_float(exported):
    verification = exported["report"]["verification"]
    assert verification["litert"]["clips"] == 100
    assert verification["litert"]["agreement_with_float"] >= 0.99
    assert verification["tflm"]["agreement_with_float"] >= 0.99
    assert verification["litert"]["accuracy"] >= 0.95
    assert exported["report"]["goals"]["litert_agreement_ge_99pct"]


def _stream(test_set):
    x, _ = test_set
    frames = x.reshape(-1, x.shape[-1])[:STREAM_FRAMES]
    assert frames.shape[0] == STREAM_FRAMES
    return frames


def _runtime_diffs(exported, test_set):
    model_bytes = _read(exported, "model.tflite")
    graph = TFLiteGraph(model_bytes)
    toy = exported["toy"]
    io = _io_from_metadata(graph, _metadata(exported))
    initial_q = initial_quantized_states(io, toy.initial_states(1))
    return compare_runtimes(
        model_bytes,
        io,
        _stream(test_set),
        initial_q,
        _metadata(exported)["arena_bytes"],
    )


def _io_from_metadata(graph, meta):
    names = {
        "inputs": [graph.tensor_name(graph.inputs[meta["frame_input_index"]])]
        + [graph.tensor_name(graph.inputs[s["input_index"]]) for s in meta["states"]],
        "outputs": [graph.tensor_name(graph.outputs[meta["logits_output_index"]])]
        + [graph.tensor_name(graph.outputs[s["output_index"]]) for s in meta["states"]],
    }
    return map_io(graph, names, meta["num_features"], meta["num_classes"], _specs(meta))


def _specs(meta):
    from export_fixtures import StateSpec

    return [StateSpec(s["name"], tuple(s["shape"])) for s in meta["states"]]


def test_tflm_and_litert_agree_within_2_lsb_over_200_frames(plain, test_set):
    diffs = _runtime_diffs(plain, test_set)
    assert diffs["frames"] == STREAM_FRAMES
    step = diffs["per_step"]
    assert step["logits"] <= 2 and step["states"] <= 2, diffs
    # Free-running, each runtime feeds back its own states: one-LSB kernel
    # differences persist in the Legendre memory but stay small.
    assert diffs["free_running"]["logits"] <= 8, diffs


def test_spiking_tflm_and_litert_agree_except_at_spike_flips(spiking, test_set):
    diffs = _runtime_diffs(spiking, test_set)
    # A one-LSB kernel difference just below the threshold flips a spike and
    # resets a membrane: a large difference on that frame only.
    within = np.mean(np.asarray(diffs["per_step_frame_max"]) <= 2)
    assert within >= 0.95, diffs
    assert spiking["report"]["verification"]["tflm"]["agreement_with_litert"] >= 0.99


def test_io_mapping_follows_reordered_tensors(plain):
    """Positions come from tensor names, whatever order the converter chose."""
    graph = TFLiteGraph(_read(plain, "model.tflite"))
    meta = _metadata(plain)
    original = _io_from_metadata(graph, meta)
    graph.subgraph.inputs = graph.subgraph.inputs[::-1].copy()
    graph.subgraph.outputs = graph.subgraph.outputs[::-1].copy()
    flipped = _io_from_metadata_by_names(graph, original, meta)
    n_in, n_out = len(graph.inputs), len(graph.outputs)
    assert flipped.frame.position == n_in - 1 - original.frame.position
    assert flipped.logits.position == n_out - 1 - original.logits.position
    for a, b in zip(flipped.states_in, original.states_in, strict=True):
        assert a.position == n_in - 1 - b.position and a.scale == b.scale
    for a, b in zip(flipped.states_out, original.states_out, strict=True):
        assert a.position == n_out - 1 - b.position and a.scale == b.scale


def _io_from_metadata_by_names(graph, io, meta):
    names = {
        "inputs": [io.frame.name] + [s.name for s in io.states_in],
        "outputs": [io.logits.name] + [s.name for s in io.states_out],
    }
    return map_io(graph, names, meta["num_features"], meta["num_classes"], _specs(meta))


@pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow",
    reason="backend-independent: the conversion runs under TensorFlow for every "
    "backend and the rest of the int16x8 path is the int8 one; covered by the "
    "tensorflow run (saves a ~15 s TF child process)",
)
def test_int16x8_export_has_int16_io_and_tied_states(tmp_path_factory, test_set):
    result = _export(
        tmp_path_factory,
        test_set,
        spiking=False,
        quantization="int16x8",
        max_clips=20,
        max_tflm_clips=2,
    )
    graph = TFLiteGraph(_read(result, "model.tflite"))
    for t in graph.inputs + graph.outputs:
        assert graph.tensor_dtype(t) == "int16"
        assert graph.quantization(t)[1] == 0  # symmetric int16 activations
    assert "float32" not in {graph.tensor_dtype(t) for t in range(len(graph.tensors))}
    assert all(s["dtype"] == "int16" for s in _metadata(result)["states"])
    assert result["report"]["verification"]["litert"]["agreement_with_float"] >= 0.95


# -------------------------------------------------------------------- C files
def _compiler():
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no host C++ compiler (g++) on PATH")
    return compiler


_STUB = """\
#ifndef STUB_MICRO_MUTABLE_OP_RESOLVER_H_
#define STUB_MICRO_MUTABLE_OP_RESOLVER_H_
// Minimal stand-in for TFLM's header: the AddXxx methods of the real class.
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
namespace tflite {
template <unsigned int tOpCount>
class MicroMutableOpResolver {
 public:
  unsigned int count = 0;
  TfLiteStatus Add() { return ++count <= tOpCount ? kTfLiteOk : kTfLiteError; }
%s
};
}  // namespace tflite
#endif
"""
# Method names of tflite::MicroMutableOpResolver (tensorflow/lite/micro).
_REAL_METHODS = (
    "AddAbs",
    "AddAdd",
    "AddAddN",
    "AddArgMax",
    "AddArgMin",
    "AddAveragePool2D",
    "AddBatchMatMul",
    "AddCast",
    "AddConcatenation",
    "AddConv2D",
    "AddDepthwiseConv2D",
    "AddDequantize",
    "AddDiv",
    "AddEqual",
    "AddExp",
    "AddExpandDims",
    "AddFullyConnected",
    "AddGather",
    "AddGreater",
    "AddGreaterEqual",
    "AddHardSwish",
    "AddLeakyRelu",
    "AddLess",
    "AddLessEqual",
    "AddLogistic",
    "AddMaximum",
    "AddMaxPool2D",
    "AddMean",
    "AddMinimum",
    "AddMul",
    "AddNeg",
    "AddNotEqual",
    "AddPack",
    "AddPad",
    "AddPadV2",
    "AddQuantize",
    "AddReduceMax",
    "AddRelu",
    "AddRelu6",
    "AddReshape",
    "AddSelectV2",
    "AddSlice",
    "AddSoftmax",
    "AddSplit",
    "AddSplitV",
    "AddSqueeze",
    "AddStridedSlice",
    "AddSub",
    "AddSum",
    "AddTanh",
    "AddTranspose",
    "AddUnpack",
)


def test_c_array_compiles_and_holds_the_model(plain, tmp_path):
    compiler = _compiler()
    main = tmp_path / "main.cc"
    main.write_text(
        "#include <cstdint>\n#include <cstdio>\n#include <cstring>\n"
        '#include "model_data.h"\n'
        "int main() {\n"
        "  if (reinterpret_cast<std::uintptr_t>(g_model_data) % 16 != 0) return 1;\n"
        '  if (std::memcmp(g_model_data + 4, "TFL3", 4) != 0) return 2;\n'
        '  std::printf("%u\\n", g_model_data_len);\n'
        "  return 0;\n}\n"
    )
    binary = tmp_path / "check"
    subprocess.run(
        [
            compiler,
            "-std=c++17",
            "-Wall",
            "-Werror",
            "-I",
            plain["out"],
            str(main),
            os.path.join(plain["out"], "model_data.cc"),
            "-o",
            str(binary),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result = subprocess.run([str(binary)], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert int(result.stdout) == len(_read(plain, "model.tflite"))


def test_op_resolver_header_compiles_against_stub(exported, tmp_path):
    compiler = _compiler()
    stub_dir = tmp_path / "tensorflow" / "lite" / "micro"
    stub_dir.mkdir(parents=True)
    methods = "\n".join(
        f"  TfLiteStatus {m}() {{ return Add(); }}" for m in _REAL_METHODS
    )
    (stub_dir / "micro_mutable_op_resolver.h").write_text(_STUB % methods)
    ops = TFLiteGraph(_read(exported, "model.tflite")).op_names()
    main = tmp_path / "main.cc"
    main.write_text(
        '#include "op_resolver.h"\n'
        f'static_assert(lmuformer_export::kNumOps == {len(ops)}, "op count");\n'
        "int main() {\n"
        "  auto& resolver = lmuformer_export::GetOpResolver();\n"
        "  lmuformer_export::OpResolver fresh;\n"
        "  if (lmuformer_export::RegisterOps(fresh) != kTfLiteOk) return 1;\n"
        "  return resolver.count == lmuformer_export::kNumOps ? 0 : 2;\n}\n"
    )
    binary = tmp_path / "check"
    subprocess.run(
        [
            compiler,
            "-std=c++17",
            "-Wall",
            "-Werror",
            "-I",
            str(tmp_path),
            "-I",
            exported["out"],
            str(main),
            "-o",
            str(binary),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert subprocess.run([str(binary)], check=False).returncode == 0


# --------------------------------------------------------------------- errors
def test_op_tflm_lacks_is_named_with_its_layer(tmp_path):
    toy = build_toy_streaming_model(hidden_activation="gelu")
    x, _ = make_toy_dataset(8, seed=1)
    with pytest.raises(le.UnsupportedOpError, match=r"GELU.*Keras layer 'lmu_hidden'"):
        le.export_streaming_model(toy, x, str(tmp_path), verbose=False)


def test_converter_failure_is_reported_from_any_backend(tmp_path):
    """int16x8 has no GREATER_EQUAL/CAST: the converter's error reaches the caller
    (through the TensorFlow child process under JAX and torch)."""
    toy = build_toy_streaming_model(spiking=True)
    x, _ = make_toy_dataset(4, seed=1)
    with pytest.raises(le.ConversionError, match=r"int16x8.*GREATER_EQUAL.*int8"):
        le.export_streaming_model(
            toy, x, str(tmp_path), quantization="int16x8", verbose=False
        )


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((4, 32, 8), r"\(N, T, F\) = \(N, T, 16\) with F=16.*got shape \(4, 32, 8\)"),
        ((0, 32, 16), r"empty .*\(N, T, F\)"),
        ((32, 16), r"\(N, T, F\).*got shape \(32, 16\)"),
    ],
)
def test_bad_calibration_clips_name_the_expected_shape(tmp_path, shape, match):
    toy = build_toy_streaming_model()
    with pytest.raises(le.CalibrationDataError, match=match):
        le.export_streaming_model(
            toy, np.zeros(shape, np.float32), str(tmp_path), verbose=False
        )


def test_object_without_streaming_form_is_rejected(tmp_path):
    class NotStreaming:
        step_model = None

    with pytest.raises(le.NotStreamableError, match="state_specs"):
        le.export_streaming_model(NotStreaming(), np.zeros((1, 2, 3)), str(tmp_path))


def test_cli_helpers_report_missing_streaming_form():
    import keras

    from lmuformer_export.cli import build_streaming_model

    model = keras.Sequential([keras.Input((NUM_FEATURES,)), keras.layers.Dense(4)])
    with pytest.raises(le.NotStreamableError, match="has no streaming form"):
        build_streaming_model(model, "export_fixtures:streaming_from_keras")
    with pytest.raises(le.NotStreamableError, match="cannot build the streaming form"):
        build_streaming_model(model, "no_such_module_xyz:StreamingModel")


# ------------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    toy, _ = make_trained_toy(spiking=False, n_train=200)
    toy.step_model.save(str(folder / "toy.keras"))
    x, y = make_toy_dataset(16, seed=5)
    np.savez(folder / "cal.npz", x=x, y=y)
    np.savez(folder / "bad.npz", x=x[..., :8])
    return folder


def _cli(args):
    return subprocess.run(
        [sys.executable, "-m", "lmuformer_export.cli", *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_cli_exports_a_saved_model(cli_files):
    out = cli_files / "out"
    result = _cli(
        [
            f"--model={cli_files / 'toy.keras'}",
            f"--calibration={cli_files / 'cal.npz'}",
            f"--out={out}",
            "--streaming_factory=export_fixtures:streaming_from_keras",
            "--max_tflm_clips=2",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "lmuformer-export: int8" in result.stdout
    for name in ARTIFACTS:
        assert (out / name).exists(), name
    meta = json.loads((out / "metadata.json").read_text())
    assert [s["name"] for s in meta["states"]] == ["conv_buffer", "lmu_memory"]


def test_cli_rejects_mis_shaped_calibration(cli_files):
    result = _cli(
        [
            f"--model={cli_files / 'toy.keras'}",
            f"--calibration={cli_files / 'bad.npz'}",
            f"--out={cli_files / 'bad_out'}",
            "--streaming_factory=export_fixtures:streaming_from_keras",
        ]
    )
    assert result.returncode == 1
    assert "expected shape (N, T, F) = (N, T, 16) with F=16" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_usage_errors():
    result = _cli(["--model=m.keras"])
    assert result.returncode == 2
    assert "--calibration is required" in result.stderr
