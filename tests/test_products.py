"""Matrix products: ``backend_utils.matmul`` and the library's Dense and Conv1D.

The library's ``Dense`` and ``Conv1D`` are Keras' layers, whose bfloat16 products on
JAX accumulate in float32 (and whose Conv1D runs as one matrix product at bfloat16
inference there). These tests pin them to Keras' layers on every backend.
"""

from __future__ import annotations

import keras
import ml_dtypes
import numpy as np
import pytest

from lmuformer_keras import backend_utils
from lmuformer_keras.layers import Conv1D, Dense

from grad_utils import grad

convert = keras.ops.convert_to_numpy


def _bfloat16_values(shape, seed):
    """float32 values that bfloat16 holds exactly."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape).astype(ml_dtypes.bfloat16).astype("float32")


def _round_to_bfloat16(x):
    return np.asarray(x, "float32").astype(ml_dtypes.bfloat16).astype("float32")


def test_matmul_is_keras_matmul_in_float32():
    x, w = _bfloat16_values((3, 5, 7), 0), _bfloat16_values((7, 4), 1)
    np.testing.assert_array_equal(
        convert(backend_utils.matmul(keras.ops.convert_to_tensor(x), w)),
        convert(keras.ops.matmul(x, w)),
    )


def test_matmul_bfloat16_rounds_once():
    """On its own path (JAX) a long bfloat16 product equals the float32 product
    rounded once to bfloat16 (a bfloat16 accumulator would be off by many bfloat16
    steps at k = 2048). Elsewhere it is the backend's own product, bit for bit: how
    that accumulates is the backend kernel's (TensorFlow's oneDNN kernel accumulates
    in float32, its Eigen kernel, used where oneDNN is off, in bfloat16)."""
    x, w = _bfloat16_values((16, 2048), 2), _bfloat16_values((2048, 8), 3)
    xb, wb = keras.ops.cast(x, "bfloat16"), keras.ops.cast(w, "bfloat16")
    y = backend_utils.matmul(xb, wb)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    own_path = backend_utils.matmul_accumulates_in_float32(y.dtype, y.dtype)
    assert own_path == (keras.backend.backend() == "jax")
    got = convert(keras.ops.cast(y, "float32"))
    if not own_path:
        np.testing.assert_array_equal(
            got, convert(keras.ops.cast(keras.ops.matmul(xb, wb), "float32"))
        )
        return
    exact = x.astype("float64") @ w.astype("float64")
    # One rounding to bfloat16 (8 significant bits), plus float32 accumulation.
    np.testing.assert_allclose(got, exact, rtol=2**-8, atol=1e-3)


def test_matmul_bfloat16_gradients():
    """Through the float32-accumulation path's own VJP (JAX), or the backend's."""
    x, w = _bfloat16_values((2, 6, 64), 4), _bfloat16_values((64, 5), 5)
    c = _bfloat16_values((2, 6, 5), 6)

    def fn(x, w):
        y = backend_utils.matmul(
            keras.ops.cast(x, "bfloat16"), keras.ops.cast(w, "bfloat16")
        )
        return keras.ops.multiply(keras.ops.cast(y, "float32"), c)

    g_x, g_w = grad(fn, x, w)
    g_w_exact = x.reshape(-1, 64).T @ c.reshape(-1, 5)
    for got, exact in ((g_x, c @ w.T), (g_w, g_w_exact)):
        np.testing.assert_allclose(
            got, _round_to_bfloat16(exact), rtol=2**-7, atol=2e-2
        )


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_dense_is_keras_dense(policy):
    x = _bfloat16_values((4, 9, 12), 7)
    ours = Dense(6, activation="relu", dtype=policy)
    keras_dense = keras.layers.Dense(6, activation="relu", dtype=policy)
    ours.build((None, None, 12))
    keras_dense.build((None, None, 12))
    keras_dense.set_weights(ours.get_weights())
    a, b = ours(x), keras_dense(x)
    assert a.dtype == b.dtype
    a, b = convert(keras.ops.cast(a, "float32")), convert(keras.ops.cast(b, "float32"))
    if policy == "float32":
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=2**-7, atol=2e-2)
    restored = Dense.from_config(ours.get_config())
    assert restored.get_config() == ours.get_config()


def test_dense_with_lora_runs_keras_dense():
    x = _bfloat16_values((5, 12), 8)
    ours, keras_dense = Dense(6), keras.layers.Dense(6)
    for layer in (ours, keras_dense):
        layer.build((None, 12))
    keras_dense.set_weights(ours.get_weights())
    for layer in (ours, keras_dense):
        layer.enable_lora(2, b_initializer="ones")
    keras_dense.set_weights(ours.get_weights())
    np.testing.assert_array_equal(convert(ours(x)), convert(keras_dense(x)))
    assert np.max(np.abs(convert(ours(x)) - x @ convert(ours._kernel))) > 0.1


CONV_CASES = [
    (3, "causal", True, None),
    (3, "same", False, "relu"),
    (4, "same", True, None),
    (2, "valid", True, "relu"),
    (1, "valid", False, None),
]


@pytest.mark.parametrize("kernel_size,padding,use_bias,activation", CONV_CASES)
def test_conv1d_as_one_product_equals_keras(
    monkeypatch, kernel_size, padding, use_bias, activation
):
    """The layer's own convolution (``backend_utils.conv1d``: copy-free channels-last
    on torch) and the one-product form (forced here on every backend, in float32)
    compute Keras' convolution; training keeps the convolution."""
    x = _bfloat16_values((2, 11, 5), 9)
    ours = Conv1D(
        4, kernel_size, padding=padding, use_bias=use_bias, activation=activation
    )
    reference = keras.layers.Conv1D(
        4, kernel_size, padding=padding, use_bias=use_bias, activation=activation
    )
    ours.build((None, None, 5))
    reference.build((None, None, 5))
    rng = np.random.default_rng(10)
    weights = [rng.normal(size=w.shape).astype("float32") for w in ours.weights]
    ours.set_weights(weights)
    reference.set_weights(weights)
    expected = convert(reference(x))
    for training in (False, True):
        np.testing.assert_allclose(
            convert(ours(x, training=training)), expected, rtol=1e-5, atol=1e-5
        )
    monkeypatch.setattr(Conv1D, "_runs_as_products", lambda self, x: True)
    for training in (False, True):
        np.testing.assert_allclose(
            convert(ours(x, training=training)), expected, rtol=1e-5, atol=1e-5
        )


