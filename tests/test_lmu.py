"""LMU: matrices, RNN cell vs parallel form vs a NumPy loop, gradients, config, fit."""

from __future__ import annotations

import contextlib
import inspect

import keras
import numpy as np
import pytest
import scipy.signal

from lmuformer_keras.layers import LMUCell, LMUParallel
from lmuformer_keras.lmu import legendre_delay_system, lmu_matrices

import grad_utils
from backend_roundtrip import assert_loads_in_other_backend

RNG = np.random.default_rng(1234)


# --- lmu_matrices -------------------------------------------------------------------


@pytest.mark.parametrize("order,theta", [(1, 1.0), (6, 3.5), (64, 128.0), (256, 128.0)])
def test_lmu_matrices_zoh_matches_scipy(order, theta):
    a, b = lmu_matrices(order, theta, "zoh")
    a0, b0 = legendre_delay_system(order)
    ad, bd, *_ = scipy.signal.cont2discrete(
        (a0 / theta, b0[:, None] / theta, np.eye(order), np.zeros((order, 1))),
        dt=1.0,
        method="zoh",
    )
    assert a.shape == (order, order) and b.shape == (order,)
    np.testing.assert_allclose(a, ad, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b, bd[:, 0], rtol=1e-10, atol=1e-12)


def test_legendre_system_entries():
    # A[i,j] = (2i+1) * (-1 if i < j else (-1)^(i-j+1)), B[i] = (2i+1) (-1)^i.
    a0, b0 = legendre_delay_system(3)
    expected_a = np.array([[-1, -1, -1], [3, -3, -3], [-5, 5, -5]], dtype=float)
    np.testing.assert_array_equal(a0, expected_a)
    np.testing.assert_array_equal(b0, [1, -3, 5])


def test_lmu_matrices_euler_formula():
    order, theta = 5, 7.0
    a, b = lmu_matrices(order, theta, "euler")
    a0, b0 = legendre_delay_system(order)
    np.testing.assert_allclose(a, np.eye(order) + a0 / theta)
    np.testing.assert_allclose(b, b0 / theta)


# --- equivalence of the three forms ---------------------------------------------------


def numpy_lmu(x, a, b, kernel=None, bias=None, act=None, hidden=None, to_hidden=False):
    """Plain float64 loop of the LMU recurrence (the specification)."""
    x = x.astype(np.float64)
    u = x if kernel is None else x @ kernel + (0 if bias is None else bias)
    if act == "relu":
        u = np.maximum(u, 0)
    batch, length, d = u.shape
    m = np.zeros((batch, d, b.shape[0]))
    outs = []
    for t in range(length):
        m = m @ a.T + u[:, t, :, None] * b
        flat = m.reshape(batch, -1)
        if hidden is not None:
            w, hb = hidden
            inp = np.concatenate([flat, x[:, t]], -1) if to_hidden else flat
            flat = np.maximum(inp @ w + hb, 0)
        outs.append(flat)
    return np.stack(outs, 1)


def make_kwargs(memory_d, encoder, hidden, order=12, theta=20.0):
    kwargs = dict(memory_d=memory_d, order=order, theta=theta)
    if encoder:
        kwargs.update(use_bias=True, encoder_activation="relu")
    else:
        kwargs.update(kernel_initializer=None)
    if hidden:
        kwargs.update(
            hidden_cell=keras.layers.Dense(6, activation="relu"), input_to_hidden=True
        )
    return kwargs


