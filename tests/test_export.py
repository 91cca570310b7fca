"""Tests of the export pipeline (lmuformer_export) on small real LMUFormer models.

Two small causal LMUFormers (non-spiking and spiking) are trained for a few epochs on a
learnable toy task (class = sign pattern of two feature-group means) under the current
Keras backend, then exported:

- non-spiking: saved as ``.keras`` and exported by the ``lmuformer-export`` CLI (which
  runs under the TensorFlow backend whatever the training backend was);
- spiking: ``export_streaming_model(model, ...)`` in this process (under JAX and torch
  the conversion runs in a TensorFlow-backend child process).

Each model is exported once per module; the tests read the artifacts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import lmuformer_export as le
from lmuformer_export.flatbuffer import INTEGER_TYPES, TFLiteGraph
from lmuformer_export.model_io import map_io
from lmuformer_export.op_divergence import op_divergence
from lmuformer_export.runtimes import initial_quantized_states
from lmuformer_export.tflm_ops import TFLM_ADD_METHODS
from lmuformer_export.verify import compare_runtimes
from lmuformer_keras.contract import ExportMetadata, QuantizedTensor

from export_fixtures import (
    FRONTEND,
    LABELS,
    NUM_FEATURES,
    NUM_FRAMES,
    GeluStep,
    build_lmuformer,
    build_tiny_kws,
    make_sign_task,
    train_lmuformer,
)

ARTIFACTS = [
    "model.tflite",
    "model_data.cc",
    "model_data.h",
    "op_resolver.h",
    "metadata.json",
    "report.json",
]
STREAM_FRAMES = 200
TFLM_CLIPS = 40
BACKEND = keras.backend.backend()


def _env() -> dict:
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
        TF_CPP_MIN_LOG_LEVEL="3",
    )


def _cli(args):
    return subprocess.run(
        [sys.executable, "-m", "lmuformer_export.cli", *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def calibration_set():
    return make_sign_task(64, seed=3)


@pytest.fixture(scope="module")
def test_set():
    return make_sign_task(100, seed=7)


def _load(out) -> dict:
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    return {"out": str(out), "report": report}


@pytest.fixture(scope="module")
def plain(tmp_path_factory, calibration_set, test_set):
    """Trained under this backend, saved, exported by the CLI (TensorFlow)."""
    model, accuracy = train_lmuformer(spiking=False)
    assert accuracy >= 0.95
    folder = tmp_path_factory.mktemp("plain")
    model.save(str(folder / "model.keras"))
    np.savez(folder / "cal.npz", x=calibration_set[0], y=calibration_set[1])
    np.savez(folder / "test.npz", x=test_set[0], y=test_set[1])
    result = _cli(
        [
            f"--model={folder / 'model.keras'}",
            f"--calibration={folder / 'cal.npz'}",
            f"--test={folder / 'test.npz'}",
            f"--out={folder / 'out'}",
            f"--max_tflm_clips={TFLM_CLIPS}",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "lmuformer-export: int8" in result.stdout
    return {"model": model, "folder": folder, **_load(folder / "out")}


@pytest.fixture(scope="module")
def plain_fc(plain):
    """The same model exported with --nodense_as_conv (Dense as FULLY_CONNECTED)."""
    folder = plain["folder"]
    result = _cli(
        [
            f"--model={folder / 'model.keras'}",
            f"--calibration={folder / 'cal.npz'}",
            f"--test={folder / 'test.npz'}",
            f"--out={folder / 'out_fc'}",
            f"--max_tflm_clips={TFLM_CLIPS}",
            "--nodense_as_conv",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {"model": plain["model"], "folder": folder, **_load(folder / "out_fc")}


@pytest.fixture(scope="module")
def spiking(tmp_path_factory, calibration_set, test_set):
    """Trained and exported in this process (a Keras model is wrapped)."""
    model, accuracy = train_lmuformer(spiking=True)
    assert accuracy >= 0.9
    out = tmp_path_factory.mktemp("spiking")
    le.export_streaming_model(
        model,
        calibration_set[0],
        str(out),
        y=calibration_set[1],
        test_x=test_set[0],
        test_y=test_set[1],
        max_tflm_clips=TFLM_CLIPS,
        verbose=False,
    )
    return {"model": model, **_load(out)}


@pytest.fixture(params=["plain", "spiking"])
def exported(request):
    return request.getfixturevalue(request.param)


def _read(exported, name):
    with open(os.path.join(exported["out"], name), "rb") as f:
        return f.read()


def _metadata(exported) -> ExportMetadata:
    """The export's ``metadata.json``, read as the apps read it."""
    return ExportMetadata.from_json(_read(exported, "metadata.json"))


