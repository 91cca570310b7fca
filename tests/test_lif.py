"""Tests of the LIF layer (all backends)."""

import keras
import numpy as np
import pytest
from keras import ops

from lmuformer_keras.layers.lif import LIF

from grad_utils import grad

RNG = np.random.default_rng(1)


def sig_grad(z, alpha=4.0):
    s = 1.0 / (1.0 + np.exp(-alpha * np.asarray(z, np.float64)))
    return alpha * s * (1.0 - s)


def np_lif(x, tau=2.0, v_th=1.0, v_reset=0.0, v0=None):
    """NumPy loop of the LIF equations (float32, 1 / tau as a multiplication)."""
    x = np.asarray(x, np.float32)
    k = np.float32(1.0 / tau)
    v = np.zeros_like(x[:, 0]) if v0 is None else np.asarray(v0, np.float32)
    spikes, hs = [], []
    for t in range(x.shape[1]):
        h = v + (x[:, t] - v + np.float32(v_reset)) * k
        s = (h - np.float32(v_th) >= 0).astype(np.float32)
        v = h * (1 - s) + np.float32(v_reset) * s
        spikes.append(s)
        hs.append(h)
    return np.stack(spikes, 1), v, np.stack(hs, 1)


def np_lif_grad(x, w, tau, v_th, v_reset, detach_reset, v0=None, alpha=4.0):
    """Hand-written BPTT of L = sum(S * w) with the sigmoid surrogate.

    Backward of one step, with G_V the gradient arriving at V_t from step t + 1:
        dL/dS_t = w_t + (0 if detach_reset else G_V * (v_reset - H_t))
        dL/dH_t = dL/dS_t * g'(H_t - v_th) + G_V * (1 - S_t)
        dL/dX_t = dL/dH_t / tau,   G_V <- dL/dH_t * (1 - 1 / tau)
    Returns (dL/dX, dL/dV_{-1}).
    """
    s, _, h = np_lif(x, tau, v_th, v_reset, v0)
    s, h, w = (np.asarray(a, np.float64) for a in (s, h, w))
    gx = np.zeros_like(h)
    g_v = np.zeros_like(h[:, 0])
    for t in reversed(range(x.shape[1])):
        g_s = w[:, t] + (0.0 if detach_reset else g_v * (v_reset - h[:, t]))
        g_h = g_s * sig_grad(h[:, t] - v_th, alpha) + g_v * (1.0 - s[:, t])
        gx[:, t] = g_h / tau
        g_v = g_h * (1.0 - 1.0 / tau)
    return gx, g_v


def random_inputs(shape=(3, 11, 5), scale=1.5, seed=None):
    rng = RNG if seed is None else np.random.default_rng(seed)
    return (rng.normal(size=shape) * scale + 0.8).astype("float32")


@pytest.mark.parametrize(
    "tau,v_th,v_reset",
    [(2.0, 1.0, 0.0), (2.0, 0.5, 0.0), (3.0, 0.7, -0.2), (1.5, 1.0, 0.3)],
)
def test_forward_matches_numpy_loop(tau, v_th, v_reset):
    x = random_inputs((3, 13, 2, 4))
    v0 = RNG.normal(size=(3, 2, 4)).astype("float32") * 0.3
    layer = LIF(tau=tau, v_threshold=v_th, v_reset=v_reset, return_state=True)
    for init in (None, v0):
        s, v = layer(x, initial_state=init)
        s_ref, v_ref, _ = np_lif(x, tau, v_th, v_reset, init)
        np.testing.assert_array_equal(ops.convert_to_numpy(s), s_ref)
        np.testing.assert_allclose(ops.convert_to_numpy(v), v_ref, atol=1e-6)
    assert 0.05 < s_ref.mean() < 0.95  # the test exercises both spikes and silence


