"""BatchNormalization of per-frame rows with the backend's fused training kernel."""

from __future__ import annotations

import keras
from keras import ops

from lmuformer_keras import backend_utils


@keras.saving.register_keras_serializable(package="lmuformer_keras")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` that trains through a fused kernel.

    The same layer, weights and math::

        y = gamma * (x - mean) / sqrt(var + epsilon) + beta

    (batch statistics while training, moving statistics otherwise). On TensorFlow
    and torch, training on ``(rows, channels)`` inputs (how the LMUFormer blocks
    apply it, see ``models.blocks.per_frame``) runs the backend's fused kernel, one
    forward and one backward
    (:func:`lmuformer_keras.backend_utils.fused_batch_norm_training`), where the
    Keras ops take a chain of elementwise passes: the paper presets' training step is
    about 10% faster (``benchmarks/batch_norm_speed.py``). Inference on bfloat16
    rows runs the backend's fused inference kernel
    (:func:`lmuformer_keras.backend_utils.fused_batch_norm_inference`: one pass
    where Keras casts to float32 and back). Every other case (JAX, float32
    inference, other ranks, masks, renorm, synchronized statistics) is
    ``keras.layers.BatchNormalization.call``. The moving statistics follow Keras'
    rule (biased batch variance), not PyTorch's.

    It has Keras' class name on purpose: Keras files the weights of layers kept in a
    list under their class name, so models saved with ``keras.layers``'
    BatchNormalization load into this one unchanged.
    """

    def call(self, inputs, training=None, mask=None):
        fusable = (
            training
            and self.trainable
            and mask is None
            and not self.renorm
            and not self.synchronized
            and len(inputs.shape) == 2
            and self.axis in (-1, 1)
        )
        if not fusable:
            return self._inference(inputs, training, mask)
        x = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        fused = backend_utils.fused_batch_norm_training(
            x,
            None if self.gamma is None else ops.cast(self.gamma, x.dtype),
            None if self.beta is None else ops.cast(self.beta, x.dtype),
            float(self.epsilon),
        )
        if fused is None:
            return super().call(inputs, training=training, mask=mask)
        y, mean, var = fused
        self.moving_mean.assign(
            ops.cast(self.moving_mean, x.dtype) * self.momentum
            + mean * (1.0 - self.momentum)
        )
        self.moving_variance.assign(
            ops.cast(self.moving_variance, x.dtype) * self.momentum
            + var * (1.0 - self.momentum)
        )
        return ops.cast(y, self.compute_dtype)

    def _inference(self, inputs, training, mask):
        """Inference with the moving statistics through the backend's fused kernel
        (:func:`lmuformer_keras.backend_utils.fused_batch_norm_inference`), or
        ``keras.layers.BatchNormalization.call``."""
        plain = (
            not (training and self.trainable)
            and mask is None
            and not self.renorm
            and self.axis in (-1, 1)
        )
        y = None
        if plain:
            y = backend_utils.fused_batch_norm_inference(
                inputs,
                ops.cast(self.moving_mean, "float32"),
                ops.cast(self.moving_variance, "float32"),
                None if self.gamma is None else ops.cast(self.gamma, "float32"),
                None if self.beta is None else ops.cast(self.beta, "float32"),
                float(self.epsilon),
            )
        if y is None:
            return super().call(inputs, training=training, mask=mask)
        return ops.cast(y, self.compute_dtype)
