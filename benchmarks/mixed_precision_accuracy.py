"""Does training in bfloat16 cost accuracy? MNIST-1D, float32 against mixed_bfloat16.

Usage:
    python benchmarks/mixed_precision_accuracy.py                 # all backends
    python benchmarks/mixed_precision_accuracy.py --backends torch --seeds 0,1
    python benchmarks/mixed_precision_accuracy.py --spiking      # spiking variant

``model_speed.py`` times the paper presets with Keras' ``mixed_bfloat16`` policy
(bfloat16 compute, float32 variables). This script checks what that costs in accuracy
on a task that trains in about half a minute: ``lmuformer_mnist1d`` on MNIST-1D (from
the ``mnist1d`` package, no download), Adam 2e-3, batch 64, ``--epochs`` epochs, under
each policy and seed, one process each (2 threads). The trained weights (float32
variables under both policies) are copied into a float32 model, the form that is
exported, and its test accuracy is reported with the training time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
POLICIES = ("float32", "mixed_bfloat16")


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, HERE)
    import timing

    timing.set_threads(2)
    import keras
    import numpy as np

    from lmuformer_keras.data import mnist1d
    from lmuformer_keras.models import LMUFormer

    ds = mnist1d()
    keras.utils.set_random_seed(args.seed)
    model = LMUFormer.from_preset(
        "lmuformer_mnist1d", spiking=args.spiking, dtype=args.policy
    )
    model.compile(
        keras.optimizers.Adam(2e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    start = time.perf_counter()
    model.fit(ds.x_train, ds.y_train, batch_size=64, epochs=args.epochs, verbose=0)
    seconds = time.perf_counter() - start
    logits = model.with_dtype_policy("float32").predict(ds.x_test, verbose=0)
    accuracy = float(np.mean(np.argmax(logits, -1) == ds.y_test))
    result = dict(accuracy=accuracy, train_s=seconds)
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--policy", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--spiking", action="store_true", help="The spiking variant of the preset."
    )
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sys.path.insert(0, HERE)
    import timing

    seeds = [int(s) for s in args.seeds.split(",")]
    print("| backend | policy | test accuracy per seed | mean | training time |")
    print("|---|---|---|---|---|")
    for backend in args.backends.split(","):
        for policy in POLICIES:
            rows = []
            for seed in seeds:
                cmd = [sys.executable, __file__, "--child", "--policy", policy]
                cmd += ["--seed", str(seed), "--epochs", str(args.epochs)]
                cmd += ["--spiking"] if args.spiking else []
                results, stderr = timing.run_child(cmd, backend)
                if not results:
                    print(f"| {backend} | {policy} | failed: {stderr.strip()[-300:]} |")
                rows += results
            if not rows:
                continue
            accs = [r["accuracy"] for r in rows]
            per_seed = ", ".join(f"{100 * a:.1f}%" for a in accs)
            mean_acc = 100 * sum(accs) / len(accs)
            mean_s = sum(r["train_s"] for r in rows) / len(rows)
            print(
                f"| {backend} | {policy} | {per_seed} | {mean_acc:.2f}% "
                f"| {mean_s:.0f} s |",
                flush=True,
            )


if __name__ == "__main__":
    main()
