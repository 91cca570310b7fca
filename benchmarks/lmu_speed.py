"""Forward+backward speed of LMUParallel (each exact form) vs RNN(LMUCell).

Usage:
    python benchmarks/lmu_speed.py                 # full table, all backends
    python benchmarks/lmu_speed.py --backends jax --lengths 128,784
    python benchmarks/lmu_speed.py --crossover     # the table of conv_mode="auto"
    python benchmarks/lmu_speed.py --chunks        # chunk length of "chunked"

One process per (backend, hidden): the Keras backend is fixed at import. Inside it,
for each length, every form is built with the same weights and the forms' timed
calls are interleaved (``timing.interleaved_medians``), so that the load of a shared
machine hits them alike and the ratios come from one run. Batch 32, order 256,
memory_d 1, theta = T / 2, 2 threads (``--threads``); medians after warm-up.
Ratios are RNN time / parallel time. Peak RSS is the child process's (all its
forms together).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FORMS = ("rnn", "fft", "direct", "chunked")
DIRECT_MAX_LENGTH = 1024  # O(T^2) memory: 4096 needs ~2 GB per tensor.


def _form_kwargs(form: str) -> dict:
    """``"chunked:16"`` -> conv_mode "chunked" with chunk_length 16."""
    if ":" in form:
        mode, chunk = form.split(":")
        return dict(conv_mode=mode, chunk_length=int(chunk))
    return dict(conv_mode=form)


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, HERE)
    import timing

    timing.set_threads(args.threads)
    import keras
    import numpy as np

    from lmuformer_keras.layers import LMUCell, LMUParallel, lmu_memory

    rng = np.random.default_rng(0)
    backend = keras.backend.backend()
    for length in [int(t) for t in args.lengths.split(",")]:
        fns, weights = {}, None
        x = rng.normal(size=(args.batch, length, 1)).astype("float32")
        for form in args.forms.split(","):
            if form == "direct" and length > DIRECT_MAX_LENGTH:
                continue
            hidden = keras.layers.Dense(256, activation="relu") if args.hidden else None
            kwargs = dict(memory_d=1, order=256, theta=length / 2, hidden_cell=hidden)
            if form == "rnn":
                layer = keras.layers.RNN(LMUCell(**kwargs), return_sequences=True)
            else:
                layer = LMUParallel(
                    **kwargs, return_sequences=True, **_form_kwargs(form)
                )
            inp = keras.Input((length, 1), batch_size=args.batch)
            model = keras.Model(inp, layer(inp))
            if weights is None:
                weights = model.get_weights()
            model.set_weights(weights)
            fns[form] = timing.make_fwd_bwd(model, x)
        long = length > 1000
        try:
            times = timing.interleaved_medians(
                fns, warmup=1, repeats=max(1, args.repeats - (1 if long else 0))
            )
        except Exception as e:  # noqa: BLE001 - reported in the table
            times = {f: None for f in fns}
            print(f"ERROR {type(e).__name__}: {str(e)[:200]}", file=sys.stderr)
        auto = lmu_memory.resolve_conv_mode("auto", length, backend, training=True)
        print(
            "RESULT "
            + json.dumps(
                dict(
                    backend=backend,
                    hidden=args.hidden,
                    length=length,
                    seconds=times,
                    auto=auto,
                    peak_rss_mb=timing.peak_rss_mb(),
                )
            ),
            flush=True,
        )


def run_child(backend, forms, hidden, lengths, batch, repeats, threads=2):
    import timing  # beside this script

    if threads == 1:  # XLA's CPU thread pool ignores OMP_NUM_THREADS.
        os.environ["XLA_FLAGS"] = (
            "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )
    cmd = [sys.executable, __file__, "--child", "--forms", forms, "--lengths", lengths]
    cmd += ["--batch", str(batch), "--repeats", str(repeats)]
    cmd += ["--threads", str(threads)]
    cmd += ["--hidden"] if hidden else []
    results, stderr = timing.run_child(cmd, backend)
    if not results or "ERROR" in stderr:
        print(stderr[-2000:], file=sys.stderr)
    return results


def fmt(seconds):
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--forms", default=",".join(FORMS))
    p.add_argument("--hidden", action="store_true")
    p.add_argument("--backends", default="tensorflow,jax,torch")
    p.add_argument("--lengths", default="128,784,4096")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="CPU threads per backend (1 on a machine other jobs load: there "
        "2 threads make torch's small products 100x slower, waiting on each other)",
    )
    p.add_argument(
        "--crossover",
        action="store_true",
        help="time fft, direct and chunked by length (memory only)",
    )
    p.add_argument(
        "--chunks",
        action="store_true",
        help="time conv_mode='chunked' at chunk lengths 16-128 (memory only)",
    )
    args = p.parse_args()
    if args.child:
        child(args)
        return
    if args.crossover or args.chunks:
        if args.crossover:
            lengths, forms = "32,64,128,256,512", "fft,direct,chunked"
        else:
            lengths, forms = "784,4096", "chunked:16,chunked:32,chunked:64,chunked:128"
        names = forms.split(",")
        print(f"| backend | T | {' | '.join(names)} | fastest | auto |")
        print("|---" * (len(names) + 4) + "|")
        for backend in args.backends.split(","):
            rows = run_child(
                backend, forms, False, lengths, args.batch, 3, args.threads
            )
            for r in rows:
                t = r["seconds"]
                timed = {f: s for f, s in t.items() if s is not None}
                best = min(timed, key=timed.get) if timed else "-"
                print(
                    f"| {backend} | {r['length']} | "
                    + " | ".join(fmt(t.get(f)) for f in names)
                    + f" | {best} | {r['auto']} |",
                    flush=True,
                )
        return
    names = args.forms.split(",")
    print(f"| backend | hidden | T | {' | '.join(names)} | auto | RNN/auto | peak MB |")
    print("|---" * (len(names) + 6) + "|")
    for backend in args.backends.split(","):
        for hidden in (False, True):
            rows = run_child(
                backend,
                args.forms,
                hidden,
                args.lengths,
                args.batch,
                args.repeats,
                args.threads,
            )
            for r in rows:
                t = r["seconds"]
                rnn, auto = t.get("rnn"), t.get(r["auto"])
                ratio = f"{rnn / auto:.1f}x" if rnn and auto else "-"
                print(
                    f"| {backend} | {'Dense(256,relu)' if hidden else 'none'} "
                    f"| {r['length']} | "
                    + " | ".join(fmt(t.get(f)) for f in names)
                    + f" | {r['auto']} | {ratio} | {r['peak_rss_mb']:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
