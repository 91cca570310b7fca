"""LIF forward+backward speed next to Dense + ReLU, on every backend.

Usage: ``python benchmarks/lif_speed.py [--backends tensorflow,jax,torch]``

Each backend runs in its own subprocess (the Keras backend is fixed at import), pinned
to 2 threads. For each shape ``(batch, time, features)`` it times the gradient of
``sum(y * y)`` w.r.t. the input and the weights, for ``y = LIF(x)`` and for
``y = relu(Dense(features)(x))``, on the path training uses: ``tf.function`` with XLA
(``fit(jit_compile=True)``) and without (Keras' default on CPU; the LIF's own loop is
then still XLA-compiled, see ``backend_utils.time_scan``), ``jax.jit``, torch eager.
LIF and Dense runs are interleaved after warm-up, and the table reports medians,
so load on the machine affects both alike. Goal: LIF within 3x of Dense + ReLU at T=128.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SHAPES = [(32, 128, 256), (32, 784, 256)]
THREADS = 2


def _set_threads(backend: str) -> None:
    """Pins the backend's intra- and inter-op threads to :data:`THREADS`."""
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(THREADS)
    elif backend == "torch":
        import torch

        torch.set_num_threads(THREADS)


def _fwd_bwd(backend: str, layer, x_np, mode):
    """A callable computing the gradient of ``sum(y * y)``, ``y = layer(x)``.

    Args:
        backend: the Keras backend.
        layer: a built Keras layer.
        x_np: the input, a NumPy array.
        mode: TensorFlow: ``"xla"`` (``jit_compile=True``) or ``"graph"``;
            ``None`` on the other backends.

    Returns:
        A callable returning the gradients w.r.t. the input and the weights.
    """
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x_np)

        @tf.function(jit_compile=(mode == "xla"))
        def fwd_bwd(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
                loss = tf.reduce_sum(y * y)
            return tape.gradient(loss, [x, *layer.trainable_variables])

        return lambda: [g.numpy() for g in fwd_bwd(x)]
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        x = jnp.asarray(x_np)
        weights = [v.value for v in layer.trainable_variables]

        def loss(weights, x):
            y, _ = layer.stateless_call(weights, [], x)
            return jnp.sum(y * y)

        fwd_bwd = jax.jit(jax.grad(loss, argnums=(0, 1)))
        return lambda: jax.block_until_ready(fwd_bwd(weights, x))
    import torch

    x0 = torch.tensor(x_np)

    def run():
        x = x0.clone().requires_grad_(True)
        y = layer(x)
        (y * y).sum().backward()
        for v in layer.trainable_variables:
            v.value.grad = None
        return x.grad

    return run


def _interleaved_times(fns: dict, repeats: int) -> tuple[dict, list[float]]:
    """Three warm-up calls each, then ``repeats`` interleaved timed rounds.

    Args:
        fns: ``{"lif": callable, "dense": callable}``.
        repeats: timed rounds.

    Returns:
        ``(seconds per name, lif / dense ratio per round)``.
    """
    for fn in fns.values():
        for _ in range(3):
            fn()
    times = {name: [] for name in fns}
    ratios = []
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
        ratios.append(times["lif"][-1] / times["dense"][-1])
    return times, ratios


def _child(shapes, repeats):
    """Times LIF and Dense + ReLU under this process's backend; prints the rows.

    Args:
        shapes: ``(batch, time, features)`` shapes.
        repeats: timed rounds per shape.
    """
    import keras
    import numpy as np

    backend = keras.backend.backend()
    _set_threads(backend)

    from lmuformer_keras.layers.lif import LIF

    modes = ["graph", "xla"] if backend == "tensorflow" else [None]
    rows = []
    for mode in modes:
        for shape in shapes:
            x_np = np.random.default_rng(0).normal(size=shape).astype("float32")
            lif = LIF()
            dense = keras.layers.Dense(shape[-1], activation="relu")
            lif.build(shape)
            dense.build(shape)
            fns = {
                "lif": _fwd_bwd(backend, lif, x_np, mode),
                "dense": _fwd_bwd(backend, dense, x_np, mode),
            }
            times, ratios = _interleaved_times(fns, repeats)
            label = backend if mode is None else f"{backend} ({mode})"
            rows.append(
                {
                    "backend": label,
                    "shape": list(shape),
                    "lif_ms": 1e3 * statistics.median(times["lif"]),
                    "dense_ms": 1e3 * statistics.median(times["dense"]),
                    "ratio": statistics.median(ratios),
                }
            )
    print("RESULT " + json.dumps(rows), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(SHAPES, args.repeats)
        return

    rows = []
    for backend in args.backends.split(","):
        env = dict(
            os.environ,
            KERAS_BACKEND=backend,
            OMP_NUM_THREADS=str(THREADS),
            TF_CPP_MIN_LOG_LEVEL="3",
        )
        cmd = [sys.executable, __file__, "--child", "--repeats", str(args.repeats)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            print(f"{backend}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.extend(json.loads(lines[-1][len("RESULT ") :]))

    print(
        "| backend | shape (B, T, D) | LIF fwd+bwd ms | Dense+ReLU fwd+bwd ms | ratio |"
    )
    print("|---|---|---:|---:|---:|")
    for r in rows:
        shape = "(" + ", ".join(str(d) for d in r["shape"]) + ")"
        print(
            f"| {r['backend']} | {shape} | {r['lif_ms']:.1f} | {r['dense_ms']:.1f} "
            f"| {r['ratio']:.2f} |"
        )


if __name__ == "__main__":
    main()