def _io_from_metadata(graph, meta: ExportMetadata):
    names = {
        "inputs": [graph.tensor_name(graph.inputs[meta.frame.position])]
        + [graph.tensor_name(graph.inputs[s.input.position]) for s in meta.states],
        "outputs": [graph.tensor_name(graph.outputs[meta.logits.position])]
        + [graph.tensor_name(graph.outputs[s.output.position]) for s in meta.states],
    }
    return map_io(graph, names, meta.num_features, meta.num_classes, meta.state_specs)


# ------------------------------------------------------------------ artifacts
def test_export_writes_every_artifact(exported):
    for name in ARTIFACTS:
        assert os.path.getsize(os.path.join(exported["out"], name)) > 0, name
    report = exported["report"]
    assert report["model_bytes"] == len(_read(exported, "model.tflite"))
    assert report["quantization"] == "int8"
    assert report["checks"] == {
        "loop_free": True,
        "tflm_builtins_only": True,
        "integer_only": True,
        "state_params_equal": True,
    }


def test_metadata_comes_from_the_saved_model(exported):
    """Labels, frontend and hop come from the model; the stream is fully described."""
    raw = json.loads(_read(exported, "metadata.json"))
    assert raw["format_version"] == 2
    meta = _metadata(exported)
    assert meta.to_dict() == raw  # one spelling: read and written the same
    model = exported["model"]
    assert list(meta.labels) == LABELS == model.labels
    assert meta.frontend.record() == FRONTEND == model.frontend
    assert meta.frame_hop_ms == FRONTEND["frame_hop_ms"]
    assert (meta.num_features, meta.num_classes) == (NUM_FEATURES, len(LABELS))
    for tensor in (meta.frame, meta.logits):
        assert tensor.dtype == "int8"
        assert tensor.scale > 0 and -128 <= tensor.zero_point <= 127
    specs = model.state_specs()
    assert [s.name for s in meta.states] == [s.name for s in specs]
    assert meta.state_specs == specs
    for state, spec in zip(meta.states, specs, strict=True):
        assert state.input.shape == (1, *spec.shape)
        assert state.input.dtype == "int8"
        assert state.input.same_layout(state.output)
        assert state.initial_quantized == state.input.zero_point
    assert meta.arena_bytes >= meta.arena_bytes_min > 0
    assert meta.arena_bytes % 16 == 0
    assert meta.model_bytes == len(_read(exported, "model.tflite"))


def test_only_tflm_builtins_and_integer_tensors(exported):
    graph = TFLiteGraph(_read(exported, "model.tflite"))
    ops = graph.op_names()
    assert set(ops) <= set(TFLM_ADD_METHODS), ops
    assert not set(ops) & {"CAST", "DEQUANTIZE", "WHILE", "VAR_HANDLE"}, ops
    dtypes = {graph.tensor_dtype(t) for t in range(len(graph.tensors))}
    assert dtypes <= INTEGER_TYPES, dtypes
    for t in graph.inputs + graph.outputs:
        assert graph.tensor_dtype(t) == "int8"
    assert exported["report"]["ops"] == ops


def test_spike_islands_are_integer(spiking):
    """CAST(bool)->float spikes (and the float ops after them) became SELECT_V2."""
    report = spiking["report"]
    assert report["bool_casts_folded"] >= 1
    assert "SELECT_V2" in report["ops"] and "GREATER_EQUAL" in report["ops"]


