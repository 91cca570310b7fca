"""Backend-specific forward+backward timing used by the benchmark scripts.

Each backend differentiates in its own way, so this is the one place in the benchmarks
that imports TensorFlow, JAX or torch directly. Times are medians of repeated runs
after warm-up; peak memory is the process's max resident set size.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np


def set_threads(n: int = 2) -> None:
    """Pins every backend to ``n`` CPU threads (call before the first op)."""
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    elif backend == "torch":
        import torch

        torch.set_num_threads(n)


def preset_parser(doc: str, presets: tuple[str, ...], repeats: int):
    """The command line the preset benchmarks share: ``--backends``, ``--presets``,
    ``--repeats`` and the hidden ``--child`` flag of their per-backend processes."""
    import argparse

    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--presets", default=",".join(presets))
    parser.add_argument("--repeats", type=int, default=repeats)
    return parser


def child_results(script: str, args, backend: str, extra: tuple[str, ...] = ()):
    """Runs ``script --child`` (same presets and repeats) under ``backend``.

    Returns its results; prints a table row with the error when there are none.
    """
    cmd = [sys.executable, script, "--child", "--presets", args.presets]
    cmd += ["--repeats", str(args.repeats), *extra]
    results, stderr = run_child(cmd, backend)
    if not results:
        print(f"| {backend} | failed: {stderr.strip()[-300:]} |", flush=True)
    return results


def run_child(cmd: list[str], backend: str) -> tuple[list[dict], str]:
    """Runs a benchmark child process under ``backend``.

    Returns the JSON objects it printed on lines starting with ``RESULT `` and its
    stderr (for the error message when there are none).
    """
    import subprocess

    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    results = [
        json.loads(line[7:])
        for line in out.stdout.splitlines()
        if line.startswith("RESULT ")
    ]
    return results, out.stderr


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / 2**20


def make_fwd_bwd(model, x: np.ndarray) -> Callable[[], None]:
    """Returns a function running forward + backward of ``sum(model(x)**2)``.

    Gradients are taken with respect to every trainable weight and the input, the
    backend's compiled path is used where it has one (tf.function, jax.jit).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)

        @tf.function
        def step(inp):
            with tf.GradientTape() as tape:
                tape.watch(inp)
                y = model(inp, training=True)
                loss = tf.reduce_sum(tf.square(y))
            return tape.gradient(loss, [inp, *model.trainable_variables])

        return lambda: [g.numpy() for g in step(xt) if g is not None]
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def loss_fn(tv, ntv, inp):
            # The layer's __call__ under a StatelessScope, not stateless_call: that
            # skips the dtype policy's autocast, and a mixed_bfloat16 layer would
            # then run in float32.
            values = zip(model.trainable_variables, tv, strict=True)
            values = [*values, *zip(model.non_trainable_variables, ntv, strict=True)]
            with keras.StatelessScope(state_mapping=values):
                y = model(inp, training=True)
            return jnp.sum(jnp.square(y.astype(jnp.float32)))

        grad = jax.jit(jax.grad(loss_fn, argnums=(0, 2)))
        xj = jnp.asarray(x)

        def run():
            # The variables' current values (a compiled predict may have replaced
            # and freed the arrays they held when this function was made).
            trainable = [v.value for v in model.trainable_variables]
            non_trainable = [v.value for v in model.non_trainable_variables]
            return jax.block_until_ready(grad(trainable, non_trainable, xj))

        return run
    import torch

    xt = torch.tensor(x, requires_grad=True)

    def run():
        model.zero_grad() if hasattr(model, "zero_grad") else None
        y = model(xt, training=True)
        torch.sum(y * y).backward()

    return run


