"""Where a paper preset's training step and inference spend their time, against this
machine's measured matrix-multiply rate.

Usage:
    python benchmarks/model_profile.py --baseline          # JAX and torch, float32
    python benchmarks/model_profile.py --backends torch --presets spiking_lmuformer_scv2

For each backend (its own process, 2 threads) and preset (batch 32, float32, the
``train_on_batch`` / ``predict_on_batch`` calls ``benchmarks/model_speed.py`` times;
``--baseline`` adds the reference-shaped PyTorch model in the torch process):

- wall: median of ``--repeats`` calls, not profiled;
- matrix GFLOP: FLOPs of the dots and convolutions of one call (JAX: from the
  optimized HLO module, dumped with ``--xla_dump_to``; torch: torch's count for
  mm / addmm / bmm, convolutions from their shapes, a backward convolution as its
  input and weight gradients); "at GEMM rate" is that work at the best float32 GEMM
  rate measured here with the backend's own kernel (4096 x 256 @ 256 x 1024, the
  model's expansion, and 2048^3), a lower bound on the call's time;
- op ms per class (``matrix``: dots and convolutions, ``fft``, ``layout``: transposes
  and copies, ``elementwise``: the rest, batch-norm arithmetic, activations,
  reductions, the optimizer): torch, the self time of each aten op under
  ``torch.profiler``; JAX, the thread time of each XLA op in ``jax.profiler``'s trace
  summed over the worker threads. XLA CPU runs its convolutions asynchronously on its
  Eigen pool, outside the traced op, so JAX's ``matrix`` column holds the dots only
  and its GFLOP/s columns are left out;
- matrix GFLOP/s and other GB/s (torch): the FLOPs over the matrix ops' time, and the
  operands and results of the other ops over their time (an upper bound on memory
  traffic: the (32, 128, 1024) activations are 16 MB and partly stay in cache).
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PRESETS = ("lmuformer_scv2",)
CLASSES = ("matrix", "fft", "layout", "elementwise")


# ------------------------------------------------------------------ roofline
def _prod(shape) -> int:
    count = 1
    for d in shape:
        count *= d
    return count


def _best_seconds(fn, repeats: int = 7) -> float:
    fn()
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def machine_roofline(backend: str) -> dict[str, float]:
    """This machine's float32 GEMM GFLOP/s (the model's expansion shape and 2048^3)
    and ``a + b`` GB/s (16 MB operands, the size of the model's largest activation,
    and 128 MB), measured with ``backend``'s own kernels."""
    import numpy as np

    rng = np.random.default_rng(0)
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        dot, add = jax.jit(jnp.dot), jax.jit(jnp.add)

        def timed(f, *a):
            a = [jnp.asarray(v) for v in a]
            return _best_seconds(lambda: jax.block_until_ready(f(*a)))
    else:
        import torch

        dot, add = torch.mm, torch.add

        def timed(f, *a):
            a = [torch.from_numpy(v) for v in a]
            return _best_seconds(lambda: f(*a))

    out = {}
    for key, (m, k, n) in {"model": (4096, 256, 1024), "2048": (2048,) * 3}.items():
        a = rng.normal(size=(m, k)).astype("float32")
        b = rng.normal(size=(k, n)).astype("float32")
        out[f"gemm_{key}_gflops"] = 2 * m * k * n / timed(dot, a, b) / 1e9
    for mb in (16, 128):
        x, y = (rng.normal(size=mb * 2**18).astype("float32") for _ in range(2))
        out[f"add_{mb}mb_gbs"] = 3 * x.nbytes / timed(add, x, y) / 1e9
    return out


# ------------------------------------------------------------------ JAX / HLO
_INSTR = re.compile(r"^\s*(?:ROOT )?%(\S+) = (\w+)\[([\d,]*)\]\S* (\S+?)\((.*)$")