def test_batchnorm_folded_into_dense(plain):
    assert plain["report"]["mul_add_folded_into_dense"] >= 1


def _lif_layers(model):
    from lmuformer_keras.layers.lif import LIF

    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, LIF)
    ]


def test_lif_neurons_fold_into_five_ops(spiking):
    """Every LIF layer: MUL(v), ADD, GREATER_EQUAL, SELECT_V2 (spike), SELECT_V2."""
    report = spiking["report"]
    lifs = _lif_layers(spiking["model"])
    assert report["lif_neurons_folded"] == len(lifs) >= 8
    assert not {"SUB", "CAST"} & set(report["ops"]), report["ops"]
    graph = TFLiteGraph(_read(spiking, "model.tflite"))
    compares = [op for op in graph.operators if graph.op_name(op) == "GREATER_EQUAL"]
    assert len(compares) == len(lifs)
    membranes = {s.name: s for s in _metadata(spiking).states if "membrane" in s.name}
    assert len(membranes) == len(lifs)
    params = {
        (round(s.input.scale, 12), s.input.zero_point) for s in membranes.values()
    }
    for op in compares:
        h, threshold = (int(t) for t in op.inputs)
        # The threshold is an int8 level of the potential's own grid (an integer
        # comparison), and that grid is the membrane state's.
        assert graph.is_constant(threshold) and graph.tensor_shape(threshold) == ()
        scales, zero_points = graph.quantization_arrays(h)
        assert graph.quantization(threshold) == graph.quantization(h)
        assert (round(float(scales[0]), 12), int(zero_points[0])) in params
    methods = {s["name"]: s["method"] for s in report["states"]}
    assert all(methods[name] == "shared" for name in membranes)


def test_shape_ops_that_move_no_data_are_removed(exported):
    report = exported["report"]
    assert report["shape_ops_removed"] >= 2
    graph = TFLiteGraph(_read(exported, "model.tflite"))
    consumers = graph.consumers()
    for index, op in enumerate(graph.operators):
        name = graph.op_name(op)
        source, out = int(op.inputs[0]), int(op.outputs[0])
        if name in ("RESHAPE", "STRIDED_SLICE"):
            assert graph.tensor_shape(source) != graph.tensor_shape(out), index
        if name == "RESHAPE":
            readers = [
                graph.op_name(graph.operators[r]) for r in consumers.get(out, [])
            ]
            assert "FULLY_CONNECTED" not in readers, index


def test_flatbuffer_is_written_compactly(exported):
    """No internal names, no private empty buffers, repeated objects stored once."""
    model_bytes = _read(exported, "model.tflite")
    graph = TFLiteGraph(model_bytes)
    io = set(graph.inputs + graph.outputs)
    for index, tensor in enumerate(graph.tensors):
        if index not in io:
            assert tensor.name is None, index
        if not graph.is_constant(index):
            assert tensor.buffer == 0, index
    assert len(graph.to_bytes()) == len(model_bytes)  # stable when re-written
    # Without sharing (the generated Pack), the same model is larger.
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(graph.model.Pack(builder), file_identifier=b"TFL3")
    assert len(builder.Output()) > len(model_bytes) + 1000


def _all_tensor_values(model_bytes: bytes, frames: int = 20) -> list[dict]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=model_bytes,
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=True,
    )
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    values = []
    for _ in range(frames):
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(
                detail["index"],
                rng.integers(-128, 128, size=detail["shape"]).astype(np.int8),
            )
        interpreter.invoke()
        values.append(
            {
                d["index"]: interpreter.get_tensor(d["index"]).copy()
                for d in interpreter.get_tensor_details()
                if d["dtype"] == np.int8
            }
        )
    return values


