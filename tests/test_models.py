"""LMUFormer: presets, streaming == parallel, causality, serialization, fit, errors."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest

from lmuformer_keras.layers import LIF
from lmuformer_keras.models import LMUFormer, list_presets, preset_config
from lmuformer_keras.streaming import StreamingModel, frame_logits

from backend_roundtrip import assert_loads_in_other_backend

SMALL = dict(
    num_features=5,
    num_classes=3,
    dim=8,
    num_blocks=2,
    mlp_ratio=2,
    order=6,
    theta=6.0,
    num_patch_layers=3,
)


def small_model(spiking: bool, causal: bool = True, seed: int = 0) -> LMUFormer:
    """A small model with random weights and non-trivial BatchNorm statistics."""
    keras.utils.set_random_seed(seed)
    model = LMUFormer(**SMALL, spiking=spiking, causal=causal)
    model.build((None, None, SMALL["num_features"]))
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if w.path.endswith("moving_mean"):
            w.assign(rng.normal(scale=0.3, size=w.shape))
        elif w.path.endswith("moving_variance"):
            w.assign(rng.uniform(0.5, 2.0, size=w.shape))
        elif w.path.endswith("gamma"):
            # Spiking: large enough that LIF neurons (threshold 1, tau 2) fire.
            low, high = (1.5, 3.0) if spiking else (0.8, 1.6)
            w.assign(rng.uniform(low, high, size=w.shape))
        elif w.path.endswith("beta"):
            w.assign(rng.normal(scale=0.3, size=w.shape))
    return model


def clips(batch=2, frames=14, seed=1):
    rng = np.random.default_rng(seed)
    return (2.0 * rng.normal(size=(batch, frames, SMALL["num_features"]))).astype(
        "float32"
    )


def test_paper_presets_parameter_counts():
    counts = {}
    for name in ("lmuformer_scv2", "spiking_lmuformer_scv2"):
        model = LMUFormer.from_preset(name)
        counts[name] = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    # The reference implementation's trainable parameter counts (REFERENCE.md).
    assert counts == {"lmuformer_scv2": 1_621_796, "spiking_lmuformer_scv2": 1_689_894}


def test_all_presets_build_and_overrides():
    for name in list_presets():
        config = preset_config(name)
        assert config["num_classes"] >= 2, name
    model = LMUFormer.from_preset("lmuformer_tiny_kws", spiking=True, num_classes=35)
    assert model.spiking and model.num_classes == 35
    assert model.frontend["name"] == "micro40"
    assert model.frontend["params"]["num_mel_bins"] == 40
    tiny = LMUFormer.from_preset("lmuformer_tiny_kws")
    n = sum(int(np.prod(w.shape)) for w in tiny.trainable_weights)
    assert n < 60_000  # int8 weights of the step graph fit in 64 KB with room.
    small = LMUFormer.from_preset("lmuformer_small_kws")
    n_small = sum(int(np.prod(w.shape)) for w in small.trainable_weights)
    assert 2 * n < n_small < 240_000  # more capacity, int8 still within 256 KB
    with pytest.raises(ValueError, match="no_such_preset"):
        LMUFormer.from_preset("no_such_preset")
    with pytest.raises(ValueError, match="widht"):
        LMUFormer.from_preset("lmuformer_tiny_kws", widht=3)


@pytest.mark.parametrize("spiking", [False, True])
def test_streaming_equals_parallel(spiking):
    model = small_model(spiking)
    x = clips()
    parallel = keras.ops.convert_to_numpy(frame_logits(model, x))
    streaming = StreamingModel(model)
    streamed = streaming.run(x)
    assert streamed.shape == parallel.shape == (2, 14, SMALL["num_classes"])
    np.testing.assert_allclose(streamed, parallel, atol=1e-4, rtol=0)
    np.testing.assert_allclose(
        parallel.mean(axis=1), keras.ops.convert_to_numpy(model(x)), atol=1e-5
    )
    # The step_model (the graph the export converts) gives the same frames.
    states = streaming.initial_states(2)
    for t in range(4):
        outs = streaming.step_model([x[:, t], *states])
        outs = [keras.ops.convert_to_numpy(o) for o in outs]
        np.testing.assert_allclose(outs[0], parallel[:, t], atol=1e-4)
        states = outs[1:]
    assert len(states) == len(streaming.state_specs)


def test_spiking_streaming_spikes_are_identical():
    """Every LIF layer's spikes, parallel vs streamed, are the same (and not all 0)."""
    model = small_model(spiking=True, seed=3)
    x = clips(seed=4)
    lifs = [layer for layer in _all_layers(model) if isinstance(layer, LIF)]
    assert len(lifs) >= 10
    recorded: dict = {id(lif): [] for lif in lifs}
    originals = {}
    for lif in lifs:
        originals[id(lif)] = lif.step

        def record(x_t, v_prev=None, differentiable=True, _lif=lif):
            s, v = originals[id(_lif)](x_t, v_prev, differentiable)
            recorded[id(_lif)].append(keras.ops.convert_to_numpy(s))
            return s, v

        lif.step = record
    try:
        StreamingModel(model).run(x)
    finally:
        for lif in lifs:
            lif.step = originals[id(lif)]
    total_spikes = 0
    # Parallel spikes of each LIF through a functional view of the same layers.
    parallel = _parallel_lif_outputs(model, x, lifs)
    for lif in lifs:
        streamed = np.stack(recorded[id(lif)], axis=1)
        np.testing.assert_array_equal(streamed, parallel[id(lif)], err_msg=lif.path)
        total_spikes += streamed.sum()
    assert total_spikes > 0