def _read_hlo(path: str) -> tuple[dict, dict]:
    """Instructions of an optimized HLO module: name -> (op, shape, operands, rest of
    line, computation), and computation -> its instruction names."""
    instrs, computations, current = {}, collections.defaultdict(list), None
    with open(path) as f:
        for line in f:
            if line and not line[0].isspace() and "{" in line:
                current = line.split()[0].lstrip("%")
                if current == "ENTRY":
                    current = line.split()[1].lstrip("%")
                continue
            m = _INSTR.match(line)
            if not m:
                continue
            name, _, dims, op, rest = m.groups()
            shape = [int(d) for d in dims.split(",") if d]
            operands = re.findall(r"%([\w.\-]+)", rest.split("),")[0])
            instrs[name] = (op, shape, operands, rest, current)
            computations[current].append(name)
    return instrs, computations


def _flops(instrs: dict, name: str) -> float:
    """FLOPs of one dot or convolution instruction, from its shapes."""
    op, shape, operands, rest, _ = instrs[name]
    out = _prod(shape)
    lhs = instrs[operands[0]][1] if operands and operands[0] in instrs else []
    if op == "dot":
        dims = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", rest)
        axes = dims.group(1).split(",") if dims and dims.group(1) else []
        return 2.0 * out * _prod(lhs[int(d)] for d in axes)
    window = re.search(r"window=\{size=([\dx]+)", rest)
    taps = _prod(int(s) for s in window.group(1).split("x")) if window else 1
    labels = re.search(r"dim_labels=(\w+)_(\w+)->", rest)
    rhs = instrs[operands[1]][1] if len(operands) > 1 and operands[1] in instrs else []
    k = rhs[labels.group(2).index("i")] if labels and rhs else 1
    return 2.0 * out * taps * k


def _classify(instrs: dict, computations: dict, name: str) -> tuple[str, float]:
    """(op class, FLOPs) of a top-level instruction, looking inside its fusion."""
    _, _, _, rest, _ = instrs[name]
    called = re.findall(r"calls=%([\w.\-]+)", rest)
    inner = [n for c in called for n in computations.get(c, [])] or [name]
    ops = {instrs[n][0] for n in inner}
    flops = sum(
        _flops(instrs, n) for n in inner if instrs[n][0] in ("dot", "convolution")
    )
    if ops & {"dot", "convolution"}:
        return "matrix", flops
    if "fft" in ops:
        return "fft", 0.0
    if ops <= {"copy", "transpose", "bitcast", "parameter", "slice", "pad", "reshape"}:
        return "layout", 0.0
    return "elementwise", 0.0


def profile_jax(fn, calls: int, dump_dir: str, module_key: str) -> dict:
    """Profiles ``calls`` calls of ``fn`` under JAX: per-class thread time and FLOPs
    (no byte counts: the report gives JAX no GB/s, see the module docstring)."""
    import jax

    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            wall = (time.perf_counter() - start) / calls
        (trace_file,) = glob.glob(f"{trace_dir}/**/*.trace.json.gz", recursive=True)
        with gzip.open(trace_file) as f:
            events = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]
    modules = sorted(
        glob.glob(f"{dump_dir}/*{module_key}.cpu_after_optimizations.txt"),
        key=os.path.getmtime,
    )
    if not modules:
        raise RuntimeError(f"no optimized HLO module *{module_key}* in {dump_dir}")
    instrs, computations = _read_hlo(modules[-1])
    seconds = collections.Counter()
    flops = collections.Counter()
    for e in events:
        name = e["name"]
        if name not in instrs:
            continue
        cls, f = _classify(instrs, computations, name)
        seconds[cls] += e["dur"] / 1e6 / calls
        flops[cls] += f / calls
    return dict(profiled_wall_s=wall, seconds=seconds, flops=flops, bytes={})


# ------------------------------------------------------------------ torch
_TORCH_GEMM = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")
_TORCH_CONV = ("aten::mkldnn_convolution", "aten::_slow_conv2d_forward")
_TORCH_LAYOUT = ("aten::copy_", "aten::contiguous", "aten::clone", "aten::cat")