def test_rescaling_a_dense_output_changes_no_byte(plain_fc):
    """scale_tensor moves a factor into a Dense's scales: same int8 values."""
    from lmuformer_export.rescale import scale_tensor

    model_bytes = _read(plain_fc, "model.tflite")
    graph = TFLiteGraph(model_bytes)
    consumers = graph.consumers()
    dense_outputs = [
        (int(op.outputs[0]), graph.operators[consumers[int(op.outputs[0])][0]])
        for op in graph.operators
        if graph.op_name(op) == "FULLY_CONNECTED"
        and len(consumers.get(int(op.outputs[0]), [])) == 1
        and int(op.outputs[0]) not in graph.outputs
    ]
    assert dense_outputs
    tensor, reader = dense_outputs[0]
    old_scale = graph.quantization(tensor)[0]
    assert scale_tensor(graph, tensor, 0.375, reader=reader)
    assert graph.quantization(tensor)[0] == pytest.approx(0.375 * old_scale, rel=1e-6)
    before = _all_tensor_values(model_bytes)
    after = _all_tensor_values(graph.to_bytes())
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a[tensor], b[tensor])
    # The reader is not rescaled, so what it computes from the tensor changes.
    out = int(reader.outputs[0])
    assert any(
        not np.array_equal(a[out], b[out]) for a, b in zip(before, after, strict=True)
    )


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


