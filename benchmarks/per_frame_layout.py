"""Per-frame layers on ``(batch * time, channels)`` rows vs ``(batch, time, channels)``.

Usage:
    python benchmarks/per_frame_layout.py                      # all backends
    python benchmarks/per_frame_layout.py --backends jax --repeats 12

The model blocks apply their per-frame layers (Dense, BatchNormalization, ReLU) to
rows (``lmuformer_keras.models.blocks.per_frame``). This script times the paper presets
that way ("rows", the library) and with those layers on ``(batch, time, channels)``
("frames": ``per_frame`` patched to call the layer directly, BatchNormalization built
on rank 3), both models in one process (2 threads, batch 32, 128 x 128, float32), the
timed calls interleaved so that the shared machine's drift hits both alike. Printed:
median training step (``train_on_batch``) and inference (``predict_on_batch``) of
each, and frames / rows (> 1: rows is faster).

The blocks' BatchNormalization (``lmuformer_keras.layers.BatchNormalization``) runs its
fused training kernel on rows only; on rank 3 it runs Keras' ops. So on TensorFlow and
torch the "frames" training step also pays for Keras' batch-norm ops, and frames / rows
there includes the fused kernel's gain (``benchmarks/batch_norm_speed.py`` measures
that alone); on JAX both variants run Keras' ops.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PRESETS = ("lmuformer_scv2", "spiking_lmuformer_scv2")


@contextlib.contextmanager
def frames_layout():
    """Per-frame layers on ``(batch, time, channels)`` inside (builds and calls)."""
    import keras

    from lmuformer_keras.models import (
        channel_mixer,
        classifier_head,
        patch_embedding,
        token_mixer,
    )

    modules = (patch_embedding, token_mixer, channel_mixer, classifier_head)
    saved = [m.per_frame for m in modules]
    bn = keras.layers.BatchNormalization
    bn_build = bn.build

    def build_rank3(self, input_shape):
        bn_build(self, (None, None, input_shape[-1]))

    for m in modules:
        m.per_frame = lambda fn, x: fn(x)
    bn.build = build_rank3
    try:
        yield
    finally:
        for m, f in zip(modules, saved, strict=True):
            m.per_frame = f
        bn.build = bn_build


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, HERE)
    import timing

    timing.set_threads(2)
    import json

    import keras
    import numpy as np

    from lmuformer_keras.models import LMUFormer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 128, 128)).astype("float32")
    y = np.eye(35, dtype="float32")[rng.integers(0, 35, 32)]
    for preset in args.presets.split(","):
        models = {}
        layouts = (("rows", contextlib.nullcontext), ("frames", frames_layout))
        for layout, scope in layouts:
            with scope():
                keras.utils.set_random_seed(0)
                model = LMUFormer.from_preset(preset)
                model.compile(
                    keras.optimizers.Adam(2.5e-3, beta_1=0.95, beta_2=0.999),
                    keras.losses.BinaryCrossentropy(from_logits=True),
                )
                for _ in range(2):
                    model.train_on_batch(x, y)
                    model.predict_on_batch(x)
            models[layout] = (model, scope)
        fns = {}
        for layout, (model, scope) in models.items():
            fns[f"{layout}_train"] = timing.scoped(
                lambda m=model: m.train_on_batch(x, y), scope
            )
            fns[f"{layout}_infer"] = timing.scoped(
                lambda m=model: m.predict_on_batch(x), scope
            )
        times = timing.interleaved_medians(fns, warmup=0, repeats=args.repeats)
        result = dict(backend=keras.backend.backend(), preset=preset)
        result.update({f"{name}_ms": t * 1e3 for name, t in times.items()})
        print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    sys.path.insert(0, HERE)
    import timing

    args = timing.preset_parser(__doc__, PRESETS, repeats=8).parse_args()
    if args.child:
        child(args)
        return

    print(
        "| backend | preset | train rows / frames | frames / rows "
        "| inference rows / frames | frames / rows |"
    )
    print("|---|---|---|---|---|---|")
    for backend in args.backends.split(","):
        for r in timing.child_results(__file__, args, backend):
            print(
                f"| {backend} | {r['preset']} "
                f"| {r['rows_train_ms']:.0f} / {r['frames_train_ms']:.0f} ms "
                f"| {r['frames_train_ms'] / r['rows_train_ms']:.2f}x "
                f"| {r['rows_infer_ms']:.0f} / {r['frames_infer_ms']:.0f} ms "
                f"| {r['frames_infer_ms'] / r['rows_infer_ms']:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
