"""The library's BatchNormalization against Keras', side by side.

Usage:
    python benchmarks/batch_norm_speed.py                     # all backends
    python benchmarks/batch_norm_speed.py --backends torch --repeats 12

The model blocks use ``lmuformer_keras.layers.BatchNormalization``: while training
on TensorFlow and torch it runs the backend's fused batch-norm kernel
(``backend_utils.fused_batch_norm_training``) where ``keras.layers.BatchNormalization``
runs a chain of elementwise Keras ops. This script times, in one process per backend
(2 threads), the timed calls interleaved (``timing.interleaved_medians``):

- layer: forward + backward of ``sum(BN(x)^2)`` on ``(4096, channels)`` rows (batch 32
  x 128 frames), ``keras.layers.BatchNormalization`` against
  ``lmuformer_keras.layers.BatchNormalization``;
- model: ``train_on_batch`` and ``predict_on_batch`` of the paper presets (batch 32,
  128 x 128, float32) as the library builds them ("library") and with the Keras
  BatchNormalization ops instead ("keras_bn").

Ratios are ``keras_bn / library`` (> 1: the library is faster). JAX runs the Keras ops
in both (XLA fuses them itself): its rows show the noise of the measurement.
"""

from __future__ import annotations

import contextlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PRESETS = ("lmuformer_scv2", "spiking_lmuformer_scv2")


@contextlib.contextmanager
def keras_bn_ops():
    """The library's BatchNormalization runs Keras' ``call`` inside."""
    import keras

    from lmuformer_keras.layers.batch_normalization import BatchNormalization

    fused_call = BatchNormalization.call
    BatchNormalization.call = keras.layers.BatchNormalization.call
    try:
        yield
    finally:
        BatchNormalization.call = fused_call


def layer_times(repeats: int) -> list[dict]:
    import keras
    import numpy as np
    import timing

    from lmuformer_keras.layers.batch_normalization import BatchNormalization

    results = []
    for channels in (256, 1024):
        x = np.random.default_rng(0).normal(size=(4096, channels)).astype("float32")
        fns = {}
        for name, cls in (
            ("library", BatchNormalization),
            ("keras_bn", keras.layers.BatchNormalization),
        ):
            layer = cls(momentum=0.9, epsilon=1e-5)
            layer.build((None, channels))
            fns[name] = timing.make_fwd_bwd(layer, x)
        times = timing.interleaved_medians(fns, warmup=3, repeats=3 * repeats)
        results.append(dict(kind="layer", name=f"(4096, {channels})", **times))
    return results


def main() -> None:
    sys.path.insert(0, HERE)
    import timing

    timing.library_vs_keras_main(
        __doc__, __file__, layer_times, ("keras_bn", keras_bn_ops), PRESETS, repeats=8
    )


if __name__ == "__main__":
    main()
