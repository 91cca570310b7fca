"""lmuformer_keras.layers.BatchNormalization equals Keras' (all backends)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from lmuformer_keras import backend_utils
from lmuformer_keras.layers.batch_normalization import BatchNormalization

from grad_utils import grad

# (input shape, channel axis): per-frame rows (fused kernel on TensorFlow and torch),
# and a rank-3 channels-first input (the Keras ops on every backend).
LAYOUTS = {"rows": ((96, 6), -1), "channels_first": ((4, 6, 24), 1)}


def _pair(shape, axis, seed=0):
    """Keras' BatchNormalization and the library's, with equal weights."""
    rng = np.random.default_rng(seed)
    channels = shape[axis]
    build_shape = tuple(
        None if i != axis % len(shape) else s for i, s in enumerate(shape)
    )
    layers = []
    for cls in (keras.layers.BatchNormalization, BatchNormalization):
        layer = cls(axis=axis, momentum=0.9, epsilon=1e-5)
        layer.build(build_shape)
        layers.append(layer)
    values = [
        rng.normal(size=channels).astype("float32"),  # gamma
        rng.normal(size=channels).astype("float32"),  # beta
        rng.normal(size=channels).astype("float32"),  # moving mean
        rng.uniform(0.5, 2.0, size=channels).astype("float32"),  # moving variance
    ]
    for layer in layers:
        layer.set_weights(values)
    return layers


def _inputs(shape, seed=1):
    rng = np.random.default_rng(seed)
    return (3.0 * rng.normal(size=shape) + 1.5).astype("float32")


def test_fused_kernel_used_where_the_backend_has_one():
    x = keras.ops.convert_to_tensor(_inputs((8, 3)))
    fused = backend_utils.fused_batch_norm_training(x, None, None, 1e-5)
    assert (fused is None) == (keras.backend.backend() == "jax")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_training_outputs_statistics_and_input_gradient(layout):
    shape, axis = LAYOUTS[layout]
    reference, fused = _pair(shape, axis)
    x = _inputs(shape)
    convert = keras.ops.convert_to_numpy
    for _ in range(2):  # the moving statistics of two updates
        np.testing.assert_allclose(
            convert(fused(x, training=True)),
            convert(reference(x, training=True)),
            atol=2e-5,
        )
    for a, b in zip(fused.weights, reference.weights, strict=True):
        np.testing.assert_allclose(convert(a), convert(b), rtol=1e-5, atol=1e-6)
    w = np.random.default_rng(2).normal(size=shape).astype("float32")
    (g_fused,) = grad(lambda t: keras.ops.multiply(fused(t, training=True), w), x)
    (g_reference,) = grad(
        lambda t: keras.ops.multiply(reference(t, training=True), w), x
    )
    assert np.abs(g_reference).max() > 1e-3
    np.testing.assert_allclose(g_fused, g_reference, atol=1e-5)


def test_inference_is_keras_batch_normalization():
    reference, fused = _pair((96, 6), -1)
    x = _inputs((96, 6))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(fused(x, training=False)),
        keras.ops.convert_to_numpy(reference(x, training=False)),
    )


def test_weight_gradients_through_fit():
    convert = keras.ops.convert_to_numpy
    models = []
    for layer in _pair((64, 5), -1):
        model = keras.Sequential([keras.Input((5,)), layer])
        model.compile(keras.optimizers.SGD(0.1), "mse")
        models.append(model)
    x = _inputs((64, 5))
    y = np.random.default_rng(3).normal(size=(64, 5)).astype("float32")
    losses = [[float(m.train_on_batch(x, y)) for _ in range(3)] for m in models]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    assert losses[0][-1] < losses[0][0]
    for a, b in zip(models[0].weights, models[1].weights, strict=True):
        np.testing.assert_allclose(convert(a), convert(b), rtol=1e-5, atol=1e-6)


def test_mixed_bfloat16():
    reference, fused = _pair((96, 6), -1)
    policy = keras.mixed_precision.DTypePolicy("mixed_bfloat16")
    for layer in (reference, fused):
        layer.dtype_policy = policy
    x = keras.ops.cast(_inputs((96, 6)), "bfloat16")
    out = fused(x, training=True)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.cast(out, "float32")),
        keras.ops.convert_to_numpy(
            keras.ops.cast(reference(x, training=True), "float32")
        ),
        atol=0.05,
    )


@pytest.mark.parametrize("center, scale", [(True, True), (False, False)])
def test_mixed_bfloat16_inference(center, scale):
    """bfloat16 inference (the backend's fused kernel on TensorFlow and torch) equals
    Keras' layer to bfloat16 rounding, with and without gamma and beta."""
    rng = np.random.default_rng(3)
    layers = []
    for cls in (keras.layers.BatchNormalization, BatchNormalization):
        layer = cls(epsilon=1e-5, center=center, scale=scale, dtype="mixed_bfloat16")
        layer.build((None, 6))
        layers.append(layer)
    stats = [rng.normal(size=6), rng.uniform(0.5, 2.0, size=6)]
    values = [rng.normal(size=6) for _ in range(center + scale)] + stats
    for layer in layers:
        layer.set_weights([np.asarray(v, "float32") for v in values])
    x = keras.ops.cast(_inputs((96, 6)) * 3, "bfloat16")
    reference, fused = (layer(x, training=False) for layer in layers)
    assert keras.backend.standardize_dtype(fused.dtype) == "bfloat16"
    expected = keras.ops.convert_to_numpy(keras.ops.cast(reference, "float32"))
    got = keras.ops.convert_to_numpy(keras.ops.cast(fused, "float32"))
    # One bfloat16 rounding of the output apart (8 significant bits).
    np.testing.assert_allclose(got, expected, rtol=2**-7, atol=1e-2)
    assert np.abs(expected).max() > 1.0
    used = backend_utils.fused_batch_norm_inference(
        x,
        *(keras.ops.convert_to_tensor(v, "float32") for v in stats),
        None,
        None,
        1e-5,
    )
    assert (used is None) == (keras.backend.backend() == "jax")


def test_serialization_round_trip():
    layer = BatchNormalization(axis=1, momentum=0.8, epsilon=1e-4, name="bn")
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert type(restored) is BatchNormalization
    assert restored.get_config() == layer.get_config()


def test_one_row_trains_as_keras():
    """torch's kernel refuses one value per channel; the layer falls back to Keras."""
    reference, fused = _pair((1, 6), -1)
    x = _inputs((1, 6))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(fused(x, training=True)),
        keras.ops.convert_to_numpy(reference(x, training=True)),
        atol=1e-4,  # Keras' E[x^2] - E[x]^2 cancels to a few 1e-7 of variance here
    )