def _torch_conv_flops(key: str, shapes: list) -> float:
    """FLOPs of one convolution (forward, or backward: input and weight gradients).

    Forward inputs: ``(input, weight, ...)``; backward: ``(grad_out, input, weight,
    ...)``. The weight is ``(out, in / groups, *kernel)``, stride 1.
    """
    if key == "aten::convolution_backward":
        grad_out, weight = shapes[0], shapes[2]
        return 2 * 2.0 * _prod(grad_out) * _prod(weight[1:])
    inputs, weight = shapes[0], shapes[1]
    spatial = [i - k + 1 for i, k in zip(inputs[2:], weight[2:], strict=True)]
    return 2.0 * inputs[0] * weight[0] * _prod(spatial) * _prod(weight[1:])


def _torch_class(key: str) -> str | None:
    if not key.startswith("aten::"):
        return None
    if "fft" in key:
        return "fft"
    if key in _TORCH_GEMM or key in _TORCH_CONV or key == "aten::convolution_backward":
        return "matrix"
    if key in _TORCH_LAYOUT:
        return "layout"
    return "elementwise"


def profile_torch(fn, calls: int) -> dict:
    """Profiles ``calls`` calls of ``fn`` under torch: per-class self time, FLOPs of
    GEMMs (torch's count) and convolutions (from the shapes), bytes of the rest."""
    from torch.profiler import ProfilerActivity, profile

    with profile(
        activities=[ProfilerActivity.CPU], record_shapes=True, with_flops=True
    ) as prof:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        wall = (time.perf_counter() - start) / calls
    seconds = collections.Counter()
    flops, nbytes = collections.Counter(), collections.Counter()
    for evt in prof.key_averages(group_by_input_shape=True):
        cls = _torch_class(evt.key)
        if cls is None or evt.self_cpu_time_total <= 0:
            continue
        shapes = [s if isinstance(s, list) else [] for s in evt.input_shapes or []]
        seconds[cls] += evt.self_cpu_time_total / 1e6 / calls
        if evt.key in _TORCH_GEMM:
            flops[cls] += (evt.flops or 0) / calls
        elif cls == "matrix":
            flops[cls] += _torch_conv_flops(evt.key, shapes) * evt.count / calls
        else:
            # Operands plus a result the size of the largest one (float32).
            sizes = [4 * _prod(s) for s in shapes if s]
            nbytes[cls] += (sum(sizes) + max(sizes, default=0)) * evt.count / calls
    return dict(profiled_wall_s=wall, seconds=seconds, flops=flops, bytes=nbytes)


# ------------------------------------------------------------------ driver
def _keras_steps(preset: str, x, y) -> dict:
    """The compiled train and predict functions of a Keras preset, with the name of
    the jitted module each one runs on JAX."""
    import keras

    from lmuformer_keras.models import LMUFormer

    keras.utils.set_random_seed(0)
    model = LMUFormer.from_preset(preset)
    model.compile(
        keras.optimizers.Adam(2.5e-3, beta_1=0.95, beta_2=0.999),
        keras.losses.BinaryCrossentropy(from_logits=True),
    )
    return {
        "train": (lambda: model.train_on_batch(x, y), "jit_train_step"),
        "infer": (lambda: model.predict_on_batch(x), "jit_predict_step"),
    }


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, HERE)
    import timing

    timing.set_threads(2)
    import keras
    import numpy as np

    from lmuformer_keras.models import presets

    backend = keras.backend.backend()
    roof = machine_roofline(backend)
    rng = np.random.default_rng(0)
    for preset in args.presets.split(","):
        config = presets.preset_config(preset)
        shape = (32, config["num_frames"], config["num_features"])
        x = rng.normal(size=shape).astype("float32")
        y = np.eye(config["num_classes"], dtype="float32")
        y = y[rng.integers(0, config["num_classes"], 32)]
        models = {"keras": _keras_steps(preset, x, y)}
        if backend == "torch" and args.baseline:
            from model_speed import baseline_steps  # beside this script

            train, infer = baseline_steps(preset, x, y)
            models["baseline"] = {"train": (train, None), "infer": (infer, None)}
        for model, steps in models.items():
            for mode, (fn, module_key) in steps.items():
                wall = timing.median_time(fn, warmup=3, repeats=args.repeats)
                if backend == "jax":
                    prof = profile_jax(fn, args.repeats, args.dump_dir, module_key)
                else:
                    prof = profile_torch(fn, args.repeats)
                result = dict(
                    backend=backend, preset=preset, model=model, mode=mode, wall_s=wall
                )
                print(
                    "RESULT " + json.dumps({**prof, **result, "roofline": roof}),
                    flush=True,
                )


