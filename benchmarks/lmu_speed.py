"""Forward+backward speed of LMUParallel (each conv_mode) vs RNN(LMUCell).

Usage:
    python benchmarks/lmu_speed.py                 # full table, all backends
    python benchmarks/lmu_speed.py --backends jax --lengths 128,784
    python benchmarks/lmu_speed.py --crossover     # direct-vs-fft crossover for "auto"

Each (backend, form, hidden) runs in its own process (the Keras backend is fixed at
import, and peak memory is per process). Batch 32, order 256, memory_d 1, theta =
T / 2, 2 threads; times are medians after warm-up. Ratios are RNN time / parallel
time from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FORMS = ("rnn", "fft", "direct", "auto")


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, HERE)
    import timing

    timing.set_threads(2)
    import keras
    import numpy as np

    from lmuformer_keras.layers import LMUCell, LMUParallel

    rng = np.random.default_rng(0)
    for length in [int(t) for t in args.lengths.split(",")]:
        hidden = keras.layers.Dense(256, activation="relu") if args.hidden else None
        kwargs = dict(memory_d=1, order=256, theta=length / 2, hidden_cell=hidden)
        if args.form == "rnn":
            layer = keras.layers.RNN(LMUCell(**kwargs), return_sequences=True)
        else:
            layer = LMUParallel(**kwargs, return_sequences=True, conv_mode=args.form)
        x = rng.normal(size=(args.batch, length, 1)).astype("float32")
        inp = keras.Input((length, 1), batch_size=args.batch)
        model = keras.Model(inp, layer(inp))
        try:
            fn = timing.make_fwd_bwd(model, x)
            repeats = 3 if (args.form == "rnn" and length > 1000) else 5
            seconds = timing.median_time(
                fn, warmup=1 if length > 1000 else 2, repeats=repeats
            )
            result = {"seconds": seconds}
        except Exception as e:  # noqa: BLE001 - reported in the table
            result = {"error": f"{type(e).__name__}: {str(e)[:80]}"}
        result.update(
            backend=keras.backend.backend(),
            form=args.form,
            hidden=args.hidden,
            length=length,
            peak_rss_mb=timing.peak_rss_mb(),
        )
        print("RESULT " + json.dumps(result), flush=True)


def run_child(backend, form, hidden, lengths, batch):
    import timing  # beside this script

    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--form",
        form,
        "--lengths",
        lengths,
        "--batch",
        str(batch),
    ] + (["--hidden"] if hidden else [])
    results, stderr = timing.run_child(cmd, backend)
    if not results:
        print(stderr[-2000:], file=sys.stderr)
    return results


def fmt(r):
    if r is None:
        return "-"
    if "error" in r:
        return "failed"
    return f"{r['seconds'] * 1000:.1f} ms"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--form", default="fft")
    p.add_argument("--hidden", action="store_true")
    p.add_argument("--backends", default="tensorflow,jax,torch")
    p.add_argument("--lengths", default="128,784,4096")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument(
        "--crossover",
        action="store_true",
        help="time fft vs direct at short lengths (memory only)",
    )
    args = p.parse_args()
    if args.child:
        child(args)
        return
    if args.crossover:
        lengths = "16,32,64,96,128,192,256"
        print("| backend | T | fft | direct | faster |\n|---|---|---|---|---|")
        for backend in args.backends.split(","):
            res = {
                f: {
                    r["length"]: r
                    for r in run_child(backend, f, False, lengths, args.batch)
                }
                for f in ("fft", "direct")
            }
            for t in map(int, lengths.split(",")):
                a, b = res["fft"].get(t), res["direct"].get(t)
                faster = (
                    "-"
                    if not (a and b and "seconds" in a and "seconds" in b)
                    else ("direct" if b["seconds"] < a["seconds"] else "fft")
                )
                print(f"| {backend} | {t} | {fmt(a)} | {fmt(b)} | {faster} |")
        return
    print(
        "| backend | hidden | T | RNN(LMUCell) | fft | direct | auto | RNN/auto "
        "| peak MB rnn/fft/direct |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for backend in args.backends.split(","):
        for hidden in (False, True):
            res = {}
            for form in FORMS:
                lengths = args.lengths
                if form == "direct":  # O(T^2) memory: 4096 needs ~2 GB per tensor.
                    lengths = ",".join(t for t in lengths.split(",") if int(t) <= 1024)
                res[form] = {
                    r["length"]: r
                    for r in run_child(backend, form, hidden, lengths, args.batch)
                }
            for t in map(int, args.lengths.split(",")):
                rows = [res[f].get(t) for f in FORMS]
                rnn, auto = rows[0], rows[3]
                ratio = (
                    f"{rnn['seconds'] / auto['seconds']:.1f}x"
                    if rnn and auto and "seconds" in rnn and "seconds" in auto
                    else "-"
                )
                mem = "/".join(
                    f"{r['peak_rss_mb']:.0f}" if r else "-" for r in rows[:3]
                )
                print(
                    f"| {backend} | {'Dense(256,relu)' if hidden else 'none'} | {t} "
                    f"| {' | '.join(fmt(r) for r in rows)} | {ratio} | {mem} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