@pytest.mark.parametrize("length", [128, 1000])
@pytest.mark.parametrize("memory_d", [1, 4])
@pytest.mark.parametrize(
    "encoder,hidden", [(False, False), (True, False), (True, True)]
)
def test_cell_parallel_and_numpy_agree(length, memory_d, encoder, hidden):
    features = 3 if encoder else memory_d
    x = RNG.normal(size=(2, length, features)).astype("float32")
    cell = LMUCell(**make_kwargs(memory_d, encoder, hidden))
    rnn = keras.layers.RNN(cell, return_sequences=True)
    y_rnn = keras.ops.convert_to_numpy(rnn(x))
    weights = rnn.get_weights()

    a, b = lmu_matrices(12, 20.0)
    kernel = bias = hidden_w = None
    if encoder:
        kernel, bias = weights[0], weights[1]
    if hidden:
        hidden_w = (weights[2], weights[3])
    y_np = numpy_lmu(
        x, a, b, kernel, bias, "relu" if encoder else None, hidden_w, hidden
    )
    assert y_rnn.shape == y_np.shape
    np.testing.assert_allclose(y_rnn, y_np, atol=1e-5, rtol=0)

    for mode in ("fft", "direct", "chunked", "auto"):
        par = LMUParallel(
            **make_kwargs(memory_d, encoder, hidden),
            return_sequences=True,
            conv_mode=mode,
        )
        par.build(x.shape)
        par.set_weights(weights)  # The weights of one load into the other.
        y_par = keras.ops.convert_to_numpy(par(x))
        np.testing.assert_allclose(y_par, y_np, atol=1e-5, rtol=0, err_msg=mode)
    last = LMUParallel(**make_kwargs(memory_d, encoder, hidden))
    last.build(x.shape)
    last.set_weights(weights)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(last(x)), y_np[:, -1], atol=1e-5, rtol=0
    )


def test_paper_size_order_256():
    # LMUFormer's token mixer: order 256, theta 128, scalar u = ReLU(w.x + b).
    x = RNG.normal(size=(2, 128, 8)).astype("float32")
    kw = dict(
        memory_d=1, order=256, theta=128.0, use_bias=True, encoder_activation="relu"
    )
    rnn = keras.layers.RNN(LMUCell(**kw), return_sequences=True)
    y_rnn = keras.ops.convert_to_numpy(rnn(x))
    a, b = lmu_matrices(256, 128.0)
    w = rnn.get_weights()
    y_np = numpy_lmu(x, a, b, w[0], w[1], "relu")
    np.testing.assert_allclose(y_rnn, y_np, atol=1e-5, rtol=0)
    for mode in ("fft", "direct", "chunked"):
        par = LMUParallel(**kw, return_sequences=True, conv_mode=mode)
        par.build(x.shape)
        par.set_weights(w)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(par(x)), y_np, atol=1e-5, rtol=0
        )


def test_rnn_hidden_cell():
    x = RNG.normal(size=(2, 20, 3)).astype("float32")
    kw = dict(memory_d=2, order=8, theta=5.0, input_to_hidden=True)
    rnn = keras.layers.RNN(
        LMUCell(**kw, hidden_cell=keras.layers.SimpleRNNCell(5)), return_sequences=True
    )
    y = keras.ops.convert_to_numpy(rnn(x))
    for return_sequences in (True, False):
        par = LMUParallel(
            **kw,
            hidden_cell=keras.layers.SimpleRNNCell(5),
            return_sequences=return_sequences,
        )
        par.build(x.shape)
        par.set_weights(rnn.get_weights())
        expected = y if return_sequences else y[:, -1]
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(par(x)), expected, atol=1e-5
        )


def test_any_sequence_length_unknown_at_build():
    layer = LMUParallel(1, 8, 10.0, return_sequences=True, use_bias=True)
    inp = keras.Input((None, 3))
    model = keras.Model(inp, layer(inp))
    a, b = lmu_matrices(8, 10.0)
    w = layer.get_weights()
    for length in (5, 37, 70):
        x = RNG.normal(size=(2, length, 3)).astype("float32")
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(model(x)),
            numpy_lmu(x, a, b, w[0], w[1]),
            atol=1e-5,
        )
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # A graph traced with an unknown time axis (the dynamic-length code path).
        for mode in ("fft", "direct", "chunked"):  # chunked: fft when T is unknown
            layer.conv_mode = mode
            fn = tf.function(
                lambda v: layer(v), input_signature=[tf.TensorSpec((None, None, 3))]
            )
            x = RNG.normal(size=(2, 23, 3)).astype("float32")
            np.testing.assert_allclose(
                fn(x).numpy(), numpy_lmu(x, a, b, w[0], w[1]), atol=1e-5
            )