def test_state_output_params_equal_input_params(exported):
    """Checked with LiteRT's own view of the model, not the exporter's."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=_read(exported, "model.tflite"))
    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    meta = _metadata(exported)
    methods = {s["name"]: s["method"] for s in exported["report"]["states"]}
    assert methods["patch_embedding/conv0/buffer"] == "shared"  # the frame shift
    assert methods["block0_token_mixer/memory/m"] in ("retargeted_output", "shared")
    for state in meta.states:
        q_in = inputs[state.input.position]["quantization"]
        q_out = outputs[state.output.position]["quantization"]
        assert q_in == q_out, state.name
        assert q_in == (
            pytest.approx(state.input.scale, rel=1e-7),
            state.input.zero_point,
        )
        assert tuple(inputs[state.input.position]["shape"]) == state.input.shape
    frame = inputs[meta.frame.position]
    assert list(frame["shape"]) == [1, NUM_FEATURES]
    assert frame["quantization"][1] == meta.frame.zero_point
    logits = outputs[meta.logits.position]
    assert list(logits["shape"]) == [1, meta.num_classes]
    meta.check_model(  # what the apps check
        [QuantizedTensor.from_tensor_detail(d, p) for p, d in enumerate(inputs)],
        [QuantizedTensor.from_tensor_detail(d, p) for p, d in enumerate(outputs)],
    )


@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="the conversion runs under TensorFlow for every backend; covered by the "
    "tensorflow run",
)
@pytest.mark.parametrize("spiking", [False, True], ids=["plain", "spiking"])
def test_tiny_kws_presets_fit_64kb_flash_and_32kb_arena(spiking, tmp_path):
    """The microcontroller budget of the tiny keyword-spotting presets (issue #6)."""
    model = build_tiny_kws(spiking)
    x = np.random.default_rng(1).normal(size=(16, 49, 40)).astype(np.float32)
    report = le.export_streaming_model(
        model, x, str(tmp_path), verify=False, verbose=False
    )
    assert report["model_bytes"] <= 64 * 1024, report["model_bytes"]
    assert report["arena_bytes_min"] <= 32 * 1024, report["arena_bytes_min"]
    graph = TFLiteGraph((tmp_path / "model.tflite").read_bytes())
    for op in graph.operators:  # weights stay int8 per channel
        if graph.op_name(op) == "FULLY_CONNECTED":
            weights = int(op.inputs[1])
            assert graph.tensor_dtype(weights) == "int8"
            channels = graph.tensor_shape(weights)[0]
            assert graph.quantization_arrays(weights)[0].size == channels
    if spiking:
        assert report["lif_neurons_folded"] == len(_lif_layers(model)) == 9


# --------------------------------------------------------------- verification
def test_int8_decisions_agree_with_float(exported):
    verification = exported["report"]["verification"]
    lite, micro = verification["litert"], verification["tflm"]
    assert lite["clips"] == 100 and micro["clips"] == TFLM_CLIPS
    assert verification["frames_per_clip"] == NUM_FRAMES
    assert lite["agreement_with_float"] >= 0.99
    assert micro["agreement_with_float"] >= 0.99
    assert verification["float"]["accuracy"] >= 0.95
    assert lite["accuracy_drop_points"] <= 0.5
    assert micro["accuracy_drop_points"] <= 0.5
    goals = exported["report"]["goals"]
    assert goals["litert_agreement_ge_99pct"] and goals["tflm_agreement_ge_99pct"]


def test_report_gives_the_deployment_figures(plain):
    report = plain["report"]
    assert report["arena_bytes_min"] > 0 and report["model_bytes"] > 0
    assert report["macs_per_frame"] == sum(report["macs_by_op"].values()) > 0
    assert report["macs_per_second"] == round(report["macs_per_frame"] * 1000 / 20)
    assert report["verification"]["litert"]["resolver"] == "reference"
    assert "BUILTIN_REF" in report["notes"][0]
    micro = report["verification"]["tflm"]
    assert set(micro["max_diff_vs_litert"]) >= {"per_step", "free_running", "unit"}
    assert "per_step" in micro["max_diff_vs_litert_default"]
    assert "per_step" in micro["max_diff_vs_litert_optimized"]


def _stream(test_set):
    x, _ = test_set
    frames = x.reshape(-1, x.shape[-1])[:STREAM_FRAMES]
    assert frames.shape[0] == STREAM_FRAMES
    return frames


def _runtime_diffs(exported, test_set):
    model_bytes = _read(exported, "model.tflite")
    meta = _metadata(exported)
    io = _io_from_metadata(TFLiteGraph(model_bytes), meta)
    initial = [np.zeros(s.input.shape, np.float32) for s in meta.states]
    return compare_runtimes(
        model_bytes,
        io,
        _stream(test_set),
        initial_quantized_states(io, initial),
        meta.arena_bytes,
    )


def test_tflm_and_litert_compute_the_same_bytes_over_200_frames(exported, test_set):
    """Same inputs every frame (TFLM fed LiteRT's states): kernel differences only.

    Every Dense runs as a 1x1 CONV_2D, whose int8 kernels in TFLite Micro and in
    LiteRT's reference set (BUILTIN_REF) compute the same bytes: no difference per
    step, and so none free-running either, spikes included.
    """
    report = exported["report"]
    assert report["dense_as_conv"] >= 4
    assert "FULLY_CONNECTED" not in report["ops"] and "CONV_2D" in report["ops"]
    diffs = _runtime_diffs(exported, test_set)
    assert diffs["frames"] == STREAM_FRAMES
    assert diffs["per_step"] == {"logits": 0, "states": 0}, diffs
    assert diffs["free_running"] == {"logits": 0, "states": 0}, diffs
    micro = report["verification"]["tflm"]
    assert micro["max_diff_vs_litert"]["per_step"] == {"logits": 0, "states": 0}
    assert micro["agreement_with_litert"] == 1.0
    assert micro["divergence_by_op"]["ops_whose_kernels_differ"] == []
    assert report["goals"]["tflm_vs_litert_per_step_max_le_2_lsb"]


def test_dense_as_fully_connected_agrees_within_2_lsb_over_200_frames(
    plain_fc, test_set
):
    """--nodense_as_conv: LiteRT's reference FULLY_CONNECTED kernel requantizes
    differently from TFLM's on a few outputs, so they differ by an LSB here and
    there."""
    assert plain_fc["report"]["dense_as_conv"] == 0
    assert "FULLY_CONNECTED" in plain_fc["report"]["ops"]
    diffs = _runtime_diffs(plain_fc, test_set)
    step = diffs["per_step"]
    assert step["logits"] <= 2 and step["states"] <= 2, diffs
    # Free-running, each runtime feeds back its own states: one-LSB differences
    # persist in the Legendre memory but stay small.
    assert diffs["free_running"]["logits"] <= 8, diffs


def test_dense_as_conv_keeps_every_byte_tflm_computes(plain_fc):
    """The rewrite changes the op, not the arithmetic: TFLite Micro gives the same
    bytes for the FULLY_CONNECTED graph and its CONV_2D form, on every output."""
    from lmuformer_export.dense_as_conv import dense_as_conv
    from lmuformer_export.runtimes import TFLMRunner

    fc_bytes = _read(plain_fc, "model.tflite")
    graph = TFLiteGraph(fc_bytes)
    dense = sum(graph.op_name(op) == "FULLY_CONNECTED" for op in graph.operators)
    assert dense_as_conv(graph) == dense >= 4
    assert "FULLY_CONNECTED" not in graph.op_names()
    conv_bytes = graph.to_bytes()
    arena = _metadata(plain_fc).arena_bytes * 2
    runners = [TFLMRunner(fc_bytes, arena), TFLMRunner(conv_bytes, arena)]
    fc_graph = TFLiteGraph(fc_bytes)
    inputs = [fc_graph.tensors[t] for t in fc_graph.inputs]
    rng = np.random.default_rng(0)
    for _ in range(50):
        values = [
            rng.integers(-128, 128, size=tuple(t.shape)).astype(np.int8) for t in inputs
        ]
        outputs = []
        for runner in runners:
            for position, value in enumerate(values):
                runner.set_input(position, value)
            runner.invoke()
            outputs.append([runner.get_output(i) for i in range(len(graph.outputs))])
        for a, b in zip(*outputs, strict=True):
            np.testing.assert_array_equal(a, b)


def test_divergence_by_op_finds_where_the_runtimes_part(plain_fc, test_set):
    """The report's per-op diagnosis adds up to the per-step logits difference."""
    model_bytes = _read(plain_fc, "model.tflite")
    meta = _metadata(plain_fc)
    div = plain_fc["report"]["verification"]["tflm"]["divergence_by_op"]
    graph = TFLiteGraph(model_bytes)
    assert div["ops"] == len(div["by_op"]) == len(graph.operators)
    logits = [d for d in div["by_op"] if d["output"] == "logits"]
    assert len(logits) == 1
    states = {d["output"] for d in div["by_op"] if d["output"].startswith("state:")}
    assert states == {f"state:{s.name}" for s in meta.states}
    io = _io_from_metadata(graph, meta)
    initial = [np.zeros(s.input.shape, np.float32) for s in meta.states]
    initial_q = initial_quantized_states(io, initial)
    x = test_set[0][: div["clips"]]
    per_step = max(
        compare_runtimes(model_bytes, io, clip, initial_q, meta.arena_bytes)[
            "per_step"
        ]["logits"]
        for clip in x
    )
    assert logits[0]["max_lsb"] == per_step
    for d in div["by_op"]:
        assert 0 <= d["own_lsb"] <= d["max_lsb"]
        if d["op"] in ("RESHAPE", "CONCATENATION", "STRIDED_SLICE"):
            assert d["own_lsb"] == 0, d  # they move bytes: no arithmetic to differ
    assert div["largest_max_lsb"] == max(d["max_lsb"] for d in div["by_op"])
    with pytest.raises(ValueError, match=r"clips must be \(N >= 1, T, F\)"):
        op_divergence(model_bytes, io, x[0], initial_q, meta.arena_bytes)


def test_io_mapping_follows_reordered_tensors(plain):
    """Positions come from tensor names, whatever order the converter chose."""
    graph = TFLiteGraph(_read(plain, "model.tflite"))
    meta = _metadata(plain)
    original = _io_from_metadata(graph, meta)
    graph.subgraph.inputs = graph.subgraph.inputs[::-1].copy()
    graph.subgraph.outputs = graph.subgraph.outputs[::-1].copy()
    names = {
        "inputs": [original.frame.name] + [s.name for s in original.states_in],
        "outputs": [original.logits.name] + [s.name for s in original.states_out],
    }
    flipped = map_io(
        graph, names, meta.num_features, meta.num_classes, meta.state_specs
    )
    n_in, n_out = len(graph.inputs), len(graph.outputs)
    assert flipped.frame.position == n_in - 1 - original.frame.position
    assert flipped.logits.position == n_out - 1 - original.logits.position
    for a, b in zip(flipped.states_in, original.states_in, strict=True):
        assert a.position == n_in - 1 - b.position and a.scale == b.scale
    for a, b in zip(flipped.states_out, original.states_out, strict=True):
        assert a.position == n_out - 1 - b.position and a.scale == b.scale


@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="backend-independent: the conversion runs under TensorFlow for every "
    "backend and the rest of the int16x8 path is the int8 one; covered by the "
    "tensorflow run",
)
def test_int16x8_export_has_int16_io_and_tied_states(plain, tmp_path, test_set):
    calibration = np.load(plain["folder"] / "cal.npz")
    report = le.export_streaming_model(
        plain["model"],
        calibration["x"],
        str(tmp_path),
        quantization="int16x8",
        test_x=test_set[0][:20],
        test_y=test_set[1][:20],
        max_tflm_clips=2,
        verbose=False,
    )
    graph = TFLiteGraph((tmp_path / "model.tflite").read_bytes())
    for t in graph.inputs + graph.outputs:
        assert graph.tensor_dtype(t) == "int16"
        assert graph.quantization(t)[1] == 0  # symmetric int16 activations
    assert "float32" not in {graph.tensor_dtype(t) for t in range(len(graph.tensors))}
    meta = ExportMetadata.load(tmp_path / "metadata.json")
    assert all(s.input.dtype == "int16" for s in meta.states)
    assert report["verification"]["litert"]["agreement_with_float"] >= 0.95


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
def test_sequential_has_no_streaming_form(tmp_path):
    model = keras.Sequential([keras.Input((NUM_FEATURES,)), keras.layers.Dense(4)])
    x = np.zeros((2, NUM_FRAMES, NUM_FEATURES), np.float32)
    with pytest.raises(
        le.NotStreamableError,
        match=r"Sequential .*has no streaming form: .*needs an LMUFormer",
    ):
        le.export_streaming_model(model, x, str(tmp_path), verbose=False)