def _all_layers(layer):
    out = []
    for sub in layer._flatten_layers(include_self=False, recursive=True):
        out.append(sub)
    return out


def _parallel_lif_outputs(model, x, lifs):
    """Captures each LIF's multi-step output in the parallel model."""
    outputs = {}
    originals = {}
    for lif in lifs:
        originals[id(lif)] = lif.call

        def capture(inputs, initial_state=None, _lif=lif):
            y = originals[id(_lif)](inputs, initial_state=initial_state)
            outputs[id(_lif)] = keras.ops.convert_to_numpy(y)
            return y

        lif.call = capture
    try:
        model.frame_logits(keras.ops.convert_to_tensor(x), training=False)
    finally:
        for lif in lifs:
            lif.call = originals[id(lif)]
    return outputs


@pytest.mark.parametrize("spiking", [False, True])
def test_causality(spiking):
    x = clips(frames=12)
    changed = x.copy()
    t = 6
    changed[:, t + 1 :] = 3.0 * np.random.default_rng(9).normal(
        size=changed[:, t + 1 :].shape
    )
    causal = small_model(spiking, causal=True)
    a = keras.ops.convert_to_numpy(frame_logits(causal, x))
    b = keras.ops.convert_to_numpy(frame_logits(causal, changed))
    np.testing.assert_allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-6)
    assert np.abs(a[:, t + 1 :] - b[:, t + 1 :]).max() > 1e-3
    reference = small_model(spiking, causal=False)
    a = keras.ops.convert_to_numpy(frame_logits(reference, x))
    b = keras.ops.convert_to_numpy(frame_logits(reference, changed))
    # Symmetric padding looks ahead: frame t already sees frame t+1.
    assert np.abs(a[:, : t + 1] - b[:, : t + 1]).max() > 1e-3
    with pytest.raises(ValueError, match="causal=False"):
        StreamingModel(reference)


@pytest.mark.parametrize("spiking", [False, True])
def test_keras_round_trip_other_backend(tmp_path, spiking):
    model = small_model(spiking)
    model.labels = ["a", "b", "c"]
    model.frontend = {"name": "toy", "params": {"hop": 20}}
    x = clips()
    expected = keras.ops.convert_to_numpy(model(x))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # default safe_mode=True
    assert loaded.labels == ["a", "b", "c"]
    assert loaded.frontend == {"name": "toy", "params": {"hop": 20}}
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)), expected, atol=1e-5
    )
    if not spiking:  # One cross-backend load per run keeps the suite fast.
        assert_loads_in_other_backend(path, x, expected, atol=1e-4)