@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("tau,v_th,v_reset", [(2.0, 1.0, 0.0), (3.0, 0.6, -0.2)])
def test_bptt_gradient_matches_hand_written(tau, v_th, v_reset, detach_reset):
    x = random_inputs((2, 9, 3))
    w = RNG.normal(size=x.shape).astype("float32")
    v0 = RNG.normal(size=(2, 3)).astype("float32") * 0.3
    layer = LIF(tau=tau, v_threshold=v_th, v_reset=v_reset, detach_reset=detach_reset)
    gx, gv0 = grad(lambda x, v0: ops.multiply(layer(x, initial_state=v0), w), x, v0)
    gx_ref, gv0_ref = np_lif_grad(x, w, tau, v_th, v_reset, detach_reset, v0)
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gv0, gv0_ref, rtol=1e-4, atol=1e-6)


def test_detach_reset_two_steps_by_hand():
    # tau = 2, v_th = 1, v_reset = 0, sigmoid surrogate g'(z) (alpha = 4), V_{-1} = 0,
    # L = S_0 + S_1 with x_0 = 2.4, x_1 = 1.0:
    #   H_0 = x_0 / 2 = 1.2 -> S_0 = 1, V_0 = H_0 (1 - S_0) = 0
    #   H_1 = V_0 + (x_1 - V_0) / 2 = 0.5 -> S_1 = 0
    # dL/dx_1 = g'(H_1 - 1) / 2 = g'(-0.5) / 2 (either way).
    # dL/dx_0 = g'(H_0 - 1) / 2 + g'(H_1 - 1) * (1/2) * dV_0/dx_0, where
    #   detach_reset=True:  dV_0/dx_0 = (1 - S_0) / 2 = 0
    #                       -> dL/dx_0 = g'(0.2) / 2
    #   detach_reset=False: dV_0/dx_0 = ((1 - S_0) - H_0 g'(H_0 - 1)) / 2
    #                                 = -1.2 g'(0.2) / 2
    #                       -> dL/dx_0 = g'(0.2) / 2 - 0.3 g'(-0.5) g'(0.2)
    x = np.array([[[2.4], [1.0]]], np.float32)
    a, b = sig_grad(0.2), sig_grad(-0.5)
    expected = {
        True: [a / 2, b / 2],
        False: [a / 2 - 0.3 * b * a, b / 2],
    }
    for detach in (True, False):
        layer = LIF(detach_reset=detach)
        np.testing.assert_array_equal(ops.convert_to_numpy(layer(x)).ravel(), [1, 0])
        (gx,) = grad(layer, x)
        np.testing.assert_allclose(gx.ravel(), expected[detach], rtol=1e-5)
    assert expected[True][0] != pytest.approx(expected[False][0])


@pytest.mark.parametrize("jit", [False, True])
def test_gradient_under_jit(jit):
    x = random_inputs((2, 6, 3))
    w = RNG.normal(size=x.shape).astype("float32")
    layer = LIF(v_threshold=0.5)
    (gx,) = grad(lambda x: ops.multiply(layer(x), w), x, jit=jit)
    gx_ref, _ = np_lif_grad(x, w, 2.0, 0.5, 0.0, True)
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-4, atol=1e-6)


def compiled_step(layer):
    """``layer.step`` the way a streaming step graph runs it on this backend.

    JAX always compiles a scan body with XLA, which may contract ``v + a * (1 / tau)``
    into one fused multiply-add; an op-by-op eager step rounds twice. Run under
    ``jax.jit``, the step gets the same fusion, so the comparison stays bit-exact.
    """
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(layer.step)
    return layer.step


