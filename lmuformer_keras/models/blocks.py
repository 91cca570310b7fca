"""Shared pieces of the LMUFormer blocks: activations and streaming state specs.

Every block of the model (``PatchEmbedding``, ``LMUTokenMixer``, ``ChannelMixer``,
``ClassifierHead``) has the same two faces:

- ``call(x, training)`` on a whole ``(batch, time, channels)`` sequence (parallel);
- ``step(x_t, states) -> (y_t, new_states)`` on one frame ``(batch, channels)``, with
  every state explicit; ``state_specs()`` lists them as ``StateSpec``s
  (:class:`lmuformer_keras.contract.StateSpec`).

``step`` runs in inference mode (BatchNormalization uses its moving statistics) and is
built from ops that TensorFlow Lite Micro has: matrix products, additions, ReLU,
concatenation, reshape, comparisons.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lmuformer_keras import backend_utils
from lmuformer_keras.contract import StateSpec
from lmuformer_keras.layers.batch_normalization import BatchNormalization
from lmuformer_keras.layers.lif import LIF


def batch_norm(name: str, dtype: Any = None) -> BatchNormalization:
    """BatchNormalization as PyTorch's BatchNorm1d (momentum 0.1, eps 1e-5)."""
    return BatchNormalization(momentum=0.9, epsilon=1e-5, name=name, dtype=dtype)


def make_lif(
    name: str, lif_config: dict[str, Any], dtype: Any = None, **overrides: Any
) -> LIF:
    """A LIF layer from the model's shared neuron configuration."""
    return LIF(name=name, dtype=dtype, **{**lif_config, **overrides})


def lif_step(lif: LIF, x_t, v):
    """One LIF step in export form (no surrogate-gradient term; same values)."""
    return lif.step(x_t, v, differentiable=False)


def relu(x):
    """ReLU (TFLite Micro: RELU)."""
    return ops.relu(x)


def per_frame(fn, x):
    """Applies a per-frame function to ``x`` as ``(batch * time, channels)`` rows.

    ``y[b, t] = fn(x[b, t])`` for a function of one frame (Dense, ReLU, or
    BatchNormalization, whose training statistics run over all batch x time rows
    either way): the same math as on ``(batch, time, channels)``. On rows, XLA
    computes the weight gradients of the per-frame layers without transposing
    copies of the ``(batch, time, hidden)`` activations, so the paper presets
    train faster on JAX (figures: ``docs/code_figures.md``).

    Args:
        fn: Function of ``(rows, channels_in)`` to ``(rows, channels_out)``.
        x: ``(batch, time, channels_in)``.

    Returns:
        ``(batch, time, channels_out)``.
    """
    shape = ops.shape(x)
    rows = fn(ops.reshape(x, (-1, shape[-1])))
    return ops.reshape(rows, (shape[0], shape[1], ops.shape(rows)[-1]))


def bn_after(bn: keras.layers.BatchNormalization, training, fn=None):
    """``rows -> bn(fn(rows))`` for :func:`per_frame` (``fn``: a per-frame layer or
    activation before the BatchNormalization, or ``None``)."""
    return lambda rows: bn(rows if fn is None else fn(rows), training=training)


def is_affine_dense(dense: keras.layers.Dense) -> bool:
    """Whether ``dense`` computes ``x @ dense.kernel + dense.bias`` (not quantized, no
    activation), so that its weights may be used in a rewritten product."""
    return dense.quantization_mode is None and dense.activation in (
        None,
        keras.activations.linear,
    )


def dense_bn(dense: keras.layers.Dense, bn: keras.layers.BatchNormalization, training):
    """``rows -> bn(dense(rows))`` for :func:`per_frame`, folded at inference.

    Training (batch statistics) runs the two layers. At inference the
    BatchNormalization is an affine map, folded into the Dense::

        s = gamma / sqrt(moving_var + epsilon)
        y = rows @ (W * s) + ((b - moving_mean) * s + beta)

    one matrix product with its bias instead of a product and two elementwise
    passes over the ``(rows, units)`` output. It is the same function up to float
    rounding (the weights are scaled instead of the outputs); the streaming step
    keeps the unfolded form (:func:`bn_step`), which is what the export quantizes.
    Dense layers with an activation or quantized kernels are not folded.
    """
    foldable = is_affine_dense(dense) and bn.axis in (-1, 1)
    if training or not foldable:
        return bn_after(bn, training, dense)

    def fn(rows):
        scale = ops.rsqrt(ops.cast(bn.moving_variance, "float32") + bn.epsilon)
        if bn.gamma is not None:
            scale = scale * ops.cast(bn.gamma, "float32")
        shift = -ops.cast(bn.moving_mean, "float32")
        if dense.bias is not None:
            shift = shift + ops.cast(dense.bias, "float32")
        shift = shift * scale
        if bn.beta is not None:
            shift = shift + ops.cast(bn.beta, "float32")
        kernel = ops.cast(dense.kernel, "float32") * scale
        dtype = dense.compute_dtype
        product = backend_utils.matmul(ops.cast(rows, dtype), ops.cast(kernel, dtype))
        return product + ops.cast(shift, dtype)

    return fn


def spec(layer: keras.layers.Layer, suffix: str, shape: tuple[int, ...]) -> StateSpec:
    """A state named after the layer that owns it."""
    return StateSpec(f"{layer.name}/{suffix}", tuple(int(s) for s in shape))


def bn_step(bn: keras.layers.BatchNormalization, x_t):
    """Inference-mode BatchNormalization of one frame ``(batch, channels)``.

    The same ``ops.batch_normalization`` with the moving statistics that the layer
    runs on sequences with ``training=False`` (a per-channel MUL and ADD in TFLite).
    """
    dtype = keras.backend.standardize_dtype(x_t.dtype)
    return ops.batch_normalization(
        x_t,
        ops.cast(bn.moving_mean, dtype),
        ops.cast(bn.moving_variance, dtype),
        axis=-1,
        offset=None if bn.beta is None else ops.cast(bn.beta, dtype),
        scale=None if bn.gamma is None else ops.cast(bn.gamma, dtype),
        epsilon=bn.epsilon,
    )
