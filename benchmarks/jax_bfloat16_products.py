"""JAX's bfloat16 training products, with and without the library's two forms.

Usage:
    python benchmarks/jax_bfloat16_products.py              # JAX, both presets
    python benchmarks/jax_bfloat16_products.py --repeats 12

Under ``mixed_bfloat16`` on JAX the library computes its products with float32
accumulation (``backend_utils.matmul``), which on this CPU takes XLA's bfloat16 dot
kernel. Two forms keep the training step's products on that kernel:

- the weight gradient ``dW = x^T @ g`` of ``matmul``'s custom VJP
  (``products._jax_weight_gradient``) materializes ``x^T`` row-major. Written as a
  rows-contracting dot, or with a plain transpose that XLA folds back into it, the
  product takes about twice as long;
- the library's ``Conv1D`` trains through ``backend_utils.conv1d_as_window_product``
  (each output frame's ``k`` input frames side by side, times the stacked taps; its
  VJP two more such products) instead of XLA's bfloat16 convolution.

This script times, in one JAX process (2 threads), the timed calls interleaved
(``timing.interleaved_medians``), the library as it is ("library") against the same
code with both forms undone ("xla": the weight gradient as a rows-contracting dot,
Keras' convolution in training, as before these forms):

- layer: forward + backward of ``sum(layer(x)^2)`` (input and weight gradients) of
  the paper preset's Dense layers, ``(32, 128, 256) -> 1024`` and ``(32, 128, 1024)
  -> 256``, and of a ``same``-padded kernel-3 ``Conv1D`` ``(32, 128, 256) -> 256``,
  all ``mixed_bfloat16``;
- model: ``train_on_batch`` and ``predict_on_batch`` of the paper presets (batch 32,
  128 x 128, ``mixed_bfloat16``).

Ratios are ``xla / library`` (> 1: the library's forms are faster). Inference runs
the same code in both variants (its convolution is the one-product form either
way): those rows show the noise. On TensorFlow and torch neither form is used.
"""

from __future__ import annotations

import contextlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PRESETS = ("lmuformer_scv2", "spiking_lmuformer_scv2")
POLICY = "mixed_bfloat16"


@contextlib.contextmanager
def xla_forms():
    """The weight gradient as a rows-contracting dot, the convolution XLA's."""
    from lmuformer_keras import backend_utils
    from lmuformer_keras.kernels import products

    def rows_contracted(x, g):
        return products._jax_dot_float32(x, g, 0, 0)

    def xla_conv(x, kernel, pad_left=0, pad_right=0, bias=None):
        return backend_utils.conv1d(x, kernel, pad_left, pad_right, bias=bias)

    saved = products._jax_weight_gradient, backend_utils.conv1d_as_window_product
    products._jax_weight_gradient = rows_contracted
    backend_utils.conv1d_as_window_product = xla_conv
    try:
        yield
    finally:
        products._jax_weight_gradient = saved[0]
        backend_utils.conv1d_as_window_product = saved[1]


def layer_times(repeats: int) -> list[dict]:
    import numpy as np
    import timing

    from lmuformer_keras.layers import Conv1D, Dense

    cases = (
        ("Dense (32, 128, 256) -> 1024", 256, lambda: Dense(1024, dtype=POLICY)),
        ("Dense (32, 128, 1024) -> 256", 1024, lambda: Dense(256, dtype=POLICY)),
        (
            "Conv1D k=3 (32, 128, 256) -> 256",
            256,
            lambda: Conv1D(256, 3, padding="same", use_bias=False, dtype=POLICY),
        ),
    )
    results = []
    for name, c_in, make in cases:
        x = np.random.default_rng(0).normal(size=(32, 128, c_in)).astype("float32")
        layer = make()
        layer.build((None, None, c_in))
        fns = {
            variant: timing.scoped(timing.make_fwd_bwd(layer, x), scope)
            for variant, scope in (
                ("library", contextlib.nullcontext),
                ("xla", xla_forms),
            )
        }
        # make_fwd_bwd traces on its first call, inside each variant's scope.
        times = timing.interleaved_medians(fns, warmup=3, repeats=3 * repeats)
        results.append(dict(kind="layer", name=f"{POLICY} {name} fwd+bwd", **times))
    return results


def main() -> None:
    sys.path.insert(0, HERE)
    import timing

    timing.library_vs_keras_main(
        __doc__,
        __file__,
        layer_times,
        ("xla", xla_forms),
        PRESETS,
        repeats=7,
        backends="jax",
        policy=POLICY,
    )


if __name__ == "__main__":
    main()