@pytest.mark.parametrize("discretizer", ["zoh", "euler"])
def test_trainable_theta_matches_fixed(discretizer):
    x = RNG.normal(size=(2, 30, 3)).astype("float32")
    kw = dict(memory_d=1, order=6, theta=20.0, discretizer=discretizer)
    trainable = LMUParallel(**kw, trainable_theta=True, return_sequences=True)
    fixed = LMUParallel(**kw, return_sequences=True)
    trainable.build(x.shape)
    fixed.build(x.shape)
    fixed.set_weights(trainable.get_weights()[:1])
    assert len(trainable.trainable_weights) == 2  # encoder kernel + theta
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(trainable(x)),
        keras.ops.convert_to_numpy(fixed(x)),
        atol=2e-5,
    )
    cell = keras.layers.RNN(LMUCell(**kw, trainable_theta=True), return_sequences=True)
    cell.build(x.shape)
    cell.set_weights(trainable.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(cell(x)),
        keras.ops.convert_to_numpy(fixed(x)),
        atol=2e-5,
    )


# --- gradients ------------------------------------------------------------------------


@contextlib.contextmanager
def float64_enabled():
    if keras.backend.backend() == "jax":
        import jax

        previous = jax.config.jax_enable_x64
        jax.config.update("jax_enable_x64", True)
        try:
            yield
        finally:
            jax.config.update("jax_enable_x64", previous)
    else:
        yield


def _finite_difference(f, arrays, index, eps):
    base = [a.copy() for a in arrays]
    grad = np.zeros_like(base[index])
    it = np.nditer(base[index], flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        plus = [a.copy() for a in base]
        minus = [a.copy() for a in base]
        plus[index][i] += eps
        minus[index][i] -= eps
        grad[i] = (f(*plus) - f(*minus)) / (2 * eps)
    return grad


# Keras 3.15.1's torch backend computes ops.matmul of float64 tensors in float32
# (dtypes.result_type of torch dtypes), so Dense layers cannot run in float64 there:
# on torch the check runs in float32 with a coarser step and tolerance.
TORCH = keras.backend.backend() == "torch"
FD_DTYPE = "float32" if TORCH else "float64"
FD_EPS, FD_RTOL, FD_ATOL = (1e-3, 2e-2, 2e-3) if TORCH else (1e-6, 1e-5, 1e-7)


@pytest.mark.parametrize(
    "form,trainable_theta",
    [
        ("rnn", False),
        ("fft", False),
        ("direct", False),
        ("fft", True),
        ("chunked", False),
        ("chunked", True),
    ],
)
def test_gradients_match_finite_differences(form, trainable_theta):
    with float64_enabled():
        kw = dict(
            memory_d=2,
            order=4,
            theta=6.0,
            use_bias=True,
            encoder_activation="sigmoid",  # XLA-CPU tanh is float32-accurate only.
            trainable_theta=trainable_theta,
            hidden_cell=keras.layers.Dense(3, activation="sigmoid", dtype=FD_DTYPE),
            input_to_hidden=True,
            dtype=FD_DTYPE,
        )
        if form == "rnn":
            layer = keras.layers.RNN(
                LMUCell(**kw), return_sequences=True, dtype=FD_DTYPE
            )
        else:
            layer = LMUParallel(
                **kw, return_sequences=True, conv_mode=form, chunk_length=4
            )  # 9 steps: chunks of 3 (three chunks, two carried states).
        x = RNG.normal(size=(2, 9, 3)).astype(FD_DTYPE)
        layer.build(x.shape)
        weights = [np.asarray(w, dtype=FD_DTYPE) for w in layer.get_weights()]
        target = RNG.normal(size=(2, 9, 3)).astype(FD_DTYPE)

        def loss(xv, *ws):
            ws = [keras.ops.convert_to_tensor(w, dtype=FD_DTYPE) for w in ws]
            xv = keras.ops.convert_to_tensor(xv, dtype=FD_DTYPE)
            y, _ = layer.stateless_call(ws, [], xv)
            return keras.ops.sum(y * keras.ops.convert_to_tensor(target))

        def loss_np(xv, *ws):
            return float(keras.ops.convert_to_numpy(loss(xv, *ws)))

        analytic = grad_utils.grad(loss, x, *weights)
        arrays = [x, *weights]
        for index in range(len(arrays)):
            numeric = _finite_difference(loss_np, arrays, index, FD_EPS)
            np.testing.assert_allclose(
                analytic[index],
                numeric,
                rtol=FD_RTOL,
                atol=FD_ATOL,
                err_msg=f"input {index}",
            )


# --- configuration and serialization --------------------------------------------------


@pytest.mark.parametrize("cls", [LMUCell, LMUParallel])
def test_get_config_covers_every_argument(cls):
    params = [
        p
        for p in inspect.signature(cls.__init__).parameters
        if p not in ("self", "kwargs")
    ]
    layer = cls(
        memory_d=2,
        order=5,
        theta=9.0,
        hidden_cell=keras.layers.Dense(4),
        input_to_hidden=True,
        discretizer="euler",
        trainable_theta=True,
        kernel_initializer="he_normal",
        use_bias=True,
        bias_initializer="ones",
        encoder_activation="relu",
        kernel_regularizer="l2",
        bias_regularizer="l1",
        kernel_constraint="non_neg",
        bias_constraint="non_neg",
    )
    config = layer.get_config()
    missing = [p for p in params if p not in config]
    assert not missing, missing
    clone = cls.from_config(config)
    assert clone.get_config() == config


def test_keras_round_trip_and_other_backend(tmp_path):
    inp = keras.Input((None, 3))
    x = LMUParallel(
        2,
        8,
        12.0,
        use_bias=True,
        encoder_activation="relu",
        hidden_cell=keras.layers.Dense(5, activation="relu"),
        input_to_hidden=True,
        return_sequences=True,
    )(inp)
    out = keras.layers.RNN(LMUCell(1, 4, 6.0, hidden_cell=keras.layers.Dense(2)))(x)
    model = keras.Model(inp, out)
    data = RNG.normal(size=(2, 16, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(data))
    path = tmp_path / "lmu.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode=True
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(data)), expected, atol=1e-6
    )
    assert_loads_in_other_backend(path, data, expected, atol=1e-5)