def test_get_config_covers_every_argument():
    params = set(inspect.signature(LMUFormer.__init__).parameters) - {"self", "kwargs"}
    config = small_model(False).get_config()
    assert params <= set(config), params - set(config)


@pytest.mark.parametrize("spiking", [False, True])
def test_fit_lowers_loss(spiking):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, SMALL["num_features"])).astype("float32")
    y = (x[:, :, 0].mean(axis=1) > 0).astype("int32") + (
        x[:, :, 1].mean(axis=1) > 0.3
    ).astype("int32")
    model = LMUFormer(**dict(SMALL, num_blocks=1, num_patch_layers=2), spiking=spiking)
    model.compile(
        keras.optimizers.Adam(2e-2 if spiking else 5e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses


def _assert_fine_membranes_change_the_step(stream, x, states) -> None:
    """Membranes off the bfloat16 grid give other outputs than the same membranes
    rounded to it, through the step graph and through ``step``."""
    rng = np.random.default_rng(1)
    fine = [
        rng.normal(size=st.shape).astype("float32") * 0.3
        if spec.name.endswith("/membrane")
        else keras.ops.convert_to_numpy(keras.ops.cast(st, "float32"))
        for spec, st in zip(stream.state_specs, states, strict=True)
    ]
    coarse = [
        keras.ops.convert_to_numpy(
            keras.ops.cast(keras.ops.cast(st, "bfloat16"), "float32")
        )
        for st in fine
    ]
    for run in (stream.step_model, lambda a: stream.step(a[0], a[1:])[1]):
        out_fine, out_coarse = (run([x[:, 1], *st]) for st in (fine, coarse))
        assert any(
            not np.array_equal(
                keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
            )
            for a, b in zip(out_fine[-3:], out_coarse[-3:], strict=True)
        )


@pytest.mark.parametrize("spiking", [False, True])
def test_dtype_policy_reaches_every_layer(tmp_path, spiking):
    """``dtype="mixed_bfloat16"`` makes every layer compute in bfloat16 with float32
    variables, survives a save/load, and ``with_dtype_policy("float32")`` gives the
    float32 model with the same weights."""
    mixed = LMUFormer.from_preset(
        "lmuformer_tiny_kws", spiking=spiking, dim=8, order=8, dtype="mixed_bfloat16"
    )
    assert {layer.dtype_policy.name for layer in mixed._flatten_layers()} == {
        "mixed_bfloat16"
    }
    assert {keras.backend.standardize_dtype(w.dtype) for w in mixed.weights} == {
        "float32"
    }
    x = np.random.default_rng(0).normal(size=(2, 49, 40)).astype("float32")
    y = mixed(x)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    stream = StreamingModel(mixed)  # the step graph follows the model's policy
    outputs = stream.step_model([x[:, 0], *stream.initial_states(2)])
    assert keras.backend.standardize_dtype(outputs[0].dtype) == "bfloat16"
    # The LIF membranes integrate in float32 and go back in unrounded; the other
    # states (buffers, memories) are in the compute dtype.
    logits, states = stream.step(x[:, 1], outputs[1:])
    assert keras.backend.standardize_dtype(logits.dtype) == "bfloat16"
    for spec, graph_state, state in zip(
        stream.state_specs, outputs[1:], states, strict=True
    ):
        expected = "float32" if spec.name.endswith("/membrane") else "bfloat16"
        assert keras.backend.standardize_dtype(graph_state.dtype) == expected
        assert keras.backend.standardize_dtype(state.dtype) == expected
    if spiking:  # Membranes off the bfloat16 grid change the next membranes.
        _assert_fine_membranes_change_the_step(stream, x, outputs[1:])
    path = str(tmp_path / "mixed.keras")
    mixed.save(path)
    loaded = keras.models.load_model(path)
    assert {layer.dtype_policy.name for layer in loaded._flatten_layers()} == {
        "mixed_bfloat16"
    }
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(y)
    )
    plain = mixed.with_dtype_policy("float32")
    assert {layer.dtype_policy.name for layer in plain._flatten_layers()} == {"float32"}
    for a, b in zip(mixed.weights, plain.weights, strict=True):
        assert a.path == b.path
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        )
    if not spiking:  # the same function, up to bfloat16 rounding
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(plain(x)),
            keras.ops.convert_to_numpy(keras.ops.cast(y, "float32")),
            rtol=0.05,
            atol=0.05,
        )
    mixed.compile(
        optimizer="adam", loss=keras.losses.CategoricalCrossentropy(from_logits=True)
    )
    loss = mixed.train_on_batch(x, np.eye(12, dtype="float32")[[0, 1]])
    assert np.isfinite(loss)
    assert plain.with_dtype_policy("float32") is plain  # already float32
    unbuilt = LMUFormer(num_features=3, num_classes=2, dim=4, order=4, mlp_ratio=1)
    copy = unbuilt.with_dtype_policy("mixed_bfloat16")
    assert copy.built and len(copy.weights) == len(unbuilt.weights) > 0
    with pytest.raises(ValueError, match="with_dtype_policy: dtype_policy='float31'"):
        mixed.with_dtype_policy("float31")