@pytest.mark.parametrize(
    "tau,v_reset,compiled",
    [(3.0, 0.0, True), (3.0, -0.3, True), (2.5, 0.2, True), (2.0, 0.0, False)],
)
def test_multi_step_equals_repeated_single_step(tau, v_reset, compiled):
    # With tau = 2 (the reference) 1 / tau is a power of two, so even an eager
    # (unfused) step is bit-exact on every backend.
    x = random_inputs((3, 10, 4))
    layer = LIF(tau=tau, v_threshold=0.8, v_reset=v_reset, return_state=True)
    s_all, v_all = layer(x)
    step = compiled_step(layer) if compiled else layer.step
    v = np.zeros((3, 4), np.float32)
    steps = []
    for t in range(x.shape[1]):
        s_t, v_t = step(x[:, t], v)
        # Without the surrogate term: bit-identical (the term is exactly 0.0).
        s_f, v_f = layer.step(x[:, t], v, differentiable=False)
        s_d, v_d = layer.step(x[:, t], v)
        np.testing.assert_array_equal(
            ops.convert_to_numpy(s_f), ops.convert_to_numpy(s_d)
        )
        np.testing.assert_array_equal(
            ops.convert_to_numpy(v_f), ops.convert_to_numpy(v_d)
        )
        v = v_t
        steps.append(ops.convert_to_numpy(s_t))
    np.testing.assert_array_equal(ops.convert_to_numpy(s_all), np.stack(steps, 1))
    np.testing.assert_array_equal(ops.convert_to_numpy(v_all), ops.convert_to_numpy(v))


@pytest.mark.parametrize("tau,v_reset", [(2.0, 0.0), (3.0, -0.2)])
def test_step_graph_equals_parallel_model(tau, v_reset):
    # The streaming contract: a functional step model built from LIF.step (without
    # the surrogate term) reproduces the functional multi-step model bit for bit,
    # both run by predict (compiled the same way on every backend).
    layer = LIF(tau=tau, v_threshold=0.8, v_reset=v_reset, return_state=True)
    frame, state = keras.Input((4,)), keras.Input((4,))
    step_model = keras.Model(
        [frame, state], list(layer.step(frame, state, differentiable=False))
    )
    seq = keras.Input((None, 4))
    parallel = keras.Model(seq, list(layer(seq)))
    x = random_inputs((2, 8, 4))
    s_all, v_all = parallel.predict(x, verbose=0)
    v = np.zeros((2, 4), np.float32)
    steps = []
    for t in range(x.shape[1]):
        s_t, v = step_model.predict([x[:, t], v], verbose=0)
        steps.append(s_t)
    np.testing.assert_array_equal(np.stack(steps, 1), s_all)
    np.testing.assert_array_equal(v, v_all)


def test_initial_state_continues_a_split_sequence():
    x = random_inputs((2, 12, 3))
    layer = LIF(tau=2.5, v_threshold=0.9, return_state=True)
    s_full, v_full = layer(x)
    s_a, v_a = layer(x[:, :5])
    s_b, v_b = layer(x[:, 5:], initial_state=v_a)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(s_full),
        np.concatenate([ops.convert_to_numpy(s_a), ops.convert_to_numpy(s_b)], 1),
    )
    np.testing.assert_array_equal(
        ops.convert_to_numpy(v_full), ops.convert_to_numpy(v_b)
    )


@pytest.mark.parametrize("surrogate", ["sigmoid", "atan", "ste"])
def test_surrogates_forward_identical(surrogate):
    x = random_inputs((2, 7, 3))
    s = ops.convert_to_numpy(LIF(surrogate=surrogate)(x))
    np.testing.assert_array_equal(s, np_lif(x)[0])


def test_functional_model_unknown_time_and_state_io():
    inputs = keras.Input((None, 4))
    state_in = keras.Input((4,))
    s, v = LIF(return_state=True)(inputs, initial_state=state_in)
    assert tuple(s.shape) == (None, None, 4)
    assert tuple(v.shape) == (None, 4)
    model = keras.Model([inputs, state_in], [s, v])
    for t in (3, 8):
        x = random_inputs((2, t, 4))
        v0 = np.zeros((2, 4), np.float32)
        s_out, v_out = model.predict([x, v0], verbose=0)
        s_ref, v_ref, _ = np_lif(x)
        np.testing.assert_array_equal(s_out, s_ref)
        np.testing.assert_allclose(v_out, v_ref, atol=1e-6)


def test_compute_output_shape():
    assert LIF().compute_output_shape((2, None, 5)) == (2, None, 5)
    assert LIF(return_state=True).compute_output_shape((2, 7, 3, 5)) == (
        (2, 7, 3, 5),
        (2, 3, 5),
    )


