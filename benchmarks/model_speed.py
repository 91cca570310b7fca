"""Training-step, inference and streaming-step time of the paper presets.

Usage:
    python benchmarks/model_speed.py                       # all backends
    python benchmarks/model_speed.py --backends jax --repeats 3

For each backend (each in its own process; 2 threads) and each paper preset
(``lmuformer_scv2``, ``spiking_lmuformer_scv2``; batch 32, 128 frames x 128 mel):

- train step: ``model.train_on_batch`` (forward, BCE-with-logits loss on one-hot
  labels as the paper, backward, Adam), Keras' compiled train function;
- inference: ``model.predict_on_batch`` (compiled predict function);
- stream step: one float frame through ``StreamingModel.step_model`` at batch 1
  (compiled: ``tf.function`` / ``jax.jit`` of the stateless call; eager torch);
- MACs per streamed frame: ``LMUFormer.macs_per_frame()``.

For scale (REFERENCE run of the PyTorch reference code on this 2-core CPU, batch 32):
LMUFormer ~200 ms per training step and ~80 ms per inference; spiking LMUFormer
~800 ms and ~190 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PRESETS = ("lmuformer_scv2", "spiking_lmuformer_scv2")
REFERENCE_MS = {
    "lmuformer_scv2": (200.0, 80.0),
    "spiking_lmuformer_scv2": (800.0, 190.0),
}


def compiled_step(streaming):
    """A compiled single-frame step of the step model (backend-specific)."""
    import keras

    model = streaming.step_model
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        fn = tf.function(lambda inputs: model(inputs, training=False))
        return lambda inputs: [o.numpy() for o in fn(inputs)]
    if backend == "jax":
        import jax

        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]
        fn = jax.jit(lambda inputs: model.stateless_call(tv, ntv, inputs)[0])
        return lambda inputs: jax.block_until_ready(fn(inputs))
    import torch

    def run(inputs):
        with torch.no_grad():
            return model(inputs, training=False)

    return run


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, HERE)
    import timing

    timing.set_threads(2)
    import keras
    import numpy as np

    from lmuformer_keras.models import LMUFormer
    from lmuformer_keras.streaming import StreamingModel

    rng = np.random.default_rng(0)
    for preset in args.presets.split(","):
        keras.utils.set_random_seed(0)
        model = LMUFormer.from_preset(preset)
        model.compile(
            keras.optimizers.Adam(2.5e-3, beta_1=0.95, beta_2=0.999),
            keras.losses.BinaryCrossentropy(from_logits=True),
        )
        x = rng.normal(size=(32, 128, 128)).astype("float32")
        y = np.eye(35, dtype="float32")[rng.integers(0, 35, 32)]
        train = timing.median_time(
            lambda m=model, a=x, b=y: m.train_on_batch(a, b),
            warmup=2,
            repeats=args.repeats,
        )
        infer = timing.median_time(
            lambda m=model, a=x: m.predict_on_batch(a), warmup=2, repeats=args.repeats
        )
        streaming = StreamingModel(model)
        step = compiled_step(streaming)
        inputs = [x[:1, 0], *streaming.initial_states(1)]
        stream = timing.median_time(lambda f=step, a=inputs: f(a), warmup=3, repeats=50)
        print(
            "RESULT "
            + json.dumps(
                dict(
                    backend=keras.backend.backend(),
                    preset=preset,
                    train_ms=train * 1e3,
                    infer_ms=infer * 1e3,
                    stream_ms=stream * 1e3,
                    macs_per_frame=model.macs_per_frame(),
                    peak_rss_mb=timing.peak_rss_mb(),
                )
            ),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(
        "| backend | preset | train step | vs reference | inference | vs reference "
        "| stream step (batch 1) | MACs/frame |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for backend in args.backends.split(","):
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        cmd = [sys.executable, __file__, "--child", "--presets", args.presets]
        cmd += ["--repeats", str(args.repeats)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        results = [
            json.loads(line[7:])
            for line in out.stdout.splitlines()
            if line.startswith("RESULT ")
        ]
        if not results:
            print(f"| {backend} | failed: {out.stderr.strip()[-300:]} |")
        for r in results:
            ref_train, ref_infer = REFERENCE_MS[r["preset"]]
            print(
                f"| {backend} | {r['preset']} | {r['train_ms']:.0f} ms "
                f"| {ref_train / r['train_ms']:.1f}x faster | {r['infer_ms']:.0f} ms "
                f"| {ref_infer / r['infer_ms']:.1f}x faster | {r['stream_ms']:.2f} ms "
                f"| {r['macs_per_frame']:,} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