# --- learning -------------------------------------------------------------------------


def test_fit_delay_task():
    """Learn y_t = u_{t-delay}: the LMU's reason to exist."""
    delay, length = 10, 64
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(256, length + 16))
    kernel = np.ones(8) / 8.0  # Band-limit the input (the LMU's assumption).
    u = np.stack([np.convolve(r, kernel, "valid") for r in raw])
    u = np.stack([np.convolve(r, kernel, "valid")[:length] for r in u])[..., None]
    u = (u / u.std()).astype("float32")
    y = np.zeros_like(u)
    y[:, delay:] = u[:, :-delay]
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((length, 1)),
            LMUParallel(
                1, 16, float(delay), kernel_initializer=None, return_sequences=True
            ),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(0.03), "mse")
    history = model.fit(u, y, epochs=40, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.05, history.history["loss"][-1]


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(memory_d=1, order=0, theta=5.0), "order=0"),
        (dict(memory_d=1, order=4, theta=0.0), "theta=0.0"),
        (dict(memory_d=1, order=4, theta=-2.0), "theta=-2.0"),
        (dict(memory_d=0, order=4, theta=5.0), "memory_d=0"),
        (dict(memory_d=1, order=4, theta=5.0, discretizer="rk4"), "discretizer='rk4'"),
        (dict(memory_d=1, order=4, theta=5.0, conv_mode="fast"), "conv_mode='fast'"),
        (dict(memory_d=1, order=4, theta=5.0, chunk_length=0), "chunk_length=0"),
        (
            dict(memory_d=1, order=4, theta=5.0, input_to_hidden=True),
            "input_to_hidden",
        ),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LMUParallel(**kwargs)
    if "conv_mode" not in kwargs and "chunk_length" not in kwargs:
        with pytest.raises(ValueError, match=match):
            LMUCell(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\(batch, time, features\)"):
        LMUParallel(1, 4, 5.0)(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="memory_d=2"):
        LMUParallel(2, 4, 5.0, kernel_initializer=None)(np.zeros((2, 5, 3), "float32"))
    with pytest.raises(ValueError, match="memory_d=2"):
        keras.layers.RNN(LMUCell(2, 4, 5.0, kernel_initializer=None))(
            np.zeros((2, 5, 3), "float32")
        )


def _numpy_memory(u, h):
    """``m[b, t, d, :] = sum_{k<=t} h[t - k] u[b, k, d]`` by loops."""
    batch, length, d = u.shape
    m = np.zeros((batch, length, d, h.shape[1]))
    for t in range(length):
        for k in range(t + 1):
            m[:, t] += u[:, k, :, None] * h[t - k][None, None, :]
    return m


@pytest.mark.parametrize("length", [1, 5, 40])
@pytest.mark.parametrize("memory_d", [1, 3])
def test_memory_forms_and_projected_forms_agree(length, memory_d):
    from lmuformer_keras.layers import lmu_conv_direct, lmu_conv_fft, lmu_response
    from lmuformer_keras.lmu import impulse_response

    u = RNG.normal(size=(2, length, memory_d)).astype("float32")
    a, b = lmu_matrices(8, 20.0)
    h = impulse_response(a, b, length).astype("float32")  # (T, 8)
    w = RNG.normal(size=(memory_d * 8, 5)).astype("float32")
    m_ref = _numpy_memory(u.astype("float64"), h.astype("float64"))
    y_ref = m_ref.reshape(2, length, -1) @ w
    for name, conv in [
        ("direct", lmu_conv_direct.causal_conv_direct),
        ("fft", lmu_conv_fft.causal_conv_fft),
        ("convolution", lmu_conv_direct.causal_conv_convolution),
    ]:
        m = keras.ops.convert_to_numpy(conv(u, h))
        np.testing.assert_allclose(m, m_ref, atol=1e-5, rtol=0, err_msg=name)
    g = lmu_response.projected_impulse_response(h, w, memory_d)
    g_rev = lmu_response.projected_impulse_response(h[::-1].copy(), w, memory_d)
    for name, y in [
        ("direct", lmu_conv_direct.projected_causal_conv_direct(u, g)),
        ("fft", lmu_conv_fft.projected_causal_conv_fft(u, g)),
        ("convolution", lmu_conv_direct.projected_causal_conv_convolution(u, g_rev)),
    ]:
        y = keras.ops.convert_to_numpy(y)
        np.testing.assert_allclose(y, y_ref, atol=1e-4, rtol=1e-5, err_msg=name)


def test_direct_runs_as_convolution_only_at_inference_where_faster():
    from lmuformer_keras.layers.lmu_memory import resolve_conv_mode

    for backend in ("tensorflow", "torch"):
        assert resolve_conv_mode("direct", 128, backend, training=False) == (
            "convolution"
        )
        assert resolve_conv_mode(
            "auto", 128, backend, training=None, projected=True
        ) == ("convolution")
        assert resolve_conv_mode("direct", 128, backend, training=True) == "direct"
        assert resolve_conv_mode("direct", None, backend) == "direct"  # T unknown
        assert resolve_conv_mode("auto", 100_000, backend, projected=True) == "fft"
    assert resolve_conv_mode("direct", 128, "jax", training=False) == "direct"
    assert resolve_conv_mode("fft", 128, "torch", training=False) == "fft"


@pytest.mark.parametrize("order,units", [(16, 12), (2, 40)])  # folded; as written
@pytest.mark.parametrize("conv_mode", ["direct", "fft", "chunked"])
@pytest.mark.parametrize("training", [False, True])
def test_projected_memory_is_memory_times_kernel(order, units, conv_mode, training):
    layer = LMUParallel(
        memory_d=2,
        order=order,
        theta=10.0,
        kernel_initializer=None,
        return_sequences=True,
        conv_mode=conv_mode,
    )
    u = RNG.normal(size=(3, 24, 2)).astype("float32")
    layer.build(u.shape)
    w = RNG.normal(size=(2 * order, units)).astype("float32")
    expected = keras.ops.convert_to_numpy(layer.memory(u, training)) @ w
    got = keras.ops.convert_to_numpy(layer.projected_memory(u, w, training))
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-5)