def toy_classifier():
    inputs = keras.Input((None, 3))
    x = keras.layers.Dense(16)(inputs)
    x = LIF(tau=2.0, v_threshold=0.5)(x)
    x = keras.layers.Dense(2)(x)
    outputs = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, outputs)


def test_config_and_save_load_round_trip(tmp_path):
    layer = LIF(
        tau=3.0,
        v_threshold=0.5,
        v_reset=-0.1,
        detach_reset=False,
        surrogate="atan",
        alpha=2.0,
        clip_value=0.5,
        return_state=True,
        name="lif_x",
    )
    config = layer.get_config()
    expected = {
        "tau": 3.0,
        "v_threshold": 0.5,
        "v_reset": -0.1,
        "detach_reset": False,
        "surrogate": "atan",
        "alpha": 2.0,
        "clip_value": 0.5,
        "return_state": True,
        "name": "lif_x",
    }
    for key, value in expected.items():
        assert config[key] == value, key
    assert LIF.from_config(config).get_config() == config

    model = toy_classifier()
    x = random_inputs((4, 6, 3))
    path = tmp_path / "lif.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.layers[2], LIF)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(loaded(x)), ops.convert_to_numpy(model(x))
    )


@pytest.mark.parametrize("jit_compile", ["auto", True])
def test_spiking_classifier_learns(jit_compile):
    # Class = sign of the mean of feature 0 over time (a sequence task).
    # jit_compile=True: XLA on TensorFlow (the fit default on GPU); torch.compile
    # is out of scope, and JAX always compiles.
    if jit_compile is True and keras.backend.backend() != "tensorflow":
        pytest.skip("XLA fit is the TensorFlow-specific path")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8, 3)).astype("float32")
    y = (x[:, :, 0].mean(axis=1) > 0).astype("int32")
    keras.utils.set_random_seed(0)
    model = toy_classifier()
    model.compile(
        optimizer=keras.optimizers.Adam(0.02),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    history = model.fit(x, y, batch_size=32, epochs=6, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"tau": 0.0}, "tau=0.0"),
        ({"tau": -2}, "tau=-2"),
        ({"surrogate": "tanh"}, "surrogate='tanh'"),
        ({"alpha": 0.0}, "alpha=0.0"),
        ({"clip_value": -1.0}, "clip_value=-1.0"),
        ({"v_threshold": float("nan")}, "v_threshold=nan"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match="LIF") as info:
        LIF(**kwargs)
    assert match in str(info.value)


