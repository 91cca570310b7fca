"""Batch normalization of ``(rows, channels)`` in one fused backend kernel."""

from __future__ import annotations

import keras


def fused_batch_norm_training(x, gamma, beta, epsilon: float):
    """Training-mode batch normalization of ``(rows, channels)`` in one fused kernel.

        y = gamma * (x - mean) / sqrt(var + epsilon) + beta

    with the ``mean`` and biased ``var`` of each channel over the rows: the
    math of ``keras.layers.BatchNormalization``, whose Keras ops take about ten
    elementwise passes forward and backward where these kernels take one each
    (figures: ``docs/code_figures.md``):

    - torch: ``torch.nn.functional.batch_norm``;
    - TensorFlow: ``FusedBatchNormV3`` (``tf.compat.v1.nn.fused_batch_norm``), the
      rows seen as a ``(1, 1, rows, channels)`` image.

    Args:
        x: ``(rows, channels)``, float32.
        gamma: ``(channels,)`` or ``None``.
        beta: ``(channels,)`` or ``None``.
        epsilon: Added to the variance.

    Returns:
        ``(y, mean, var)`` (``mean`` and ``var`` without gradient, for the moving
        statistics), or ``None`` on JAX, whose compiler fuses the Keras ops itself,
        and for other ranks: the caller uses the Keras ops.
    """
    backend = keras.backend.backend()
    if len(x.shape) != 2:
        return None
    if backend == "torch":
        import torch

        rows, channels = x.shape
        if rows < 2:  # torch refuses to train on one value per channel; Keras does.
            return None
        # momentum 1 makes torch write this batch's mean and unbiased variance into
        # the zero buffers (0 * 0 + 1 * stat): one kernel computes the statistics.
        mean = torch.zeros(channels, dtype=x.dtype, device=x.device)
        var = torch.zeros(channels, dtype=x.dtype, device=x.device)
        y = torch.nn.functional.batch_norm(
            x, mean, var, gamma, beta, training=True, momentum=1.0, eps=epsilon
        )
        return y, mean, var * ((rows - 1) / rows)
    if backend == "tensorflow":
        import tensorflow as tf

        rows, channels = tf.shape(x)[0], x.shape[1]
        ones = tf.ones((channels,), x.dtype)
        y, mean, var = tf.compat.v1.nn.fused_batch_norm(
            tf.reshape(x, (1, 1, rows, channels)),
            ones if gamma is None else gamma,
            tf.zeros_like(ones) if beta is None else beta,
            epsilon=epsilon,
            is_training=True,
        )
        # FusedBatchNormV3 returns the unbiased variance.
        n = tf.cast(rows, x.dtype)
        var = tf.stop_gradient(var) * tf.maximum(n - 1.0, 0.0) / n
        return tf.reshape(y, tf.shape(x)), tf.stop_gradient(mean), var
    return None


def fused_batch_norm_inference(x, mean, variance, gamma, beta, epsilon: float):
    """Inference-mode batch normalization of bfloat16 ``(rows, channels)`` in one
    fused kernel.

        y = gamma * (x - mean) / sqrt(variance + epsilon) + beta

    with the moving statistics: the math of ``keras.layers.BatchNormalization`` at
    inference, which for bfloat16 inputs casts them to float32, multiplies, adds and
    casts back (four passes). These kernels read the bfloat16 ``x`` once and write
    the bfloat16 ``y`` once, with float32 statistics:

    - torch: ``torch.nn.functional.batch_norm(training=False)``;
    - TensorFlow: ``FusedBatchNormV3`` (``is_training=False``), the rows seen as a
      ``(1, 1, rows, channels)`` image.

    They speed up the paper presets' ``mixed_bfloat16`` inference on TensorFlow and
    torch; for float32 they did not beat Keras' two passes, so float32 keeps Keras'
    ops (figures: ``docs/code_figures.md``).

    Args:
        x: ``(rows, channels)``, bfloat16.
        mean, variance: ``(channels,)`` float32 moving statistics.
        gamma, beta: ``(channels,)`` float32, or ``None``.
        epsilon: Added to the variance.

    Returns:
        ``y`` (bfloat16), or ``None`` on JAX, whose compiler fuses the Keras ops
        itself, and for other ranks or dtypes: the caller uses the Keras ops.
    """
    backend = keras.backend.backend()
    dtype = keras.backend.standardize_dtype(x.dtype)
    if len(x.shape) != 2 or dtype != "bfloat16":
        return None
    if backend == "torch":
        from torch.nn import functional

        return functional.batch_norm(
            x, mean, variance, gamma, beta, training=False, eps=epsilon
        )
    if backend == "tensorflow":
        import tensorflow as tf

        channels = x.shape[1]
        ones = tf.ones((channels,), "float32")
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            tf.reshape(x, (1, 1, -1, channels)),
            ones if gamma is None else gamma,
            tf.zeros_like(ones) if beta is None else beta,
            mean=mean,
            variance=variance,
            epsilon=epsilon,
            is_training=False,
        )
        return tf.reshape(y, tf.shape(x))
    return None