def test_conv1d_one_product_only_at_jax_bfloat16():
    x = keras.ops.cast(_bfloat16_values((2, 7, 3), 11), "bfloat16")
    fast = Conv1D(4, 3, padding="causal", dtype="mixed_bfloat16")
    strided = Conv1D(4, 3, strides=2, dtype="mixed_bfloat16")
    single = Conv1D(4, 3, padding="causal")
    for layer in (fast, strided, single):
        layer.build((None, None, 3))
    assert fast._runs_as_products(x) == (keras.backend.backend() == "jax")
    assert not strided._runs_as_products(x)
    assert not single._runs_as_products(keras.ops.cast(x, "float32"))
    # At bfloat16 inference (the product form on JAX) it is still Keras' conv.
    reference = keras.layers.Conv1D(4, 3, padding="causal", dtype="mixed_bfloat16")
    reference.build((None, None, 3))
    reference.set_weights(fast.get_weights())
    np.testing.assert_allclose(
        convert(keras.ops.cast(fast(x), "float32")),
        convert(keras.ops.cast(reference(x), "float32")),
        rtol=2**-7,
        atol=2e-2,
    )


WINDOW_CASES = [(3, 1, 1), (3, 2, 0), (1, 0, 0), (5, 0, 0), (4, 3, 1)]


@pytest.mark.parametrize("k,pad_left,pad_right", WINDOW_CASES)
def test_conv1d_as_window_product_is_conv1d(k, pad_left, pad_right):
    x, kernel = _bfloat16_values((2, 9, 5), 20), _bfloat16_values((k, 5, 4), 21)
    np.testing.assert_allclose(
        convert(backend_utils.conv1d_as_window_product(x, kernel, pad_left, pad_right)),
        convert(backend_utils.conv1d(x, kernel, pad_left, pad_right)),
        rtol=1e-5,
        atol=1e-5,
    )


def _conv_exact(x, kernel, pad_left, pad_right):
    """float64 NumPy: y_t = sum_j x_pad[t + j] @ W[j]."""
    x = np.pad(np.float64(x), ((0, 0), (pad_left, pad_right), (0, 0)))
    frames = x.shape[1] - kernel.shape[0] + 1
    return sum(x[:, j : j + frames] @ kernel[j] for j in range(kernel.shape[0]))


