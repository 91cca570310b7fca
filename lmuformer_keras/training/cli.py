"""``lmuformer-train``: train, evaluate and stream-evaluate an LMUFormer.

Usage::

    KERAS_BACKEND=jax lmuformer-train --dataset=synthetic_kws --classes=12 \\
        --out=runs/kws [--preset=lmuformer_tiny_kws] [--spiking] \\
        [--override dim=64 --override order=128] [--recipe=default|paper_scv2] \\
        [--epochs=N] [--batch_size=N] [--learning_rate=X] [--seed=0] \\
        [--distribute=none|data_parallel] [--dtype_policy=float32|mixed_bfloat16] \\
        [--resume | --overwrite] \\
        [--teacher=trained/model.keras --distill_weight=0.5 --distill_temperature=2]

Datasets: ``synthetic_kws`` (``--data_dir``: a set made by
``generate_synthetic_kws``, used as it is, or where the default set is generated;
default ``~/.cache/lmuformer_keras/synthetic_kws``), ``speech_commands``
(``--data_dir`` = a Speech Commands v2 folder), ``mnist1d``, ``digits``, ``psmnist``
(``--data_dir`` = a local ``mnist.npz`` or IDX folder). The preset defaults to the
dataset's natural one (``lmuformer_tiny_kws`` for 12 keyword classes,
``lmuformer_scv2`` for 35, ``lmuformer_<dataset>`` otherwise). The backend is
``KERAS_BACKEND``.

``--dtype_policy=mixed_bfloat16`` trains with bfloat16 compute and float32 variables
(Keras mixed precision; the LIF membranes integrate in float32). On a CPU with
AVX512-BF16 the paper presets' training steps are faster on every backend
(figures: ``docs/code_figures.md``); accuracy stayed within seed spread
(``benchmarks/mixed_precision_accuracy.py``).
Validation during training runs in bfloat16; the saved model, the test accuracy,
streaming evaluation and export are float32.

Writes into ``--out``: ``model.keras`` (best validation accuracy, float32; records
labels and frontend), ``history.csv``, ``curves.png``, ``metrics.json``,
``streaming_accuracy.json`` / ``.png`` (accuracy versus frames seen, measured with the
streaming model), ``calibration.npz`` and ``test.npz`` (inputs for
``lmuformer-export``), and ``resume/`` (what ``--resume`` continues from).

``--out`` holding a previous run (``model.keras``, ``history.csv`` or a ``resume/``
checkpoint) is refused unless ``--resume`` (continue it) or ``--overwrite`` (replace
it) is given; a run holds the lock file ``--out/.lmuformer-train.lock`` (its pid)
while it runs, so a second run on the same folder is refused (a lock whose process is
gone is taken over). A ``--batch_size`` larger than the training set is lowered to its
size, with a note. Exit codes: 0 done, 2 a usage error (a bad flag value or
``KERAS_BACKEND``, an ``--out`` that is a file or holds a run, a bad ``--teacher``),
1 a runtime error (data, a damaged or mismatched checkpoint, a locked ``--out``,
streaming mismatch).

``--teacher`` distills a trained model into the one being trained (e.g. the spiking
twin from the plain model): the targets become ``(1 - w) * labels + w *
softmax(teacher(x) / T)`` on each augmented batch.

Flags live in a private ``absl.flags.FlagValues`` so this module imports beside other
absl CLIs (``lmuformer-export``) without duplicate-flag errors.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from absl import flags

from lmuformer_keras.console import quiet_tensorflow
from lmuformer_keras.training import outdir
from lmuformer_keras.training.datasets import DATASETS, KWS_CLASSES
from lmuformer_keras.training.distribute import MODES
from lmuformer_keras.training.recipes import RECIPES
from lmuformer_keras.training.run_plan import UsageError, plan_run
from lmuformer_keras.training.run_steps import PROG, train_and_evaluate

# Imported (as these modules are) before Keras, so that a bad KERAS_BACKEND gets a
# one-line error from main() rather than Keras' import traceback.
KERAS_BACKENDS = ("jax", "tensorflow", "torch", "numpy", "openvino")

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "preset",
    None,
    "LMUFormer preset (default: the dataset's natural preset).",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "spiking", None, "Override the preset's spiking setting.", flag_values=FLAGS
)
flags.DEFINE_multi_string(
    "override",
    [],
    "Preset override NAME=VALUE (Python literal), repeatable, e.g. dim=64.",
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "dataset", "synthetic_kws", list(DATASETS), "Dataset.", flag_values=FLAGS
)
flags.DEFINE_string(
    "data_dir",
    None,
    "speech_commands: v2 folder; psmnist: mnist.npz or IDX folder; synthetic_kws: a "
    "generated set (used as is), or where the default set is generated (default "
    "~/.cache/lmuformer_keras/synthetic_kws).",
    flag_values=FLAGS,
)
flags.DEFINE_list(
    "exclude_engines",
    [],
    "kws_streams / kws_clips: text-to-speech engines held out of training and "
    "validation (with every voice of the same speaker), e.g. piper.",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "clip_context",
    0.0,
    "kws_clips: the fraction of keyword clips in which the keyword follows "
    "non-keyword speech (the last 0.1-0.6 s of another utterance, as at the end of "
    "a phrase), labelled as the keyword; 0: one utterance per clip.",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "hard_negatives_from",
    None,
    "kws_streams / kws_clips: a trained model.keras whose false alarms on keyword-"
    "free training streams are added to the training split as _unknown_/_silence_ "
    "(hard-negative mining; train once, then again with this flag).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "hard_negative_minutes",
    20.0,
    "Minutes of keyword-free training speech mined (with --hard_negatives_from).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "hard_negative_threshold",
    0.3,
    "Keyword probability in (0, 1) from which a window is a hard negative.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "classes", 12, f"Keyword classes {KWS_CLASSES} (KWS sets).", flag_values=FLAGS
)
flags.DEFINE_enum(
    "recipe",
    "default",
    sorted(RECIPES),
    "default, or paper_scv2: the paper's SCv2 recipe (Adam 2.5e-3 betas .95/.999, "
    "x0.85 every 10 epochs, 200 epochs, batch 128, BCE, mixup, masks, noise, shift).",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "epochs", None, "Epochs (default: the recipe's).", flag_values=FLAGS
)
flags.DEFINE_integer(
    "batch_size",
    None,
    "Batch size, >= 1 (default: the recipe's). Larger than the training set: the "
    "training set's size is used (a note is printed; with data_parallel, rounded "
    "down to a multiple of the devices).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "learning_rate", None, "Peak learning rate (default: recipe's).", flag_values=FLAGS
)
flags.DEFINE_bool(
    "augment",
    None,
    "Feature augmentation in training (default: the recipe's; on for audio).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "teacher",
    None,
    "A trained model.keras (same labels and features) to distill from: its "
    "posteriors on each augmented batch are mixed into the targets.",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "distill_weight",
    0.5,
    "Weight of the teacher's posteriors in the targets, in [0, 1] (with --teacher).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "distill_temperature",
    2.0,
    "Softmax temperature of the teacher's logits, > 0 (with --teacher).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "mixup_prob",
    None,
    "Probability that a training batch is mixed up (mixup on features, in [0, 1]; "
    "default: the recipe's). With --teacher the teacher scores the mixed clips.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "freq_shift",
    None,
    "Largest random shift of each training clip along the feature (mel) axis, in "
    "bins, >= 0: a stand-in for other vocal tracts (default: the recipe's, 0 = off).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "equalizer",
    None,
    "Scale of a random smooth level / tilt curve added to each training clip's "
    "features, >= 0: other microphones and channels (default: the recipe's, 0 = off).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "reversed_unknown",
    None,
    "Probability, in [0, 1], that a training keyword clip is played backwards and "
    "labelled _unknown_ (the same sounds in the wrong order; default: the recipe's, "
    "0 = off).",
    flag_values=FLAGS,
)
flags.DEFINE_integer("seed", 0, "Seed (init, order, augmentation).", flag_values=FLAGS)
flags.DEFINE_string(
    "out", None, "Output folder (default runs/<dataset>-<preset>).", flag_values=FLAGS
)
flags.DEFINE_enum(
    "distribute",
    "none",
    list(MODES),
    "data_parallel: keras.distribution.DataParallel over all local devices (JAX).",
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "dtype_policy",
    "float32",
    ["float32", "mixed_bfloat16"],
    "Training compute dtype: float32, or mixed_bfloat16 (bfloat16 compute, float32 "
    "variables; model.keras is saved in float32 either way).",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "resume", False, "Continue from the checkpoint in --out.", flag_values=FLAGS
)
flags.DEFINE_bool(
    "overwrite",
    False,
    "Replace a previous run in --out (model.keras, history.csv, resume/, metrics, "
    "plots, clips); without it (or --resume) such an --out is refused.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "max_clips",
    0,
    "At most this many clips per split (seeded subset, for smoke runs); 0: all.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "streaming_clips",
    256,
    "Test clips streamed frame by frame with StreamingModel (rest: parallel).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "streaming_tolerance",
    1e-4,
    "Max |streamed - parallel| prefix-mean logit difference.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "calibration_clips",
    200,
    "Training clips written to calibration.npz.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "max_test_clips",
    2000,
    "test.npz: the test set, or a seeded subset of this size if larger (0: all).",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "verbose",
    None,
    "Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch (default: "
    "1 on a terminal, 2 when stdout is a log file or pipe).",
    flag_values=FLAGS,
)


def check_keras_backend(environ: dict[str, str] | None = None) -> None:
    """Refuses an unknown ``KERAS_BACKEND`` before Keras is imported.

    Raises:
        UsageError: names the variable, its value and the valid backends.
    """
    value = (os.environ if environ is None else environ).get("KERAS_BACKEND", "")
    if value and value not in KERAS_BACKENDS:
        raise UsageError(
            f"KERAS_BACKEND={value!r} is not a Keras backend; use one of "
            f"{', '.join(KERAS_BACKENDS)}"
        )


def _flag_values() -> dict[str, Any]:
    return {name: FLAGS[name].value for name in sorted(FLAGS)}


def run(flag_values: dict[str, Any] | None = None) -> dict[str, Any]:
    """Runs training + evaluation with the parsed ``FLAGS``; returns the metrics.

    Every flag is checked before anything is written
    (:func:`~lmuformer_keras.training.run_plan.plan_run`); ``--out`` is then locked
    for the run (:class:`~lmuformer_keras.training.outdir.RunLock`), and a previous
    run in it is replaced only with ``--overwrite`` (or continued with ``--resume``).
    The steps are in :mod:`lmuformer_keras.training.run_steps`.

    Raises:
        UsageError: a flag value that cannot be used (names the flag and the value).
        lmuformer_keras.training.outdir.RunLockError: another run holds ``--out``.
    """
    start = time.time()
    plan = plan_run(dict(flag_values or _flag_values()), start)
    os.makedirs(plan.out, exist_ok=True)
    with outdir.RunLock(plan.out):
        return train_and_evaluate(plan)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code (0 ok, 1 error, 2 usage)."""
    argv = list(sys.argv if argv is None else argv)
    if any(a in ("-h", "--help", "--helpfull") for a in argv[1:]):
        print(__doc__.strip() + "\n\nFlags:\n" + FLAGS.get_help())
        return 0
    FLAGS.unparse_flags()
    try:
        FLAGS(argv)
    except flags.Error as error:
        print(f"{PROG}: usage error: {error}", file=sys.stderr)
        return 2
    try:
        check_keras_backend()
    except UsageError as error:
        print(f"{PROG}: usage error: {error}", file=sys.stderr)
        return 2
    quiet_tensorflow(import_now=True)  # no TensorFlow start-up lines
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from lmuformer_keras.training.datasets import DatasetError
    from lmuformer_keras.training.distribute import DistributeError

    try:  # the first Keras import: its backend may be missing or misconfigured
        from lmuformer_keras.training import trainer  # noqa: F401  (Keras, the model)
        from lmuformer_keras.training.checkpoint import ResumeError
        from lmuformer_keras.training.streaming_eval import StreamingMismatchError
    except (ImportError, ValueError) as error:
        backend = os.environ.get("KERAS_BACKEND") or "(keras.json's)"
        print(
            f"{PROG}: error: cannot import Keras with backend {backend} "
            f"(KERAS_BACKEND): {type(error).__name__}: {error}",
            file=sys.stderr,
        )
        return 1

    try:
        run()
    except (UsageError, DistributeError) as error:
        print(f"{PROG}: usage error: {error}", file=sys.stderr)
        return 2
    except (
        DatasetError,
        ResumeError,
        StreamingMismatchError,
        FileNotFoundError,
        outdir.RunLockError,
    ) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
