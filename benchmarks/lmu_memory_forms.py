"""The LMU memory's forms side by side: ``m_t @ W`` for LMUFormer's hidden layer.

Usage:
    python benchmarks/lmu_memory_forms.py                       # all backends
    python benchmarks/lmu_memory_forms.py --backends tensorflow --lengths 128
    python benchmarks/lmu_memory_forms.py --dtype_policy mixed_bfloat16

Times ``y_t = m_t @ W`` (memory ``m = LMUParallel.memory(u)``, order 256, one
scalar input ``u``, ``W`` of 256 x 256: the non-spiking LMUFormer token mixer's
memory half of its hidden layer) for batch 32, inference (``predict_on_batch``) and
training (forward + backward, ``timing.make_fwd_bwd``), in these forms:

- ``memory @ W, toeplitz``: the memories by the Toeplitz product, then the product;
- ``projected, toeplitz``: ``W`` folded into the impulse response
  (``LMUParallel.projected_memory``), one Toeplitz product of 256 outputs;
- ``projected, convolution``: the same sum by the backend's convolution op;
- ``projected, fft``: the same by FFT.

Each backend runs in its own process pinned to 2 threads; within it the forms'
timed calls are interleaved (``timing.interleaved_medians``), so the ratios are
side by side. This is what chose ``LMUParallel.projected_memory`` and
``lmu_memory.DIRECT_AS_CONVOLUTION_AT_INFERENCE``.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FORMS = (
    ("memory @ W, toeplitz", False, "direct"),
    ("projected, toeplitz", True, "direct"),
    ("projected, convolution", True, "convolution"),
    ("projected, fft", True, "fft"),
)


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, HERE)
    import timing

    timing.set_threads(2)
    import json

    import keras
    import numpy as np

    from lmuformer_keras import backend_utils
    from lmuformer_keras.layers import LMUParallel

    keras.mixed_precision.set_global_policy(args.dtype_policy)

    class FormLMU(LMUParallel):
        """LMUParallel that computes its memory in one given form."""

        def __init__(self, form: str, **kwargs):
            super().__init__(**kwargs)
            self.form = form

        def _conv_form(self, static_length, training, projected=False) -> str:
            return self.form

    class MemoryProduct(keras.layers.Layer):
        """``memory(u) @ W`` as written, or projected."""

        def __init__(self, form: str, projected: bool, length: int, **kwargs):
            super().__init__(**kwargs)
            self.projected = projected
            self.lmu = FormLMU(
                form,
                memory_d=1,
                order=256,
                theta=length / 2,
                kernel_initializer=None,
                return_sequences=True,
            )

        def build(self, input_shape):
            self.lmu.build(input_shape)
            self.w = self.add_weight(shape=(256, 256), name="w")

        def call(self, u, training=None):
            if self.projected:
                return self.lmu.projected_memory(u, self.w, training)
            w = keras.ops.cast(self.w, self.compute_dtype)
            return backend_utils.matmul(self.lmu.memory(u, training), w)

    rng = np.random.default_rng(0)
    for length in [int(t) for t in args.lengths.split(",")]:
        x = rng.uniform(size=(32, length, 1)).astype("float32")
        fns = {}
        for name, projected, form in FORMS:
            inp = keras.Input((length, 1), batch_size=32)
            model = keras.Model(inp, MemoryProduct(form, projected, length)(inp))
            fns[f"{name}/infer"] = lambda m=model, a=x: m.predict_on_batch(a)
            fns[f"{name}/train"] = timing.make_fwd_bwd(model, x)
        times = timing.interleaved_medians(fns, warmup=2, repeats=args.repeats)
        print(
            "RESULT "
            + json.dumps(
                {"backend": keras.backend.backend(), "length": length, "times": times}
            ),
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--backends", default="tensorflow,jax,torch")
    p.add_argument("--lengths", default="32,128,512")
    p.add_argument("--dtype_policy", default="float32")
    p.add_argument("--repeats", type=int, default=9)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    sys.path.insert(0, HERE)
    import timing

    script = os.path.abspath(__file__)
    base = "memory @ W, toeplitz"
    print(f"m_t @ W, batch 32, order 256, W 256 x 256, {args.dtype_policy}, 2 threads")
    print("ms (ratio to 'memory @ W, toeplitz' in the same run; > 1: faster)\n")
    print(f"| backend | T | pass | {' | '.join(f[0] for f in FORMS)} |")
    print("|---|---|---|" + "---|" * len(FORMS))
    for backend in args.backends.split(","):
        cmd = [sys.executable, script, "--child", "--lengths", args.lengths]
        cmd += ["--dtype_policy", args.dtype_policy, "--repeats", str(args.repeats)]
        results, err = timing.run_child(cmd, backend)
        if not results:
            print(f"| {backend} | error: {err.strip().splitlines()[-1:]} |")
            continue
        for r in results:
            t = r["times"]
            for phase in ("infer", "train"):
                cells = []
                for name, _, _ in FORMS:
                    s = t.get(f"{name}/{phase}")
                    ref = t[f"{base}/{phase}"]
                    cells.append(
                        "-" if s is None else f"{1e3 * s:.2f} ({ref / s:.2f}x)"
                    )
                print(f"| {backend} | {r['length']} | {phase} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
