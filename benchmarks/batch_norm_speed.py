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

import argparse
import contextlib
import json
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


def model_times(presets: list[str], repeats: int) -> list[dict]:
    import keras
    import numpy as np
    import timing

    from lmuformer_keras.models import LMUFormer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 128, 128)).astype("float32")
    y = np.eye(35, dtype="float32")[rng.integers(0, 35, 32)]
    variants = {"library": contextlib.nullcontext, "keras_bn": keras_bn_ops}
    results = []
    for preset in presets:
        fns = {}
        for name, scope in variants.items():
            keras.utils.set_random_seed(0)
            model = LMUFormer.from_preset(preset)
            model.compile(
                keras.optimizers.Adam(2.5e-3, beta_1=0.95, beta_2=0.999),
                keras.losses.BinaryCrossentropy(from_logits=True),
            )
            fns[f"{name}/train"] = timing.scoped(
                lambda m=model: m.train_on_batch(x, y), scope
            )
            fns[f"{name}/infer"] = timing.scoped(
                lambda m=model: m.predict_on_batch(x), scope
            )
        times = timing.interleaved_medians(fns, warmup=2, repeats=repeats)
        for step in ("train", "infer"):
            results.append(
                dict(
                    kind="model",
                    name=f"{preset} {step}",
                    **{v: times[f"{v}/{step}"] for v in variants},
                )
            )
    return results


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, HERE)
    import timing

    timing.set_threads(2)
    import keras

    rows = layer_times(args.repeats) + model_times(
        args.presets.split(","), args.repeats
    )
    for r in rows:
        print("RESULT " + json.dumps(dict(backend=keras.backend.backend(), **r)))


def main() -> None:
    sys.path.insert(0, HERE)
    import timing

    args = timing.preset_parser(__doc__, PRESETS, repeats=8).parse_args()
    if args.child:
        child(args)
        return

    print("| backend | timed | library | keras_bn | keras_bn / library |")
    print("|---|---|---|---|---|")
    for backend in args.backends.split(","):
        for r in timing.child_results(__file__, args, backend):
            lib, keras_bn = r["library"], r["keras_bn"]
            print(
                f"| {backend} | {r['kind']}: {r['name']} | {lib * 1e3:.1f} ms "
                f"| {keras_bn * 1e3:.1f} ms | {keras_bn / lib:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