# --- the chunked form -----------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 7, 32, 33, 100])
@pytest.mark.parametrize("chunk_length", [1, 4, 32])
@pytest.mark.parametrize("memory_d,hidden", [(1, False), (3, False), (2, True)])
def test_chunked_matches_numpy_recurrence(length, chunk_length, memory_d, hidden):
    # T a multiple of the chunk length and not (T = 7, 33, 100 with 4 or 32; the
    # chunks are spread to ceil(T / ceil(T / C)) steps), one chunk (T <= C) and
    # one step per chunk (C = 1: the chunk-level recurrence is the recurrence).
    kw = make_kwargs(memory_d, True, hidden)
    x = RNG.normal(size=(2, length, 3)).astype("float32")
    layer = LMUParallel(
        **kw, return_sequences=True, conv_mode="chunked", chunk_length=chunk_length
    )
    layer.build(x.shape)
    w = layer.get_weights()
    a, b = lmu_matrices(12, 20.0)
    y_np = numpy_lmu(
        x, a, b, w[0], w[1], "relu", (w[2], w[3]) if hidden else None, hidden
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)), y_np, atol=1e-5, rtol=0
    )
    trainable = LMUParallel(
        **make_kwargs(memory_d, True, hidden),
        trainable_theta=True,
        return_sequences=True,
        conv_mode="chunked",
        chunk_length=chunk_length,
    )
    trainable.build(x.shape)
    trainable.set_weights(w[:2] + [np.array(20.0, "float32")] + w[2:])
    # In-graph float32 discretization (as for the other forms with trainable theta).
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(trainable(x)), y_np, atol=1e-4, rtol=0
    )