def test_non_causal_lmuformer_is_rejected_with_the_reason(tmp_path):
    model = build_lmuformer(causal=False)
    x = np.zeros((2, NUM_FRAMES, NUM_FEATURES), np.float32)
    with pytest.raises(le.NotStreamableError, match=r"causal=False.*looks ahead"):
        le.export_streaming_model(model, x, str(tmp_path), verbose=False)


def test_cli_helper_names_why_a_model_cannot_stream():
    from lmuformer_export.cli import build_streaming_model

    sequential = keras.Sequential([keras.Input((NUM_FEATURES,)), keras.layers.Dense(4)])
    with pytest.raises(le.NotStreamableError, match="needs an LMUFormer"):
        build_streaming_model(sequential)
    with pytest.raises(le.NotStreamableError, match="causal=False"):
        build_streaming_model(build_lmuformer(causal=False))
    with pytest.raises(le.NotStreamableError, match="cannot build the streaming form"):
        build_streaming_model(sequential, "no_such_module_xyz:StreamingModel")


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((4, 16, 5), r"\(N, T, F\) = \(N, T, 8\) with F=8.*got shape \(4, 16, 5\)"),
        ((0, 16, 8), r"empty .*\(N, T, F\) = \(N, T, 8\)"),
        ((4, 0, 8), r"empty .*\(N, T, F\) = \(N, T, 8\)"),
        ((16, 8), r"\(N, T, F\) = \(N, T, 8\).*got shape \(16, 8\)"),
    ],
)
def test_bad_calibration_clips_name_the_expected_shape(tmp_path, shape, match):
    model = build_lmuformer()
    with pytest.raises(le.CalibrationDataError, match=match):
        le.export_streaming_model(
            model, np.zeros(shape, np.float32), str(tmp_path), verbose=False
        )


