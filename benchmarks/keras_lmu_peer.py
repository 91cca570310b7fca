"""LMUParallel against keras-lmu (the TensorFlow LMU library) in one process.

keras-lmu is a peer, not a dependency: it runs in a benchmark-only virtual
environment that sees this machine's TensorFlow and Keras 3 (keras-lmu 0.9.0 runs
on Keras 3's TensorFlow backend)::

    python -m venv --system-site-packages /tmp/klmu-venv
    /tmp/klmu-venv/bin/pip install --no-deps keras-lmu==0.9.0
    KERAS_BACKEND=tensorflow PYTHONPATH=. \\
        /tmp/klmu-venv/bin/python benchmarks/keras_lmu_peer.py --threads 1

Only keras-lmu's public layers are called: its feed-forward ``LMUFeedforward``
with ``conv_mode="fft"`` / ``"raw"`` and default ``truncate_ir=1e-4``, and
``LMUCell`` in an RNN. Forward + backward of
``sum(y^2)`` (gradients for the input and every weight), batch 32, order 256,
memory_d 1, theta T / 2, the ``tf.function`` path; every variant's timed calls are
interleaved (``timing.interleaved_medians``), so the ratios come from one run.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def peer_fwd_bwd(layer, x):
    """Forward + backward of a keras-lmu layer, as ``timing.make_fwd_bwd``."""
    import tensorflow as tf

    xt = tf.constant(x)
    layer(xt)  # build

    @tf.function
    def step(inp):
        with tf.GradientTape() as tape:
            tape.watch(inp)
            loss = tf.reduce_sum(tf.square(layer(inp, training=True)))
        return tape.gradient(loss, [inp, *layer.trainable_variables])

    return lambda: [g.numpy() for g in step(xt) if g is not None]


VARIANTS = ("ours_rnn", "ours_auto", "peer_rnn", "peer_fft", "peer_raw")


def _hidden_cell(hidden: bool):
    """A fresh ``Dense(256, relu)`` hidden cell, or ``None``."""
    import keras

    return keras.layers.Dense(256, activation="relu") if hidden else None


def fwd_bwd_variants(x, hidden: bool, peer_modes=("fft", "raw")) -> dict:
    """Forward + backward callables of the variants in :data:`VARIANTS`.

    Args:
        x: the input ``(32, T, 1)``.
        hidden: give every LMU a ``Dense(256, relu)`` hidden cell.
        peer_modes: the ``LMUFeedforward`` conv modes to build.

    Returns:
        Variant name -> a callable running forward + backward once.
    """
    import keras
    import keras_lmu
    import timing

    from lmuformer_keras.layers import LMUCell, LMUParallel

    length = x.shape[1]
    kw = dict(memory_d=1, order=256, theta=length / 2)
    fns = {}
    inp = keras.Input((length, 1), batch_size=32)
    for name, layer in (
        (
            "ours_rnn",
            keras.layers.RNN(
                LMUCell(**kw, hidden_cell=_hidden_cell(hidden)), return_sequences=True
            ),
        ),
        (
            "ours_auto",
            LMUParallel(**kw, hidden_cell=_hidden_cell(hidden), return_sequences=True),
        ),
    ):
        fns[name] = timing.make_fwd_bwd(keras.Model(inp, layer(inp)), x)
    fns["peer_rnn"] = peer_fwd_bwd(
        keras.layers.RNN(
            keras_lmu.LMUCell(**kw, hidden_cell=_hidden_cell(hidden)),
            return_sequences=True,
        ),
        x,
    )
    for mode in peer_modes:
        fns[f"peer_{mode}"] = peer_fwd_bwd(
            keras_lmu.LMUFeedforward(
                **kw,
                hidden_cell=_hidden_cell(hidden),
                return_sequences=True,
                conv_mode=mode,
            ),
            x,
        )
    return fns


def table_row(hidden: bool, length: int, seconds: dict) -> str:
    """One Markdown row: every variant's median and the best peer against ours.

    Args:
        hidden: whether the LMUs had a hidden cell.
        length: the sequence length ``T``.
        seconds: variant name -> median seconds (a variant not run: "-").
    """
    best = min(t for k, t in seconds.items() if k.startswith("peer_"))
    return (
        f"| {'Dense(256,relu)' if hidden else 'none'} | {length} | "
        + " | ".join(
            f"{seconds[k] * 1e3:.1f} ms" if k in seconds else "-" for k in VARIANTS
        )
        + f" | {best / seconds['ours_auto']:.2f}x |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--lengths", default="784,4096")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--hidden", choices=("both", "none", "dense"), default="both")
    p.add_argument(
        "--peer_modes",
        default="fft,raw",
        help="keras-lmu LMUFeedforward conv modes to time, comma-separated (its "
        "raw and fft forms with a Dense hidden cell at T = 4096 need more than "
        "24 GB here: --hidden dense --lengths 4096 --peer_modes '')",
    )
    args = p.parse_args()
    unknown = {m for m in args.peer_modes.split(",") if m} - {"fft", "raw"}
    if unknown:
        p.error(f"--peer_modes: unknown mode(s) {sorted(unknown)}; known: fft, raw")
    sys.path.insert(0, HERE)
    import timing

    timing.set_threads(args.threads)
    import keras_lmu  # noqa: F401  (the peer: fail before the table when missing)
    import numpy as np

    rng = np.random.default_rng(0)
    print(
        "| hidden | T | ours RNN(LMUCell) | ours auto | keras-lmu RNN | keras-lmu fft "
        "| keras-lmu raw | best keras-lmu / ours auto |"
    )
    print("|---|---|---|---|---|---|---|---|")
    hidden_cells = {"both": (False, True), "none": (False,), "dense": (True,)}
    for hidden in hidden_cells[args.hidden]:
        for length in map(int, args.lengths.split(",")):
            x = rng.normal(size=(32, length, 1)).astype("float32")
            modes = [m for m in args.peer_modes.split(",") if m]
            fns = fwd_bwd_variants(x, hidden, modes)
            long = length > 1000
            t = timing.interleaved_medians(
                fns, warmup=1, repeats=max(1, args.repeats - (1 if long else 0))
            )
            print(table_row(hidden, length, t), flush=True)


if __name__ == "__main__":
    main()
