"""The deployment contract (``lmuformer_keras.contract``): one definition each of a
state, a quantized tensor, the frontend record and ``metadata.json``.

- ``ExportMetadata.to_json`` / ``from_json`` round-trip, and one spelling of each field;
- a version-1 file (the shipped layout before the contract) is upgraded by the one
  converter, which checks that its two spellings of a field agree;
- every refused field names the field and the value;
- ``metadata.schema.json`` is generated, checked in where the Java tests read it, and
  describes what ``to_json`` writes;
- NumPy only: importing the contract (or the package) imports neither Keras nor
  TensorFlow, and ``import lmuformer_keras`` alone is enough to load a saved model.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lmuformer_keras import contract
from lmuformer_keras.contract import (
    ExportedState,
    ExportMetadata,
    Frontend,
    MetadataError,
    QuantizedTensor,
    StateSpec,
)
from lmuformer_keras.contract.metadata_json import METADATA_KEYS, REQUIRED_KEYS
from lmuformer_keras.contract.tensor import STATE_KEYS, TENSOR_KEYS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
V1_FILE = os.path.join(REPO, "tests", "data", "metadata_v1_tiny_kws.json")
SCHEMA_FILE = os.path.join(
    REPO, "apps", "android", "kws-core", "src", "test", "resources",
    "metadata.schema.json",
)  # fmt: skip


def _tensor(position, shape, scale=0.05, zero_point=-3, dtype="int8", name=None):
    return QuantizedTensor(position, shape, dtype, scale, zero_point, name)


def _metadata(**changes) -> ExportMetadata:
    """A small int8 export: frame (1, 40), logits (1, 4), two states, micro40."""
    states = (
        ExportedState(
            "leaky",
            _tensor(2, (1, 4), 0.1, 5, name="state_0"),
            _tensor(1, (1, 4), 0.1, 5, name="Identity_1"),
            0.0,
            5,
        ),
        ExportedState(
            "buffer",
            _tensor(1, (1, 3, 4), 0.02, 0, name="state_1"),
            _tensor(2, (1, 3, 4), 0.02, 0, name="Identity_2"),
            0.0,
            0,
        ),
    )
    fields = dict(
        frame=_tensor(0, (1, 40), name="frame"),
        logits=_tensor(0, (1, 4), 0.2, 1, name="Identity"),
        states=states,
        quantization="int8",
        labels=("_silence_", "_unknown_", "low", "high"),
        frontend=Frontend.named("micro40"),
        arena_bytes=8192,
        arena_bytes_min=8000,
        model_bytes=1234,
        ops=("ADD", "FULLY_CONNECTED"),
        macs_per_frame=200,
    )
    fields.update(changes)
    return ExportMetadata(**fields).validate()


def _edit(data: dict, dotted: str, value) -> dict:
    data = copy.deepcopy(data)
    target = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is _DELETE:
        del target[parts[-1]]
    elif isinstance(target, list):
        target[int(parts[-1])] = value
    else:
        target[parts[-1]] = value
    return data


_DELETE = object()


# ------------------------------------------------------------------- round trip
def test_round_trip_to_json_from_json():
    meta = _metadata()
    text = meta.to_json()
    again = ExportMetadata.from_json(text)
    assert again == meta
    assert again.to_json() == text  # written the same way it is read
    assert ExportMetadata.from_json(json.loads(text)) == meta  # the parsed object too
    data = json.loads(text)
    assert data["format_version"] == 2
    assert set(REQUIRED_KEYS) <= set(data) <= set(METADATA_KEYS)
    assert set(data["frame"]) == set(TENSOR_KEYS)
    assert set(data["states"][0]) == set(STATE_KEYS)
    # one spelling: no duplicate of the positions, shapes, counts or hop
    for gone in ("frame_input_index", "input", "num_features", "frame_hop_ms"):
        assert gone not in data
    assert set(data["states"][0]["input"]) == set(TENSOR_KEYS)  # no shape/bytes twins


def test_derived_fields():
    meta = _metadata()
    assert (meta.num_features, meta.num_classes, meta.num_tensors) == (40, 4, 3)
    assert meta.frame_hop_ms == 20.0
    assert meta.state_specs == [StateSpec("leaky", (4,)), StateSpec("buffer", (3, 4))]
    init = meta.initial_states()
    assert [a.shape for a in init] == [(1, 4), (1, 3, 4)]
    assert init[0].dtype == np.int8 and np.all(init[0] == 5)
    assert meta.states[1].input.nbytes == 12
    assert _metadata(labels=None).class_labels == [f"class_{i}" for i in range(4)]
    smoothed = meta.replace(smoothing={"detection_threshold": 0.7})
    assert ExportMetadata.from_json(smoothed.to_json()).smoothing == {
        "detection_threshold": 0.7
    }


def test_save_and_load(tmp_path):
    meta = _metadata()
    path = meta.save(tmp_path / "metadata.json")
    assert ExportMetadata.load(path) == meta
    assert sorted(os.listdir(tmp_path)) == ["metadata.json"]  # no temporary left
    (tmp_path / "metadata.json").write_text("{not json")
    with pytest.raises(
        MetadataError, match=r"metadata\.json: metadata: not valid JSON"
    ):
        ExportMetadata.load(path)


# ---------------------------------------------------------------- version 1
def test_version_1_file_is_upgraded():
    with open(V1_FILE) as fh:
        v1 = json.load(fh)
    assert v1["format_version"] == 1
    meta = ExportMetadata.from_json(v1)
    assert meta.frame.position == v1["frame_input_index"] == v1["input"]["position"]
    assert meta.logits.position == v1["logits_output_index"]
    assert (meta.num_features, meta.num_classes) == (v1["num_features"], 12)
    assert meta.frame_hop_ms == v1["frame_hop_ms"]
    assert meta.labels == tuple(v1["labels"])
    for state, old in zip(meta.states, v1["states"], strict=True):
        assert state.name == old["name"]
        assert list(state.input.shape) == old["tensor_shape"] == [1, *old["shape"]]
        assert state.input.position == old["input_index"]
        assert state.output.position == old["output_index"]
        assert (state.input.name, state.output.name) == (
            old["input_name"],
            old["output_name"],
        )
        assert state.input.nbytes == old["bytes"]
        assert state.input.scale == old["scale"] == state.output.scale
        assert state.initial_quantized == old["initial_quantized"]
    assert (meta.arena_bytes, meta.ops) == (v1["arena_bytes"], tuple(v1["ops"]))
    # written back as version 2, read as version 2 to the same record
    assert ExportMetadata.from_json(meta.to_json()) == meta


def test_version_1_state_without_tensor_shape_has_no_batch_axis():
    with open(V1_FILE) as fh:
        v1 = json.load(fh)
    for state in v1["states"]:
        del state["tensor_shape"], state["bytes"]
    meta = ExportMetadata.from_json(v1)
    assert [s.input.shape for s in meta.states] == [
        (1, *s["shape"]) for s in v1["states"]
    ]


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("input.position", 3, r"input: position 3 differs from the top-level "
         r"frame_input_index=0"),
        ("num_features", 32, r"input: shape \[1, 40\] but num_features=32"),
        ("states.0.tensor_shape", [1, 9, 40], r"shape \[2, 40\] does not match "
         r"tensor_shape \[1, 9, 40\]"),
        ("states.0.bytes", 81, r"bytes=81 but shape \[1, 2, 40\] of int8 has 80"),
        ("frame_hop_ms", 10.0, r"frame_hop_ms=10.0 but its frontend record hops 20"),
        ("states.0.input_index", "1", r"input_index must be an integer, got '1'"),
        ("states", "x", r"'states' must be a list, got str 'x'"),
        ("frame_input_index", _DELETE, r"missing key 'frame_input_index'"),
    ],
)  # fmt: skip
def test_version_1_disagreements_are_named(key, value, match):
    with open(V1_FILE) as fh:
        v1 = json.load(fh)
    with pytest.raises(MetadataError, match=match):
        ExportMetadata.from_json(_edit(v1, key, value))


def test_upgrade_command(tmp_path):
    path = tmp_path / "metadata.json"
    with open(V1_FILE) as fh:
        path.write_text(fh.read())
    env = dict(os.environ, PYTHONPATH=REPO)
    run = [sys.executable, "-m", "lmuformer_keras.contract"]
    proc = subprocess.run([*run, "upgrade", str(path)], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(path.read_text())["format_version"] == 2
    proc = subprocess.run([*run, "check", str(path)], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 0 and "40 features, 12 classes, 4 states" in proc.stdout
    path.write_text('{"format_version": 9}')
    proc = subprocess.run([*run, "check", str(path)], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 1 and "format_version=9 is not supported" in proc.stderr


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "key,value,match",
    [
        ("format_version", _DELETE, r"missing key 'format_version'"),
        ("format_version", 3, r"format_version=3 is not supported"),
        ("frame", _DELETE, r"metadata: missing key 'frame'"),
        ("frame_input_index", 0, r"unknown key\(s\) \['frame_input_index'\]"),
        ("frame.position", 3, r"frame position=3 is out of range \[0, 3\)"),
        ("frame.position", 2, r"states\[0\] \('leaky'\) input position=2 is already "
         r"used by the frame"),
        ("frame.position", 1.5, r"frame position must be an integer, got 1\.5"),
        ("frame.shape", [40], r"frame shape must start with the batch axis 1.*\[40\]"),
        ("frame.shape", [1, 40, 1], r"frame shape must be \[1, n\], got \[1, 40, 1\]"),
        ("frame.shape", "40", r"frame shape must be a list of integers, got '40'"),
        ("frame.dtype", "int4", r"frame dtype 'int4' is not supported"),
        ("frame.scale", -1.0, r"frame scale must be a finite number > 0, got -1\.0"),
        ("frame.scale", float("nan"), r"frame scale must be finite, got nan"),
        ("frame.scale", None, r"frame: an int8 tensor needs a scale"),
        ("frame.zero_point", 200, r"frame zero_point=200 is out of the int8 range"),
        ("frame.zero_point", True, r"frame zero_point must be an integer, got True"),
        ("frame.extra", 1, r"metadata frame: unknown key\(s\) \['extra'\]"),
        ("logits.dtype", "int16", r"quantization='int8' but the logits output is "
         r"int16"),
        ("quantization", "int16x8", r"quantization='int16x8' but the frame input is "
         r"int8"),
        ("labels", ["a"], r"1 labels but the logits have num_classes=4"),
        ("labels", [0, 1, 2, 3], r"labels\[0\] must be a string, got int 0"),
        ("states.0", "leaky", r"states\[0\] must be a JSON object, got str 'leaky'"),
        ("states.0.name", 7, r"states\[0\] name must be a string, got int 7"),
        ("states.0.output.zero_point", 6, r"states\[0\] \('leaky'\): the input .* and "
         r"output .* differ"),
        ("states.0.output.shape", [1, 5], r"\('leaky'\): the input \(\[1, 4\]"),
        ("states.0.initial_quantized", 128, r"initial_quantized=128 is out of"),
        ("states.0.initial_value", "0", r"initial_value must be a number, got '0'"),
        ("frontend", "micro40", r"frontend must be a JSON object .*got str 'micro40'"),
        ("frontend.params", _DELETE, r"frontend: 'params' must be a JSON object"),
        ("frontend.frame_hop_ms", 0, r"frontend frame_hop_ms must be > 0, got 0\.0"),
        ("model_file", "../x.tflite", r"model_file='\.\./x\.tflite' is outside"),
        ("model_file", 5, r"model_file must be a file name .*got int 5"),
        ("arena_bytes", -1, r"arena_bytes must be >= 0, got -1"),
        ("ops", "ADD", r"ops must be a list, got str 'ADD'"),
        ("smoothing", [1], r"'smoothing' must be an object, got list \[1\]"),
    ],
)  # fmt: skip
def test_validate_errors_name_the_field_and_value(key, value, match):
    data = _metadata().to_dict()
    with pytest.raises(MetadataError, match=match):
        ExportMetadata.from_json(_edit(data, key, value))


def test_validate_on_constructed_records():
    with pytest.raises(MetadataError, match=r"quantization must be one of"):
        _metadata(quantization="int4")
    bad_state = ExportedState(
        "s", _tensor(1, (1, 2)), _tensor(1, (1, 2), scale=0.5), 0.0, None
    )
    with pytest.raises(MetadataError, match=r"\('s'\): the input .* differ"):
        _metadata(states=(bad_state,))
    with pytest.raises(ValueError, match=r"StateSpec 'x': shape entries must be >= 1"):
        StateSpec("x", (0,))


def test_check_model_names_the_mismatch():
    meta = _metadata()
    inputs = [meta.frame, meta.states[1].input, meta.states[0].input]
    outputs = [meta.logits, meta.states[0].output, meta.states[1].output]
    meta.check_model(inputs, outputs)
    with pytest.raises(MetadataError, match=r"1 frame \+ 2 state\(s\).*model has 2 in"):
        meta.check_model(inputs[:2], outputs)
    other = _tensor(0, (1, 40), scale=0.07)
    match = r"frame input \(model input 0\): metadata scale 0\.05 but the model's "
    with pytest.raises(MetadataError, match=match + r"tensor has scale 0\.07"):
        meta.check_model([other, *inputs[1:]], outputs)
    match = r"state 0 \('leaky'\) input \(model input 2\): the model's tensor has "
    with pytest.raises(MetadataError, match=match + r"shape \[1, 3, 4\]"):
        meta.check_model([inputs[0], inputs[2], inputs[1]], outputs)


# ---------------------------------------------------------------------- schema
def test_checked_in_schema_is_current():
    with open(SCHEMA_FILE, encoding="utf-8") as fh:
        assert fh.read() == contract.schema_json(), (
            "stale: python -m lmuformer_keras.contract schema " + SCHEMA_FILE
        )


def test_schema_describes_what_to_json_writes():
    schema = contract.metadata_schema()
    assert list(schema["properties"]) == list(METADATA_KEYS)
    assert schema["required"] == list(REQUIRED_KEYS)
    assert list(schema["$defs"]["tensor"]["properties"]) == list(TENSOR_KEYS)
    assert list(schema["$defs"]["state"]["properties"]) == list(STATE_KEYS)
    written = json.loads(_metadata(smoothing={"a": 1}, note="n").to_json())
    assert set(written) == set(METADATA_KEYS)  # every optional field written here
    import jsonschema  # dev extra: the schema is checked, never skipped

    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(written)
    validator.validate(json.loads(_metadata(labels=None, frontend=None).to_json()))
    with open(V1_FILE) as fh:
        validator.validate(json.loads(ExportMetadata.from_json(fh.read()).to_json()))
    edits = [("frame_input_index", 0), ("frame.shape", [40]),
             ("states.0.input.dtype", "int4"), ("format_version", 1)]  # fmt: skip
    for key, value in edits:
        assert not validator.is_valid(_edit(written, key, value)), key


# --------------------------------------------------------------- the records
def test_quantize_rounds_half_away_from_zero():
    x = np.array([0.5, -0.5, 1.5, 2.5, -2.5, 0.49, 300.0, -300.0, np.nan])
    q = contract.quantize(x, 1.0, 0, "int8")
    np.testing.assert_array_equal(q, [1, -1, 2, 3, -3, 0, 127, -128, 0])
    t = _tensor(0, (1, 9), scale=0.5, zero_point=1)
    want = contract.quantize(x * 0.5, 0.5, 1, np.int8)
    np.testing.assert_array_equal(t.quantize(x * 0.5), want)
    np.testing.assert_allclose(t.dequantize(np.array([1, 3])), [0.0, 1.0])
    f = _tensor(0, (1, 2), scale=None, dtype="float32")
    assert f.scale is None and f.zero_point is None and not f.quantized
    assert f.quantize([0.25, np.nan]).tolist() == [0.25, 0.0]


def test_frontend_record_is_built_once():
    from lmuformer_keras.features import get_frontend

    record = Frontend.named("micro40").record()
    assert set(record) == {"name", "params", "frame_hop_ms"}
    assert record == get_frontend("micro40").record()
    assert Frontend.from_record({"name": "micro40"}).record() == record
    assert Frontend.from_record(record) == Frontend.named("micro40")
    no_hop = {k: v for k, v in record.items() if k != "frame_hop_ms"}
    assert Frontend.from_record(no_hop).frame_hop_ms == 20.0  # from the params
    record["params"]["norm_mean"] = 0.0  # a copy: the registered one is unchanged
    assert Frontend.named("micro40").params["norm_mean"] == -6.0
    with pytest.raises(MetadataError, match=r"frontend 'nope': .*nope"):
        Frontend.from_record({"name": "nope"})


def test_presets_use_the_frontend_record():
    from lmuformer_keras.models import preset_config

    config = preset_config("lmuformer_tiny_kws")
    assert config["frontend"] == Frontend.named("micro40").record()


# ---------------------------------------------------------- package imports
def _python(code: str, cwd=None, timeout: int = 300) -> str:
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=timeout)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip()


def test_contract_imports_without_keras():
    out = _python(
        "import sys, lmuformer_keras, lmuformer_keras.contract; "
        "import lmuformer_keras.features; "
        "lmuformer_keras.ExportMetadata; lmuformer_keras.get_frontend; "
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') "
        "if m in sys.modules))"
    )
    assert out == "[]"


def test_import_lmuformer_keras_alone_loads_a_saved_model(tmp_path):
    path = str(tmp_path / "model.keras")
    _python(
        "import numpy as np, lmuformer_keras as lk; "
        "m = lk.LMUFormer.from_preset('lmuformer_tiny_kws', dim=8, order=4, "
        "num_frames=5); "
        "m(np.zeros((1, 5, 40), 'float32')); "
        f"m.save({path!r}); print(lk.StreamingModel.__name__, lk.LMUCell.__name__)"
    )
    for first in ("import keras, lmuformer_keras", "import lmuformer_keras, keras"):
        out = _python(
            f"{first}; m = keras.saving.load_model({path!r}); "
            "print(type(m).__name__, m.frontend['name'])"
        )
        assert out.endswith("LMUFormer micro40"), out
