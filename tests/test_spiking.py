"""Tests of lmuformer_keras.spiking and the SpikeActivation layer (all backends)."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from lmuformer_keras.layers.spike_activation import SpikeActivation
from lmuformer_keras.spiking import (
    SURROGATES,
    heaviside,
    spike,
    surrogate_grad,
    validate_spike_args,
)

from grad_utils import grad

RNG = np.random.default_rng(0)


def np_surrogate(x, surrogate, alpha=4.0, clip_value=1.0):
    """The surrogate derivatives, written directly from their definitions."""
    x = np.asarray(x, np.float64)
    if surrogate == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-alpha * x))
        return alpha * s * (1.0 - s)
    if surrogate == "atan":
        return (alpha / 2.0) / (1.0 + (math.pi / 2.0 * alpha * x) ** 2)
    if surrogate == "ste":
        return (np.abs(x) <= clip_value).astype(np.float64)
    raise AssertionError(surrogate)


def sample_inputs():
    x = RNG.normal(scale=1.5, size=(4, 37)).astype("float32")
    # Exact zeros (Heaviside(0) = 1), the STE window edges and large values.
    x[0, :6] = [0.0, -0.0, 1.0, -1.0, 30.0, -30.0]
    return x


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_forward_is_exact_heaviside(surrogate):
    x = sample_inputs()
    y = ops.convert_to_numpy(spike(x, surrogate=surrogate))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, (x >= 0).astype(np.float32))
    np.testing.assert_array_equal(ops.convert_to_numpy(heaviside(x)), y)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize(
    "surrogate,alpha,clip_value",
    [
        ("sigmoid", 4.0, 1.0),
        ("sigmoid", 2.5, 1.0),
        ("atan", 4.0, 1.0),
        ("atan", 2.0, 1.0),
        ("ste", 4.0, 1.0),
        ("ste", 4.0, 0.5),
    ],
)
def test_gradient_is_the_surrogate(surrogate, alpha, clip_value, jit):
    x = sample_inputs()
    w = RNG.normal(size=x.shape).astype("float32")

    def f(x, w):
        return spike(x, surrogate, alpha, clip_value) * w

    gx, gw = grad(f, x, w, jit=jit)
    expected = w * np_surrogate(x, surrogate, alpha, clip_value)
    np.testing.assert_allclose(gx, expected, rtol=1e-5, atol=1e-6)
    # The weights see the forward value, which is exactly the step.
    np.testing.assert_array_equal(gw, (x >= 0).astype(np.float32))
    # surrogate_grad is the same derivative, evaluated directly.
    sg = ops.convert_to_numpy(surrogate_grad(x, surrogate, alpha, clip_value))
    expected = np_surrogate(x, surrogate, alpha, clip_value)
    np.testing.assert_allclose(sg, expected, rtol=1e-5, atol=1e-7)


def test_ste_window_edges_pass_gradient():
    x = np.array([-1.5, -1.0, -0.25, 0.0, 0.25, 1.0, 1.5], np.float32)
    (gx,) = grad(lambda x: spike(x, "ste", clip_value=1.0), x)
    np.testing.assert_array_equal(gx, [0, 1, 1, 1, 1, 1, 0])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"surrogate": "relu"}, "surrogate='relu'"),
        ({"surrogate": None}, "surrogate=None"),
        ({"alpha": 0.0}, "alpha=0.0"),
        ({"alpha": -1}, "alpha=-1"),
        ({"clip_value": 0.0}, "clip_value=0.0"),
        ({"clip_value": -2.0}, "clip_value=-2.0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        spike(np.zeros(3, np.float32), **kwargs)
    args = {"surrogate": "sigmoid", "alpha": 4.0, "clip_value": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        validate_spike_args(**args)
    with pytest.raises(ValueError, match="SpikeActivation") as info:
        SpikeActivation(**kwargs)
    assert match in str(info.value)


def test_bad_threshold():
    with pytest.raises(ValueError, match="threshold='a'"):
        SpikeActivation(threshold="a")
    with pytest.raises(ValueError, match="threshold=nan"):
        SpikeActivation(threshold=float("nan"))


def test_spike_activation_layer():
    x = sample_inputs()
    layer = SpikeActivation(threshold=0.5, surrogate="atan", alpha=3.0)
    y = ops.convert_to_numpy(layer(x))
    np.testing.assert_array_equal(y, (x - 0.5 >= 0).astype(np.float32))
    assert layer.compute_output_shape(x.shape) == x.shape
    (gx,) = grad(lambda x: layer(x), x)
    np.testing.assert_allclose(gx, np_surrogate(x - 0.5, "atan", 3.0), rtol=1e-5)


def test_spike_activation_config_and_save(tmp_path):
    layer = SpikeActivation(threshold=0.25, surrogate="ste", alpha=2.0, clip_value=0.5)
    config = layer.get_config()
    for key, value in {
        "threshold": 0.25,
        "surrogate": "ste",
        "alpha": 2.0,
        "clip_value": 0.5,
    }.items():
        assert config[key] == value
    clone = SpikeActivation.from_config(config)
    assert clone.get_config() == config

    inputs = keras.Input((5,))
    outputs = SpikeActivation(threshold=0.25)(keras.layers.Dense(5)(inputs))
    model = keras.Model(inputs, outputs)
    path = tmp_path / "spike.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = sample_inputs()[:, :5]
    np.testing.assert_array_equal(
        ops.convert_to_numpy(loaded(x)), ops.convert_to_numpy(model(x))
    )