def test_wrong_input_shapes():
    model = small_model(False)
    with pytest.raises(ValueError, match=r"\(batch, time, 5\)"):
        model(np.zeros((2, 7, 4), "float32"))
    with pytest.raises(ValueError, match=r"\(batch, time, 5\)"):
        model(np.zeros((2, 5), "float32"))
    streaming = StreamingModel(model)
    with pytest.raises(ValueError, match=r"\(batch, 5\)"):
        streaming.step(np.zeros((1, 4), "float32"), streaming.initial_states(1))
    with pytest.raises(ValueError, match="num_classes"):
        LMUFormer(num_features=3, num_classes=0)
    with pytest.raises(ValueError, match="labels has 2 names"):
        LMUFormer(num_features=3, num_classes=3, labels=["a", "b"])


def test_step_model_saves_and_loads(tmp_path):
    streaming = StreamingModel(small_model(False))
    path = tmp_path / "step.keras"
    streaming.step_model.save(path)
    loaded = keras.models.load_model(path)
    inputs = [clips()[:, 0], *streaming.initial_states(2)]
    for a, b in zip(streaming.step_model(inputs), loaded(inputs), strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=1e-6
        )


def test_per_frame_rows_equal_frames():
    from lmuformer_keras.models.blocks import batch_norm, per_frame

    x = clips(batch=3, frames=7)
    dense = keras.layers.Dense(4)
    dense.build((None, SMALL["num_features"]))
    bn_rows, bn_frames = batch_norm("rows"), batch_norm("frames")
    bn_rows.build((None, 4))
    bn_frames.build((None, None, 4))
    rows = per_frame(lambda r: bn_rows(dense(r), training=True), x)
    frames = bn_frames(dense(x), training=True)
    assert tuple(rows.shape) == (3, 7, 4)
    convert = keras.ops.convert_to_numpy
    np.testing.assert_allclose(convert(rows), convert(frames), atol=1e-5)
    for a, b in zip(bn_rows.weights, bn_frames.weights, strict=True):
        np.testing.assert_allclose(convert(a), convert(b), atol=1e-6)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_dense_bn_folds_at_inference_only(policy):
    from lmuformer_keras.models.blocks import batch_norm, dense_bn

    rng = np.random.default_rng(3)
    rows = (2.0 * rng.normal(size=(40, 6))).astype("float32")
    dense = keras.layers.Dense(5, dtype=policy)
    bn = batch_norm("bn", policy)
    dense.build((None, 6))
    bn.build((None, 5))
    bn.moving_mean.assign(rng.normal(scale=0.5, size=5))
    bn.moving_variance.assign(rng.uniform(0.3, 3.0, size=5))
    bn.gamma.assign(rng.uniform(0.5, 2.0, size=5))
    bn.beta.assign(rng.normal(size=5))
    dense.bias.assign(rng.normal(size=5))
    convert = keras.ops.convert_to_numpy

    def unfolded(training):
        return convert(bn(dense(rows), training=training)).astype("float32")

    folded = convert(dense_bn(dense, bn, False)(rows)).astype("float32")
    out_dtype = dense_bn(dense, bn, False)(rows).dtype
    assert keras.backend.standardize_dtype(out_dtype) == dense.compute_dtype
    # Scaled weights instead of scaled outputs: equal up to rounding (bfloat16
    # keeps 8 bits).
    tol = 1e-5 if policy == "float32" else 0.05
    np.testing.assert_allclose(folded, unfolded(False), rtol=tol, atol=tol)
    # Not an identity: the BatchNormalization moved the outputs.
    assert np.max(np.abs(folded - convert(dense(rows)).astype("float32"))) > 0.1
    # Training uses the batch statistics: nothing is folded.
    before = convert(bn.moving_mean)
    trained = convert(dense_bn(dense, bn, True)(rows)).astype("float32")
    bn.moving_mean.assign(before)
    np.testing.assert_allclose(trained, unfolded(True), rtol=tol, atol=tol)
    assert np.max(np.abs(trained - folded)) > 0.1
    # A Dense with an activation is not folded (the BN comes after it).
    relu_dense = keras.layers.Dense(5, activation="relu", dtype=policy)
    relu_dense.build((None, 6))
    np.testing.assert_array_equal(
        convert(dense_bn(relu_dense, bn, False)(rows)),
        convert(bn(relu_dense(rows), training=False)),
    )