def row(r: dict) -> str:
    """One markdown row: wall time (not profiled), matrix FLOPs and their time at the
    GEMM rate, the profiled op time per class, and the rates the classes reach."""
    roof = r["roofline"]
    gemm = max(roof["gemm_model_gflops"], roof["gemm_2048_gflops"])
    seconds, wall_ms = r["seconds"], r["wall_s"] * 1e3
    gflop = r["flops"].get("matrix", 0.0) / 1e9
    bound_ms = gflop / gemm * 1e3
    split = " / ".join(f"{seconds.get(c, 0.0) * 1e3:.0f}" for c in CLASSES)
    rate = gbs = "-"
    if r["backend"] == "torch":  # JAX: see the module docstring
        matrix_s = seconds.get("matrix", 0.0)
        other_s = sum(seconds.get(c, 0.0) for c in CLASSES[1:])
        other_gb = sum(r["bytes"].get(c, 0.0) for c in CLASSES[1:]) / 1e9
        rate = f"{gflop / matrix_s:.0f}" if matrix_s else "-"
        gbs = f"{other_gb / other_s:.0f}" if other_s else "-"
    return (
        f"| {r['backend']} | {r['model']}: {r['preset']} | {r['mode']} "
        f"| {wall_ms:.0f} ms | {gflop:.1f} | {bound_ms:.0f} ms "
        f"({bound_ms / wall_ms:.0%}) | {split} | {rate} | {gbs} |"
    )


def main() -> None:
    sys.path.insert(0, HERE)
    import timing

    parser = timing.preset_parser(__doc__, PRESETS, repeats=5)
    parser.set_defaults(backends="jax,torch")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="Also profile the reference-shaped PyTorch model (torch process).",
    )
    parser.add_argument("--dump_dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(
        "| backend | model | step | wall | matrix GFLOP | at GEMM rate (of wall) "
        "| op ms: matrix / fft / layout / elementwise | matrix GFLOP/s "
        "| other GB/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    roofs = {}
    for backend in args.backends.split(","):
        if backend not in ("jax", "torch"):
            parser.error(f"--backends: {backend!r} is not profiled (jax, torch)")
        extra = ("--baseline",) if args.baseline else ()
        with tempfile.TemporaryDirectory() as dump_dir:
            flags = os.environ.get("XLA_FLAGS", "")
            os.environ["XLA_FLAGS"] = (
                f"{flags} --xla_dump_to={dump_dir} --xla_dump_hlo_as_text "
                "--xla_dump_hlo_module_re=.*_step"
            ).strip()
            try:
                results = timing.child_results(
                    __file__, args, backend, ("--dump_dir", dump_dir, *extra)
                )
            finally:
                os.environ["XLA_FLAGS"] = flags
        for r in results:
            roofs[backend] = r["roofline"]
            print(row(r), flush=True)
    for backend, roof in roofs.items():
        print(
            f"roofline {backend}: GEMM {roof['gemm_model_gflops']:.0f} GFLOP/s "
            f"(4096x256 @ 256x1024), {roof['gemm_2048_gflops']:.0f} GFLOP/s "
            f"(2048^3); a + b {roof['add_16mb_gbs']:.1f} GB/s (16 MB), "
            f"{roof['add_128mb_gbs']:.1f} GB/s (128 MB)"
        )


if __name__ == "__main__":
    main()