TF_ONLY = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="backend-independent (the graph checks and the CLI run under TensorFlow "
    "for every backend); covered by the tensorflow run, saving a TensorFlow child "
    "process here",
)


@TF_ONLY
def test_op_tflm_lacks_is_named_with_its_layer(tmp_path):
    x, _ = make_sign_task(4, seed=1)
    with pytest.raises(le.UnsupportedOpError, match=r"GELU.*Keras layer 'gelu_hidden'"):
        le.export_streaming_model(GeluStep(), x, str(tmp_path), verbose=False)


def test_converter_failure_is_reported_from_any_backend(spiking, tmp_path):
    """int16x8 has no GREATER_EQUAL/CAST: the converter's error reaches the caller
    (through the TensorFlow child process under JAX and torch)."""
    x, _ = make_sign_task(4, seed=1)
    with pytest.raises(le.ConversionError, match=r"int16x8.*GREATER_EQUAL.*int8"):
        le.export_streaming_model(
            spiking["model"], x, str(tmp_path), quantization="int16x8", verbose=False
        )


# ------------------------------------------------------------------------ CLI
@TF_ONLY
def test_cli_rejects_mis_shaped_calibration(plain, capsys):
    """In process (the TensorFlow backend is already loaded): exit code 1 and one
    message naming the expected shape, no traceback."""
    from lmuformer_export import cli

    folder = plain["folder"]
    x, _ = make_sign_task(4, seed=1)
    np.savez(folder / "bad.npz", x=x[..., :5])
    code = cli.main(
        [
            "lmuformer-export",
            f"--model={folder / 'model.keras'}",
            f"--calibration={folder / 'bad.npz'}",
            f"--out={folder / 'bad_out'}",
        ]
    )
    stderr = capsys.readouterr().err
    assert code == 1
    assert "expected shape (N, T, F) = (N, T, 8) with F=8" in stderr
    assert "Traceback" not in stderr