def median_time(fn: Callable[[], object], warmup: int = 2, repeats: int = 5) -> float:
    """Median wall time of ``fn`` in seconds after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def scoped(fn: Callable[[], object], scope) -> Callable[[], object]:
    """``fn`` run inside a fresh ``scope()`` context (also while TF / JAX trace it)."""

    def run():
        with scope():
            return fn()

    return run


def interleaved_medians(
    fns: dict[str, Callable[[], object]], warmup: int = 2, repeats: int = 5
) -> dict[str, float]:
    """Median wall time (seconds) of each function, their timed calls interleaved.

    Every repeat calls each function once, in turn, so that drift of a shared machine
    (other jobs, clock changes) hits all of them alike and their ratios stay
    meaningful even when the absolute times move.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def preset_variant_times(
    presets: list[str],
    repeats: int,
    variants: dict[str, Callable],
    policy: str = "float32",
) -> list[dict]:
    """``train_on_batch`` and ``predict_on_batch`` of each paper preset (batch 32,
    128 x 128, the Keras dtype ``policy``) under each variant's context manager
    (``variants``: name -> a context-manager factory, entered around every call and
    while tracing), one model per variant, their calls interleaved.

    Returns:
        Rows ``dict(kind="model", name="<preset> <train|infer>", <variant>=seconds)``.
    """
    import keras

    from lmuformer_keras.models import LMUFormer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 128, 128)).astype("float32")
    y = np.eye(35, dtype="float32")[rng.integers(0, 35, 32)]
    results = []
    for preset in presets:
        fns = {}
        for name, scope in variants.items():
            keras.utils.set_random_seed(0)
            model = LMUFormer.from_preset(preset, dtype=policy)
            model.compile(
                keras.optimizers.Adam(2.5e-3, beta_1=0.95, beta_2=0.999),
                keras.losses.BinaryCrossentropy(from_logits=True),
            )
            fns[f"{name}/train"] = scoped(lambda m=model: m.train_on_batch(x, y), scope)
            fns[f"{name}/infer"] = scoped(lambda m=model: m.predict_on_batch(x), scope)
        times = interleaved_medians(fns, warmup=2, repeats=repeats)
        for step in ("train", "infer"):
            results.append(
                dict(
                    kind="model",
                    name=f"{preset} {step}",
                    **{v: times[f"{v}/{step}"] for v in variants},
                )
            )
    return results


def library_vs_keras_main(
    doc: str,
    script: str,
    layer_times: Callable[[int], list[dict]],
    keras_variant: tuple[str, Callable],
    presets: tuple[str, ...],
    repeats: int,
    backends: str = "tensorflow,jax,torch",
    policy: str = "float32",
) -> None:
    """The command line of a "library layer against Keras' layer" benchmark.

    The parent prints one table row per result of each backend's child process:
    ``library``, the Keras variant and their ratio (``keras / library``, > 1: the
    library is faster). The child (2 threads) returns ``layer_times(repeats)`` and
    :func:`preset_variant_times` of the presets as the library builds them and
    under ``keras_variant`` (its name and context-manager factory), in the dtype
    ``policy``; ``backends`` is the default of ``--backends``.
    """
    import contextlib

    parser = preset_parser(doc, presets, repeats=repeats)
    parser.set_defaults(backends=backends)
    args = parser.parse_args()
    name, scope = keras_variant
    if args.child:
        set_threads(2)
        import keras

        variants = {"library": contextlib.nullcontext, name: scope}
        rows = layer_times(args.repeats) + preset_variant_times(
            args.presets.split(","), args.repeats, variants, policy
        )
        for r in rows:
            print("RESULT " + json.dumps(dict(backend=keras.backend.backend(), **r)))
        return
    print(f"| backend | timed | library | {name} | {name} / library |")
    print("|---|---|---|---|---|")
    for backend in args.backends.split(","):
        for r in child_results(script, args, backend):
            lib, other = r["library"], r[name]
            print(
                f"| {backend} | {r['kind']}: {r['name']} | {lib * 1e3:.1f} ms "
                f"| {other * 1e3:.1f} ms | {other / lib:.2f}x |",
                flush=True,
            )