@pytest.mark.parametrize("k,pad_left,pad_right", WINDOW_CASES)
def test_conv1d_as_window_product_bfloat16_values_and_gradients(k, pad_left, pad_right):
    """bfloat16 (on JAX its float32-accumulation path and custom VJP): the value and
    both gradients are the exact ones rounded to bfloat16, within a rounding or two."""
    x, kernel = _bfloat16_values((2, 9, 64), 22), _bfloat16_values((k, 64, 6), 23)
    frames = 9 + pad_left + pad_right - k + 1
    c = _bfloat16_values((2, frames, 6), 24)

    def fn(x, kernel):
        y = backend_utils.conv1d_as_window_product(
            keras.ops.cast(x, "bfloat16"),
            keras.ops.cast(kernel, "bfloat16"),
            pad_left,
            pad_right,
        )
        return keras.ops.multiply(keras.ops.cast(y, "float32"), c)

    y = backend_utils.conv1d_as_window_product(
        keras.ops.cast(x, "bfloat16"),
        keras.ops.cast(kernel, "bfloat16"),
        pad_left,
        pad_right,
    )
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    np.testing.assert_allclose(
        convert(keras.ops.cast(y, "float32")),
        _round_to_bfloat16(_conv_exact(x, kernel, pad_left, pad_right)),
        rtol=2**-7,
        atol=2e-2,
    )
    g_x, g_kernel = grad(fn, x, kernel)
    # y = sum_j x_pad[t + j] W[j]: dx_pad[s] = sum_j c[s - j] W[j]^T, dW[j] = sum_t
    # x_pad[t + j]^T c[t]; dx is dx_pad without the padding.
    c_pad = np.pad(np.float64(c), ((0, 0), (k - 1, k - 1), (0, 0)))
    flipped = kernel[::-1].transpose(0, 2, 1)
    g_x_pad = _conv_exact(c_pad, flipped, 0, 0)
    g_x_exact = g_x_pad[:, pad_left : pad_left + 9]
    x_pad = np.pad(np.float64(x), ((0, 0), (pad_left, pad_right), (0, 0)))
    g_kernel_exact = np.stack(
        [
            np.einsum("bti,bto->io", x_pad[:, j : j + frames], np.float64(c))
            for j in range(k)
        ]
    )
    for got, exact in ((g_x, g_x_exact), (g_kernel, g_kernel_exact)):
        np.testing.assert_allclose(
            got, _round_to_bfloat16(exact), rtol=2**-7, atol=5e-2
        )


def test_conv1d_as_window_product_names_too_few_frames():
    with pytest.raises(ValueError, match=r"2 frames padded by \(0, 0\).*3 taps"):
        backend_utils.conv1d_as_window_product(
            np.zeros((1, 2, 3), "float32"), np.zeros((3, 3, 4), "float32")
        )


def test_conv1d_trains_through_window_product_at_jax_bfloat16(monkeypatch):
    """JAX, bfloat16 training: the layer's convolution is the window product (and it
    is still Keras' convolution); elsewhere, and in float32, it never is."""
    calls = []
    window_product = backend_utils.conv1d_as_window_product

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return window_product(*args, **kwargs)

    monkeypatch.setattr(backend_utils, "conv1d_as_window_product", spy)
    x = keras.ops.cast(_bfloat16_values((2, 7, 3), 25), "bfloat16")
    fast = Conv1D(4, 3, padding="same", use_bias=True, dtype="mixed_bfloat16")
    single = Conv1D(4, 3, padding="same", use_bias=True)
    for layer in (fast, single):
        layer.build((None, None, 3))
    reference = keras.layers.Conv1D(4, 3, padding="same", dtype="mixed_bfloat16")
    reference.build((None, None, 3))
    reference.set_weights(fast.get_weights())
    np.testing.assert_allclose(
        convert(keras.ops.cast(fast(x, training=True), "float32")),
        convert(keras.ops.cast(reference(x, training=True), "float32")),
        rtol=2**-7,
        atol=2e-2,
    )
    single(keras.ops.cast(x, "float32"), training=True)
    assert calls == ([(2, 7, 3)] if keras.backend.backend() == "jax" else [])


@keras.saving.register_keras_serializable(package="lmuformer_keras_tests")
class _ConvList(keras.layers.Layer):
    """Two Conv1Ds in a list, as the patch embedding keeps them."""

    def __init__(self, library: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.library = library
        cls = Conv1D if library else keras.layers.Conv1D
        self.convs = [cls(3, 3, padding="causal", name=f"conv{i}") for i in range(2)]

    def build(self, input_shape):
        for conv in self.convs:
            conv.build(input_shape)
            input_shape = (*input_shape[:-1], 3)

    def call(self, x):
        for conv in self.convs:
            x = conv(x)
        return x

    def get_config(self):
        return {**super().get_config(), "library": self.library}


def test_loads_models_saved_with_keras_conv1d(tmp_path):
    """Saved before the blocks used this layer: the weights still load."""
    old = keras.Sequential([keras.Input((None, 3)), _ConvList(library=False)])
    rng = np.random.default_rng(12)
    values = [rng.normal(size=w.shape).astype("float32") for w in old.weights]
    old.set_weights(values)
    path = str(tmp_path / "old.keras")
    old.save(path)
    new = keras.Sequential([keras.Input((None, 3)), _ConvList(library=True)])
    new.load_weights(path)
    assert all(isinstance(conv, Conv1D) for conv in new.layers[0].convs)
    for a, b in zip(new.weights, values, strict=True):
        np.testing.assert_array_equal(convert(a), b)
