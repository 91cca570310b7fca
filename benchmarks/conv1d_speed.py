"""The library's Conv1D against Keras', side by side.

Usage:
    python benchmarks/conv1d_speed.py                     # all backends
    python benchmarks/conv1d_speed.py --backends torch --repeats 12

The patch embedding uses ``lmuformer_keras.layers.Conv1D``, which convolves through
``backend_utils.conv1d``: on torch the channels-last data goes to the convolution as
it lies in memory, where Keras' torch convolution copies it to channels-first and
back; on TensorFlow and JAX it runs Keras' own ops (JAX at bfloat16 inference: one
matrix product, see the layer). The LMU memory's convolution at inference
(``lmu_conv_direct.causal_conv_convolution`` and its projected form) goes through
``backend_utils.conv1d`` too. This script times, in one process per backend (2
threads), the timed calls interleaved (``timing.interleaved_medians``):

- layer: the forward pass (inference) and forward + backward of ``sum(conv(x)^2)``
  (input and kernel gradients) of a causal kernel-3 convolution on ``(32, 128,
  C_in)`` to 256 channels, float32 and ``mixed_bfloat16``,
  ``keras.layers.Conv1D`` ("keras") against ``lmuformer_keras.layers.Conv1D``
  ("library");
- model: ``train_on_batch`` and ``predict_on_batch`` of the paper presets (batch 32,
  128 x 128, float32) as the library builds them ("library") and with Keras'
  convolution instead ("keras": the layer's ``keras.layers.Conv1D.call``, the memory's
  ``keras.ops.pad`` + ``keras.ops.conv``).

Ratios are ``keras / library`` (> 1: the library is faster). On TensorFlow and JAX
both run the same ops (but JAX's bfloat16 inference): those rows show the noise.
"""

from __future__ import annotations

import contextlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PRESETS = ("lmuformer_scv2", "spiking_lmuformer_scv2")


def _keras_conv1d(x, kernel, pad_left=0, pad_right=0, bias=None):
    from keras import ops

    x = ops.pad(x, ((0, 0), (pad_left, pad_right), (0, 0)))
    y = ops.conv(x, kernel, padding="valid")
    return y if bias is None else ops.add(y, bias)


@contextlib.contextmanager
def keras_conv():
    """The library's Conv1D runs Keras' ``call``; the memory Keras' pad + conv."""
    import keras

    from lmuformer_keras import backend_utils
    from lmuformer_keras.layers.conv1d import Conv1D

    def keras_call(self, inputs, training=None):
        return keras.layers.Conv1D.call(self, inputs)

    call, conv1d = Conv1D.call, backend_utils.conv1d
    Conv1D.call = keras_call
    backend_utils.conv1d = _keras_conv1d
    try:
        yield
    finally:
        Conv1D.call, backend_utils.conv1d = call, conv1d


def layer_times(repeats: int) -> list[dict]:
    import keras
    import numpy as np
    import timing

    from lmuformer_keras.layers.conv1d import Conv1D

    class KerasConv1D(keras.layers.Conv1D):
        """Keras' layer, taking the ``training`` argument JAX's timing passes."""

        def call(self, inputs, training=None):
            return super().call(inputs)

    results = []
    for policy in ("float32", "mixed_bfloat16"):
        for c_in in (128, 256):
            x = np.random.default_rng(0).normal(size=(32, 128, c_in))
            x = x.astype("float32")
            fns = {}
            for name, cls in (("library", Conv1D), ("keras", KerasConv1D)):
                layer = cls(256, 3, padding="causal", use_bias=False, dtype=policy)
                layer.build((None, None, c_in))
                fns[f"{name}/forward"] = lambda f=layer, a=x: (
                    keras.ops.convert_to_numpy(f(a))
                )
                fns[f"{name}/fwd+bwd"] = timing.make_fwd_bwd(layer, x)
            times = timing.interleaved_medians(fns, warmup=3, repeats=3 * repeats)
            for step in ("forward", "fwd+bwd"):
                results.append(
                    dict(
                        kind="layer",
                        name=f"{policy} (32, 128, {c_in}) -> 256 {step}",
                        library=times[f"library/{step}"],
                        keras=times[f"keras/{step}"],
                    )
                )
    return results


def main() -> None:
    sys.path.insert(0, HERE)
    import timing

    timing.library_vs_keras_main(
        __doc__, __file__, layer_times, ("keras", keras_conv), PRESETS, repeats=7
    )


if __name__ == "__main__":
    main()