def test_rank_below_three_raises():
    layer = LIF(name="lif_rank")
    with pytest.raises(ValueError, match=r"lif_rank.*shape=\(2, 3\)"):
        layer(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="LIF"):
        keras.Sequential([keras.Input((5,)), LIF()])


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize(
    "tau, v_th, v_reset", [(2.0, 1.0, 0.0), (3.0, 0.5, -0.3), (1.7, -0.2, 0.1)]
)
def test_inference_loop_without_autograd_is_bit_identical(policy, tau, v_th, v_reset):
    """torch with autograd off runs a plain-torch loop: the same bits as the scan."""
    from lmuformer_keras.backend_utils import lif_scan_without_autograd

    lif = LIF(tau=tau, v_threshold=v_th, v_reset=v_reset, return_state=True)
    lif_dtype = LIF(
        tau=tau, v_threshold=v_th, v_reset=v_reset, return_state=True, dtype=policy
    )
    x = RNG.normal(size=(3, 40, 5)).astype("float32") * 2
    v0 = RNG.normal(size=(3, 5)).astype("float32")
    if keras.backend.backend() != "torch":
        x_t = ops.convert_to_tensor(x)
        assert lif_scan_without_autograd(x_t, v0, 0.5, 1.0, 0.0) is None
        return
    import torch

    for layer in (lif, lif_dtype):
        with torch.no_grad():
            fast_s, fast_v = layer(x, initial_state=v0)
        scan_s, scan_v = layer(x, initial_state=v0)  # autograd on: time_scan
        assert fast_s.dtype == scan_s.dtype
        assert torch.equal(fast_s, scan_s.detach())
        assert torch.equal(fast_v, scan_v.detach())
        assert 0.0 < float(fast_s.float().mean()) < 1.0  # some spikes, not all
    with torch.no_grad():
        s, v = lif(x, initial_state=v0)
    ref_s, ref_v = np_lif(x, tau, v_th, v_reset, v0)[:2]
    np.testing.assert_array_equal(ops.convert_to_numpy(s), ref_s)
    np.testing.assert_array_equal(ops.convert_to_numpy(v), ref_v)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize(
    "tau,v_th,v_reset,detach_reset",
    [(2.0, 0.5, 0.0, True), (3.0, 0.7, -0.2, False), (2.0, 1.0, 0.3, False)],
)
def test_loop_gradient_equals_autodiff_of_unrolled_steps(
    jit, tau, v_th, v_reset, detach_reset
):
    # The multi-step loop has its own backward pass on JAX and TensorFlow (a reverse
    # loop of per-step VJPs; its forward loop runs the step without the surrogate
    # term): it must equal plain autodiff through the steps written out one by one,
    # for the inputs and for the initial membranes, with the final membrane used too.
    x = random_inputs((2, 7, 3), seed=5)
    v0 = (RNG.normal(size=(2, 3)) * 0.5).astype("float32")
    w = RNG.normal(size=x.shape).astype("float32")
    w_v = RNG.normal(size=v0.shape).astype("float32")
    layer = LIF(
        tau=tau,
        v_threshold=v_th,
        v_reset=v_reset,
        detach_reset=detach_reset,
        return_state=True,
    )

    def loss(spikes, v_last):
        return ops.sum(ops.multiply(spikes, w)) + ops.sum(ops.multiply(v_last, w_v))

    def looped(x, v0):
        return loss(*layer(x, initial_state=v0))

    def unrolled(x, v0):
        v, spikes = v0, []
        for t in range(x.shape[1]):
            s, v = layer.step(x[:, t], v)
            spikes.append(s)
        return loss(ops.stack(spikes, axis=1), v)

    got = grad(looped, x, v0, jit=jit)
    want = grad(unrolled, x, v0, jit=jit)
    assert np.abs(want[0]).max() > 0 and np.abs(want[1]).max() > 0
    for g, r in zip(got, want, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tau,v_reset", [(2.0, 0.0), (2.0, -0.3), (3.0, 0.2)])
def test_compiled_loop_equals_step_run_op_by_op(tau, v_reset):
    # Compiled, the multi-step call must give the bits of the export step run as
    # the step graph runs: on TensorFlow a graph (tf.function), whose loop is
    # XLA-compiled when 1 / tau is a power of two (fused multiply-adds then round as
    # separate ops do) and a graph loop otherwise; JAX compiles both (see
    # compiled_step).
    x = random_inputs((4, 30, 16), seed=3)
    layer = LIF(tau=tau, v_threshold=0.8, v_reset=v_reset, return_state=True)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        s_all, v_all = tf.function(lambda x: layer(x))(x)
    elif backend == "jax":
        import jax

        s_all, v_all = jax.jit(lambda x: layer(x))(x)
    else:
        s_all, v_all = layer(x)
    if backend == "tensorflow":
        step = tf.function(lambda x_t, v: layer.step(x_t, v, differentiable=False))
    else:
        step = compiled_step(layer)
    v, steps = np.zeros((4, 16), np.float32), []
    for t in range(x.shape[1]):
        s_t, v = step(x[:, t], v)
        steps.append(ops.convert_to_numpy(s_t))
    assert 0.05 < np.mean(steps) < 0.95
    np.testing.assert_array_equal(ops.convert_to_numpy(s_all), np.stack(steps, 1))
    np.testing.assert_array_equal(ops.convert_to_numpy(v_all), ops.convert_to_numpy(v))


def test_no_xla_loop_on_apple_silicon_gpus(monkeypatch):
    # tensorflow-metal has no XLA (Keras turns jit_compile off there too): the LIF
    # loop must then stay a graph loop instead of failing to compile.
    if keras.backend.backend() != "tensorflow":
        pytest.skip("XLA-compiled LIF loop is the TensorFlow-specific path")
    import platform

    import tensorflow as tf

    from lmuformer_keras import backend_utils

    x = random_inputs((2, 9, 4), seed=4)
    layer = LIF(return_state=True)
    want = [ops.convert_to_numpy(t) for t in tf.function(lambda x: layer(x))(x)]
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    monkeypatch.setattr(platform, "processor", lambda: "arm")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda *a: ["GPU:0"])
    backend_utils._tf_has_xla.cache_clear()
    try:
        assert not backend_utils._tf_has_xla()
        graph = tf.function(lambda x: layer(x)).get_concrete_function(
            tf.TensorSpec(x.shape, tf.float32)
        )
        ops_used = {op.type for op in graph.graph.get_operations()}
        assert "StatefulPartitionedCall" not in ops_used
        assert "PartitionedCall" not in ops_used
        got = [ops.convert_to_numpy(t) for t in graph(tf.constant(x))]
    finally:
        monkeypatch.undo()
        backend_utils._tf_has_xla.cache_clear()
    assert backend_utils._tf_has_xla()
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("tau, v_th, v_reset", [(2.0, 1.0, 0.0), (3.0, 0.5, -0.3)])
def test_membranes_integrate_in_float32_under_mixed_precision(tau, v_th, v_reset):
    """Under ``mixed_bfloat16`` the LIF returns bfloat16 spikes and float32
    membranes, computed as the float32 LIF computes them from the same inputs (a
    bfloat16 membrane would round ``X_t / tau`` away), in the multi-step call and in
    the step; its surrogate gradient reaches the bfloat16 inputs."""
    kwargs = dict(tau=tau, v_threshold=v_th, v_reset=v_reset, return_state=True)
    mixed = LIF(dtype="mixed_bfloat16", **kwargs)
    plain = LIF(**kwargs)
    assert mixed.state_dtype == "float32" and plain.state_dtype == "float32"
    x = ops.cast(RNG.normal(size=(3, 30, 7)).astype("float32") * 2, "bfloat16")
    v0 = RNG.normal(size=(3, 7)).astype("float32")
    s, v = mixed(x, initial_state=v0)
    ref_s, ref_v = plain(ops.cast(x, "float32"), initial_state=v0)
    assert keras.backend.standardize_dtype(s.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(v.dtype) == "float32"
    np.testing.assert_array_equal(
        ops.convert_to_numpy(ops.cast(s, "float32")), ops.convert_to_numpy(ref_s)
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(v), ops.convert_to_numpy(ref_v))
    assert 0.0 < float(ops.convert_to_numpy(ref_s).mean()) < 1.0

    # The step against the float32 step (on JAX the compiled scan may contract
    # into fused multiply-adds, which op-by-op steps do not).
    v_t = ref_v_t = ops.convert_to_tensor(v0)
    for t in range(x.shape[1]):
        s_t, v_t = mixed.step(x[:, t], v_t)
        ref_s_t, ref_v_t = plain.step(ops.cast(x[:, t], "float32"), ref_v_t)
        assert keras.backend.standardize_dtype(s_t.dtype) == "bfloat16"
        assert keras.backend.standardize_dtype(v_t.dtype) == "float32"
        np.testing.assert_array_equal(
            ops.convert_to_numpy(ops.cast(s_t, "float32")),
            ops.convert_to_numpy(ref_s_t),
        )
        np.testing.assert_array_equal(
            ops.convert_to_numpy(v_t), ops.convert_to_numpy(ref_v_t)
        )

    (g,) = grad(
        lambda a: ops.cast(LIF(dtype="mixed_bfloat16", tau=tau)(a), "float32"),
        ops.convert_to_numpy(ops.cast(x, "float32")),
    )
    assert np.all(np.isfinite(g)) and np.any(g != 0)