def test_cli_exports_a_mixed_precision_model_as_its_float32_copy(plain):
    """A model saved under mixed_bfloat16 (its variables are float32) exports as its
    float32 copy: the same int8 model, byte for byte."""
    folder = plain["folder"]
    mixed = plain["model"].with_dtype_policy("mixed_bfloat16")
    mixed.save(str(folder / "mixed.keras"))
    result = _cli(
        [
            f"--model={folder / 'mixed.keras'}",
            f"--calibration={folder / 'cal.npz'}",
            f"--out={folder / 'out_mixed'}",
            "--max_tflm_clips=2",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dtype policy 'mixed_bfloat16'; exporting its float32 copy" in result.stdout
    with open(folder / "out_mixed" / "model.tflite", "rb") as f:
        assert f.read() == _read(plain, "model.tflite")


def test_cli_usage_errors():
    result = _cli(["--model=m.keras"])
    assert result.returncode == 2
    assert "--calibration is required" in result.stderr


def test_one_rounding_for_export_and_apps():
    from lmuformer_apps import kws_stream
    from lmuformer_export.runtimes import quantize as export_quantize
    from lmuformer_keras import contract

    x = np.array([0.5, -0.5, 1.5, 2.5, -2.5, 0.49, 300.0, np.nan])
    want = np.array([1, -1, 2, 3, -3, 0, 127, 0], np.int8)  # halves away from zero
    np.testing.assert_array_equal(contract.quantize(x, 1.0, 0, np.int8), want)
    assert kws_stream.quantize is contract.quantize
    frame = QuantizedTensor(position=0, shape=(1, 8), dtype="int8", scale=1.0,
                            zero_point=0, name="frame")  # fmt: skip
    np.testing.assert_array_equal(export_quantize(x, frame), want)
    np.testing.assert_allclose(contract.dequantize(want, 0.5, 1), (want - 1) * 0.5)
