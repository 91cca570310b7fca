"""Dense layer whose bfloat16 products accumulate in float32 on JAX."""

from __future__ import annotations

import keras
from keras import ops

from lmuformer_keras import backend_utils


@keras.saving.register_keras_serializable(package="lmuformer_keras")
class Dense(keras.layers.Dense):
    """``keras.layers.Dense``: the same layer, weights and math::

        y = activation(x @ W + b)

    Its product is :func:`lmuformer_keras.backend_utils.matmul`: on JAX under
    ``mixed_bfloat16`` it accumulates in float32 and uses the CPU's bfloat16 dot
    instructions, about 2x faster than Keras' bfloat16 product there (and at least
    as accurate); everywhere else it is ``keras.ops.matmul``, as in Keras. Quantized
    and LoRA-enabled layers run ``keras.layers.Dense.call``.
    """

    def call(self, inputs, training=None):
        if self.quantization_mode is not None or self.lora_enabled:
            return super().call(inputs, training=training)
        x = backend_utils.matmul(inputs, ops.convert_to_tensor(self.kernel))
        if self.bias is not None:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x