def test_chunk_operators_in_graph_match_numpy():
    from lmuformer_keras.layers import lmu_conv_chunked

    a, b = lmu_matrices(6, 9.0)
    for chunk in (1, 3, 8):
        expected = lmu_conv_chunked.chunk_operators_np(a, b, chunk)
        got = lmu_conv_chunked.chunk_operators(
            keras.ops.convert_to_tensor(a, "float32"),
            keras.ops.convert_to_tensor(b, "float32"),
            chunk,
        )
        for e, g in zip(expected, got, strict=True):
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(g), e, atol=1e-5, rtol=1e-5
            )


def test_chunk_length_spreads_padding():
    from lmuformer_keras.layers.lmu_memory import chunk_length_for

    assert chunk_length_for(784, 32) == 32  # 25 chunks, 16 steps of padding
    assert chunk_length_for(100, 32) == 25  # 4 chunks, none
    assert chunk_length_for(20, 32) == 20  # one chunk
    assert chunk_length_for(4096, 64) == 64
    for length in range(1, 200):
        for target in (1, 5, 32):
            c = chunk_length_for(length, target)
            chunks = -(-length // c)
            assert c <= max(target, 1) and chunks * c - length < chunks


@pytest.mark.parametrize("length", [1, 9, 40])
@pytest.mark.parametrize("memory_d", [1, 3])
def test_projected_chunked_is_chunked_times_kernel(length, memory_d):
    from lmuformer_keras.layers import lmu_conv_chunked

    a, b = lmu_matrices(8, 20.0)
    u = RNG.normal(size=(2, length, memory_d)).astype("float32")
    w = RNG.normal(size=(memory_d * 8, 5)).astype("float32")
    for chunk in (1, 4, 16):
        ops_ = [
            o.astype("float32")
            for o in lmu_conv_chunked.chunk_operators_np(a, b, chunk)
        ]
        m = keras.ops.convert_to_numpy(lmu_conv_chunked.causal_conv_chunked(u, *ops_))
        y = lmu_conv_chunked.projected_causal_conv_chunked(u, *ops_, w)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(y),
            m.reshape(2, length, -1) @ w,
            atol=1e-4,
            rtol=1e-5,
            err_msg=f"chunk {chunk}",
        )


@pytest.mark.parametrize("memory_d,to_hidden", [(1, False), (2, True)])
def test_dense_hidden_folded_into_chunked_memory(memory_d, to_hidden, monkeypatch):
    # Batch 64 x 40 steps, order 4, chunks of 4: folding W_m into the chunk operator
    # is fewer multiply-adds, so the layer takes that path (counted below).
    from lmuformer_keras.layers import lmu_conv_chunked

    calls = []
    original = lmu_conv_chunked.projected_causal_conv_chunked

    def counted(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(lmu_conv_chunked, "projected_causal_conv_chunked", counted)
    kw = dict(
        memory_d=memory_d,
        order=4,
        theta=9.0,
        use_bias=True,
        encoder_activation="relu",
        hidden_cell=keras.layers.Dense(3, activation="relu"),
        input_to_hidden=to_hidden,
    )
    x = RNG.normal(size=(64, 40, 3)).astype("float32")
    layer = LMUParallel(
        **kw, return_sequences=True, conv_mode="chunked", chunk_length=4
    )
    layer.build(x.shape)
    w = layer.get_weights()
    a, b = lmu_matrices(4, 9.0)
    expected = numpy_lmu(x, a, b, w[0], w[1], "relu", (w[2], w[3]), to_hidden)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)), expected, atol=1e-5, rtol=0
    )
    assert calls, "the Dense hidden layer was not folded"