@pytest.mark.parametrize("spiking", [False, True])
def test_functional_model_with_unknown_batch_and_time(spiking):
    model = small_model(spiking)
    inp = keras.Input((None, SMALL["num_features"]))
    wrapped = keras.Model(inp, model(inp))
    for frames in (9, 14):
        x = clips(frames=frames)
        np.testing.assert_allclose(
            wrapped.predict(x, verbose=0),
            keras.ops.convert_to_numpy(model(x)),
            atol=1e-5,
        )


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("training", [False, True])
def test_token_mixer_hidden_layer_without_the_memories(policy, training):
    from lmuformer_keras.models.blocks import per_frame
    from lmuformer_keras.models.token_mixer import LMUTokenMixer

    rng = np.random.default_rng(4)
    mixer = LMUTokenMixer(dim=12, order=10, theta=8.0, memory_d=2, dtype=policy)
    x = rng.normal(size=(3, 16, 12)).astype("float32")
    mixer.build(x.shape)
    mixer.hidden.bias.assign(rng.normal(size=12))
    u = keras.ops.cast(rng.uniform(size=(3, 16, 2)), mixer.compute_dtype)
    xc = keras.ops.cast(x, mixer.compute_dtype)
    convert = keras.ops.convert_to_numpy
    memories = mixer.memory.memory(u, training)
    as_written = per_frame(mixer.hidden, keras.ops.concatenate([memories, xc], -1))
    got = mixer._hidden_of_memory(u, xc, training)
    assert keras.backend.standardize_dtype(got.dtype) == mixer.compute_dtype
    tol = 1e-5 if policy == "float32" else 0.06
    np.testing.assert_allclose(
        convert(got).astype("float32"),
        convert(as_written).astype("float32"),
        rtol=tol,
        atol=tol,
    )
    # The memories matter: without them the output differs.
    without = per_frame(mixer.hidden, keras.ops.concatenate([memories * 0, xc], -1))
    assert np.max(np.abs(convert(got).astype("float32") - convert(without))) > 0.1


def test_clip_logits_take_the_mean_before_the_head():
    model = LMUFormer.from_preset("lmuformer_mnist1d", dim=16, order=8)
    x = np.random.default_rng(5).normal(size=(2, 40, 1)).astype("float32")
    convert = keras.ops.convert_to_numpy
    per_frame_logits = convert(model.frame_logits(x))
    np.testing.assert_allclose(
        convert(model(x)), per_frame_logits.mean(axis=1), rtol=1e-5, atol=1e-5
    )
    assert np.ptp(per_frame_logits, axis=1).max() > 1e-3  # frames do differ
