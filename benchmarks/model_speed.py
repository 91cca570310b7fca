"""Training-step, inference and streaming-step time of the paper presets.

Usage:
    python benchmarks/model_speed.py                       # all backends
    python benchmarks/model_speed.py --backends jax --repeats 3
    python benchmarks/model_speed.py --presets lmuformer_tiny_kws \
        --dtype_policy float32,mixed_bfloat16              # any preset, no baseline

For each backend (each in its own process; 2 threads) and each paper preset
(``lmuformer_scv2``, ``spiking_lmuformer_scv2``; batch 32, 128 frames x 128 mel;
other presets: batch 32 of their own input shape):

- train step: ``model.train_on_batch`` (forward, BCE-with-logits loss on one-hot
  labels as the paper, backward, Adam), Keras' compiled train function;
- inference: ``model.predict_on_batch`` (compiled predict function);
- stream step: one float frame through ``StreamingModel.step_model`` at batch 1
  (compiled: ``tf.function`` / ``jax.jit`` of the stateless call; eager torch);
- MACs per streamed frame: ``LMUFormer.macs_per_frame()``.

Side by side (unless ``--no_baseline``): a plain-PyTorch model shaped like the
reference code (``benchmarks/reference_torch.py``: channels-first ``nn.Conv1d``, FFT
memory, GELU, a Python-loop LIF; same parameter counts), timed the same way (Adam,
BCE, batch 32, float32, 2 threads) in the same process as each backend's model, its
timed calls interleaved with the model's (``timing.interleaved_medians``), so the
shared machine's drift hits both alike. Ratios are ``baseline / ours`` (> 1: ours is
faster). For scale, the issue quotes the reference code itself on this
kind of 2-core CPU at ~200 ms per training step and ~80 ms per inference for
LMUFormer, ~800 ms and ~190 ms for the spiking LMUFormer.

``--dtype_policy mixed_bfloat16`` times the Keras model with bfloat16 compute and
float32 variables (``LMUFormer.from_preset(..., dtype=policy)``; the CPU here has
AVX512-BF16); ``float32,mixed_bfloat16`` times one model per policy in the same
process, interleaved with each other and with the baseline, which always runs in
float32, as the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PRESETS = ("lmuformer_scv2", "spiking_lmuformer_scv2")
POLICIES = ("float32", "mixed_bfloat16")
QUOTED_REFERENCE_MS = {
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


def baseline_steps(preset: str, x, y):
    """Training step and inference of the reference-shaped PyTorch model (float32)."""
    import torch
    from reference_torch import ReferenceLMUFormer  # beside this script

    torch.manual_seed(0)
    model = ReferenceLMUFormer(spiking=preset.startswith("spiking"))
    opt = torch.optim.Adam(model.parameters(), 2.5e-3, betas=(0.95, 0.999))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def train_step():
        model.train()
        opt.zero_grad()
        loss_fn(model(xt), yt).backward()
        opt.step()

    def infer():
        model.eval()
        with torch.no_grad():
            model(xt)

    return train_step, infer


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, HERE)
    import timing

    timing.set_threads(2)
    import keras
    import numpy as np

    if not args.no_baseline:
        import torch

        torch.set_num_threads(2)

    from lmuformer_keras.models import LMUFormer
    from lmuformer_keras.streaming import StreamingModel

    rng = np.random.default_rng(0)
    policies = args.dtype_policy.split(",")
    for preset in args.presets.split(","):
        models = {}
        for policy in policies:
            keras.utils.set_random_seed(0)
            model = LMUFormer.from_preset(preset, dtype=policy)
            model.compile(
                keras.optimizers.Adam(2.5e-3, beta_1=0.95, beta_2=0.999),
                keras.losses.BinaryCrossentropy(from_logits=True),
            )
            models[policy] = model
        shape = (32, model.num_frames, model.num_features)
        x = rng.normal(size=shape).astype("float32")
        y = np.eye(model.num_classes, dtype="float32")
        y = y[rng.integers(0, model.num_classes, 32)]
        fns = {}
        for policy, model in models.items():
            fns[f"{policy}/train"] = lambda m=model, a=x, b=y: m.train_on_batch(a, b)
            fns[f"{policy}/infer"] = lambda m=model, a=x: m.predict_on_batch(a)
        if not args.no_baseline and preset in QUOTED_REFERENCE_MS:
            fns["baseline_train"], fns["baseline_infer"] = baseline_steps(preset, x, y)
        times = timing.interleaved_medians(fns, warmup=2, repeats=args.repeats)
        baseline = {k: v for k, v in times.items() if k.startswith("baseline_")}
        for policy, model in models.items():
            streaming = StreamingModel(model)
            step = compiled_step(streaming)
            inputs = [x[:1, 0], *streaming.initial_states(1)]
            stream = timing.median_time(
                lambda f=step, a=inputs: f(a), warmup=3, repeats=50
            )
            ours = {
                "train": times[f"{policy}/train"],
                "infer": times[f"{policy}/infer"],
            }
            print(
                "RESULT "
                + json.dumps(
                    dict(
                        backend=keras.backend.backend(),
                        policy=policy,
                        preset=preset,
                        **{f"{k}_ms": t * 1e3 for k, t in {**ours, **baseline}.items()},
                        stream_ms=stream * 1e3,
                        macs_per_frame=model.macs_per_frame(),
                        peak_rss_mb=timing.peak_rss_mb(),
                    )
                ),
                flush=True,
            )


def ratio(r: dict, name: str) -> str:
    """``baseline / ours`` for ``name`` ("train" or "infer"), or "-"."""
    base = r.get(f"baseline_{name}_ms")
    return "-" if base is None else f"{base:.0f} ms: {base / r[f'{name}_ms']:.2f}x"


def quoted(reference_ms: float | None, ms: float) -> str:
    """``quoted reference / ours``, or "-" for presets the issue quotes no time for."""
    return "-" if reference_ms is None else f"{reference_ms / ms:.2f}x"


def main() -> None:
    sys.path.insert(0, HERE)
    import timing

    parser = timing.preset_parser(__doc__, PRESETS, repeats=7)
    parser.add_argument(
        "--dtype_policy",
        default="float32",
        help="Keras dtype policies of the timed Keras models, comma-separated, from "
        f"{POLICIES} (baseline: always float32).",
    )
    parser.add_argument(
        "--no_baseline",
        action="store_true",
        help="Skip the reference-shaped PyTorch baseline.",
    )
    args = parser.parse_args()
    policies = args.dtype_policy.split(",")
    for policy in policies:
        if policy not in POLICIES:
            parser.error(
                f"--dtype_policy: unknown policy {policy!r}; known: {POLICIES}"
            )
    if args.child:
        child(args)
        return
    print(
        "| backend | policy | preset | train step | baseline: baseline / ours "
        "| quoted / ours | inference | baseline: baseline / ours | quoted / ours "
        "| stream step (batch 1) | MACs/frame |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for backend in args.backends.split(","):
        extra = ("--dtype_policy", args.dtype_policy) + (
            ("--no_baseline",) if args.no_baseline else ()
        )
        for r in timing.child_results(__file__, args, backend, extra):
            q_train, q_infer = QUOTED_REFERENCE_MS.get(r["preset"], (None, None))
            print(
                f"| {backend} | {r['policy']} | {r['preset']} | {r['train_ms']:.0f} ms "
                f"| {ratio(r, 'train')} | {quoted(q_train, r['train_ms'])} "
                f"| {r['infer_ms']:.0f} ms | {ratio(r, 'infer')} "
                f"| {quoted(q_infer, r['infer_ms'])} "
                f"| {r['stream_ms']:.2f} ms | {r['macs_per_frame']:,} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