@keras.saving.register_keras_serializable(package="lmuformer_keras_tests")
class _BatchNormList(keras.layers.Layer):
    """Two BatchNormalizations in a list, as the patch embedding keeps them."""

    def __init__(self, library: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.library = library
        cls = BatchNormalization if library else keras.layers.BatchNormalization
        self.bns = [cls(name=f"bn{i}") for i in range(2)]

    def build(self, input_shape):
        for bn in self.bns:
            bn.build(input_shape)

    def call(self, x, training=None):
        for bn in self.bns:
            x = bn(x, training=training)
        return x

    def get_config(self):
        return {**super().get_config(), "library": self.library}


def test_loads_models_saved_with_keras_batch_normalization(tmp_path):
    """Saved before the blocks used this layer: the weights still load."""
    old = keras.Sequential([keras.Input((3,)), _BatchNormList(library=False)])
    rng = np.random.default_rng(5)
    values = [rng.normal(size=w.shape).astype("float32") for w in old.weights]
    old.set_weights(values)
    path = str(tmp_path / "old.keras")
    old.save(path)
    new = keras.Sequential([keras.Input((3,)), _BatchNormList(library=True)])
    new.load_weights(path)
    assert all(isinstance(bn, BatchNormalization) for bn in new.layers[0].bns)
    for a, b in zip(new.weights, values, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), b)
