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
AVX512-BF16 the paper presets' training steps were 1.5-1.9x (plain) and 1.15-1.3x
(spiking) faster on TensorFlow and torch, and 1.06-1.16x on JAX's CPU backend
(``docs/benchmarks.md``); accuracy stayed within seed spread
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

import ast
import dataclasses
import json
import logging
import math
import os
import sys
import time
from typing import Any

from absl import flags

from lmuformer_keras.training import outdir
from lmuformer_keras.training.datasets import DATASETS, KWS_CLASSES
from lmuformer_keras.training.distribute import MODES
from lmuformer_keras.training.recipes import RECIPES, Recipe

# Imported (as these modules are) before Keras, so that a bad KERAS_BACKEND gets a
# one-line error from main() rather than Keras' import traceback.
KERAS_BACKENDS = ("jax", "tensorflow", "torch", "numpy", "openvino")

PROG = "lmuformer-train"
METRICS_FILE = "metrics.json"
STREAMING_JSON = "streaming_accuracy.json"
STREAMING_PNG = "streaming_accuracy.png"
CURVES_PNG = "curves.png"

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
    "verbose", 1, "Keras fit verbosity (1 progress bar, 2 one line).", flag_values=FLAGS
)


class UsageError(ValueError):
    """A flag value that cannot be used."""


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["dim=64", "spiking=True"]`` -> ``{"dim": 64, "spiking": True}``."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise UsageError(f"--override must be NAME=VALUE, got --override={item!r}")
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()
        out[name] = value
    return out


# What a run writes into --out (removed by --overwrite before the new run).
_RUN_OUTPUTS = (
    "model.keras",
    "model.tmp.keras",
    "history.csv",
    "resume",
    METRICS_FILE,
    STREAMING_JSON,
    STREAMING_PNG,
    CURVES_PNG,
    "calibration.npz",
    "test.npz",
)

_AT_LEAST_1 = ("epochs", "batch_size")
_AT_LEAST_0 = ("max_clips", "streaming_clips", "calibration_clips", "max_test_clips")
_POSITIVE_FINITE = ("learning_rate", "distill_temperature")
_NON_NEGATIVE_FINITE = ("streaming_tolerance",)


def check_numbers(f: dict[str, Any]) -> None:
    """Refuses numeric flags whose value is meaningless (NaN, inf, out of range).

    Args:
        f: the flag values (``epochs``, ``batch_size`` and ``learning_rate`` already
            resolved against the recipe).

    Raises:
        UsageError: names the flag and its value, e.g. ``--learning_rate must be a
            finite number > 0, got --learning_rate=nan``.
    """
    for name in _AT_LEAST_1:
        if f[name] < 1:
            raise UsageError(f"--{name} must be >= 1, got --{name}={f[name]}")
    for name in _AT_LEAST_0:
        if f[name] < 0:
            raise UsageError(f"--{name} must be >= 0, got --{name}={f[name]}")
    for name in _POSITIVE_FINITE:
        if not (math.isfinite(f[name]) and f[name] > 0):
            raise UsageError(
                f"--{name} must be a finite number > 0, got --{name}={f[name]}"
            )
    for name in _NON_NEGATIVE_FINITE:
        if not (math.isfinite(f[name]) and f[name] >= 0):
            raise UsageError(
                f"--{name} must be a finite number >= 0, got --{name}={f[name]}"
            )
    if not 0 <= f["seed"] < 2**32:
        raise UsageError(f"--seed must be in [0, 2**32), got --seed={f['seed']}")
    if f["verbose"] not in (0, 1, 2):
        raise UsageError(f"--verbose must be 0, 1 or 2, got --verbose={f['verbose']}")


def load_model_file(path: str, flag: str) -> Any:
    """``keras.saving.load_model(path)``, with an error that names the flag and file.

    Raises:
        UsageError: ``path`` is missing, not a Keras model, or damaged.
    """
    import keras

    if not os.path.isfile(path):
        raise UsageError(f"{flag}: no such file {path!r}")
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # zipfile, h5py, JSON and Keras errors alike
        raise UsageError(
            f"{flag} {path!r}: not a loadable Keras model file (truncated or not a "
            f".keras model?): {type(error).__name__}: {error}"
        ) from error


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

    Every flag is checked before anything is written; ``--out`` is then locked for
    the run (:class:`~lmuformer_keras.training.outdir.RunLock`), and a previous run
    in it is replaced only with ``--overwrite`` (or continued with ``--resume``).

    Raises:
        UsageError: a flag value that cannot be used (names the flag and the value).
        lmuformer_keras.training.outdir.RunLockError: another run holds ``--out``.
    """
    from lmuformer_keras.models import PRESETS, list_presets
    from lmuformer_keras.training import datasets as dsets
    from lmuformer_keras.training.pipeline import check_distillation
    from lmuformer_keras.training.recipes import get_recipe

    f = dict(flag_values or _flag_values())
    start = time.time()
    dataset = f["dataset"]
    preset = f["preset"] or dsets.default_preset(dataset, f["classes"])
    if preset not in PRESETS:
        raise UsageError(
            f"--preset: unknown preset {preset!r}; available presets: {list_presets()}"
        )
    recipe = get_recipe(f["recipe"])
    if f["mixup_prob"] is not None:
        if not 0.0 <= f["mixup_prob"] <= 1.0:
            raise UsageError(
                f"--mixup_prob must be in [0, 1], got --mixup_prob={f['mixup_prob']}"
            )
        recipe = dataclasses.replace(recipe, mixup_prob=float(f["mixup_prob"]))
    for name, cast in (("freq_shift", int), ("equalizer", float)):
        value = f.get(name)
        if value is None:
            continue
        if not math.isfinite(value) or value < 0:
            raise UsageError(
                f"--{name} must be a finite number >= 0, got --{name}={value}"
            )
        recipe = dataclasses.replace(recipe, **{name: cast(value)})
    overrides = parse_overrides(f["override"])
    if f["spiking"] is not None:
        overrides["spiking"] = bool(f["spiking"])
    epochs = recipe.epochs if f["epochs"] is None else f["epochs"]
    batch_size = recipe.batch_size if f["batch_size"] is None else f["batch_size"]
    lr = recipe.learning_rate if f["learning_rate"] is None else f["learning_rate"]
    check_numbers(dict(f, epochs=epochs, batch_size=batch_size, learning_rate=lr))
    try:
        check_distillation(f["distill_weight"], f["distill_temperature"], "--")
    except ValueError as error:
        raise UsageError(str(error)) from error
    teacher_path = f["teacher"]
    if teacher_path is not None and not os.path.isfile(teacher_path):
        raise UsageError(f"--teacher: no such file {teacher_path!r}")
    hard = None
    if f["hard_negatives_from"] is not None:
        if not os.path.isfile(f["hard_negatives_from"]):
            raise UsageError(
                f"--hard_negatives_from: no such file {f['hard_negatives_from']!r}"
            )
        minutes, threshold = f["hard_negative_minutes"], f["hard_negative_threshold"]
        if not (math.isfinite(minutes) and minutes > 0):
            raise UsageError(f"--hard_negative_minutes must be > 0, got {minutes}")
        if not 0.0 < threshold < 1.0:
            raise UsageError(
                f"--hard_negative_threshold must be in (0, 1), got {threshold}"
            )
        hard = dsets.HardNegatives(f["hard_negatives_from"], minutes, threshold)
    out = f["out"] or os.path.join("runs", f"{dataset}-{preset}")
    try:
        outdir.check_out_path(out)
        if f["resume"] and f.get("overwrite"):
            outdir.check_no_previous_run(out, resume=True, overwrite=True)
    except outdir.OutputExistsError as error:
        raise UsageError(str(error)) from error
    os.makedirs(out, exist_ok=True)
    with outdir.RunLock(out):
        return _train_and_evaluate(
            f,
            start=start,
            preset=preset,
            recipe=recipe,
            overrides=overrides,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            teacher_path=teacher_path,
            hard=hard,
            out=out,
        )


def _train_and_evaluate(
    f: dict[str, Any],
    *,
    start: float,
    preset: str,
    recipe: Recipe,
    overrides: dict[str, Any],
    epochs: int,
    batch_size: int,
    lr: float,
    teacher_path: str | None,
    hard: Any,
    out: str,
) -> dict[str, Any]:
    """:func:`run` once the flags are checked and ``out`` is locked."""
    import keras

    from lmuformer_keras.models import PRESETS
    from lmuformer_keras.training import datasets as dsets
    from lmuformer_keras.training import (
        distribute,
        evaluate,
        plots,
        streaming_eval,
        trainer,
    )

    dataset = f["dataset"]
    backend = keras.backend.backend()

    keras.utils.set_random_seed(f["seed"])
    dist = distribute.setup_distribution(f["distribute"], batch_size)
    try:
        frontend = (PRESETS[preset].get("frontend") or {}).get("name")
        ds = dsets.load_dataset(
            dataset,
            f["data_dir"],
            f["classes"],
            frontend=frontend,
            seed=f["seed"],
            exclude_engines=tuple(f.get("exclude_engines") or ()),
            hard_negatives=hard,
        )
        ds = dsets.subset(ds, f["max_clips"], seed=f["seed"])
        try:
            model = trainer.build_model(
                preset, ds, overrides, dtype_policy=f["dtype_policy"]
            )
        except ValueError as error:
            raise UsageError(f"--override / --spiking: {error}") from error
        train_clips = len(ds.x_train)
        if batch_size > train_clips:
            clamped = train_clips // dist["devices"] * dist["devices"]
            if clamped < 1:
                raise UsageError(
                    f"--batch_size={batch_size}: the training set has {train_clips} "
                    f"clips, fewer than the {dist['devices']} devices of "
                    "--distribute=data_parallel"
                )
            print(
                f"{PROG}: note: --batch_size={batch_size} exceeds the {train_clips} "
                f"training clips; using --batch_size={clamped}",
                flush=True,
            )
            batch_size = clamped
        audio = dataset in dsets.AUDIO_DATASETS
        augment = recipe.augments(audio, f["augment"])
        teacher = None
        if teacher_path is not None:
            teacher = load_model_file(teacher_path, "--teacher")
            try:
                trainer.check_teacher(teacher, ds, teacher_path)
            except ValueError as error:
                raise UsageError(str(error)) from error
        config = {
            "preset": preset,
            "overrides": overrides,
            "dataset": dataset,
            "classes": f["classes"] if audio else ds.num_classes,
            "recipe": recipe.name,
            "batch_size": batch_size,
            "learning_rate": lr,
            "seed": f["seed"],
            "augment": augment,
            "max_clips": f["max_clips"],
            "exclude_engines": list(f.get("exclude_engines") or ()),
            "distribute": f["distribute"],
            "epochs": epochs,
        }
        if f["dtype_policy"] != "float32":  # absent in float32 runs' resume state
            config["dtype_policy"] = f["dtype_policy"]
        if hard is not None:
            h = ds.summary["hard_negatives"]
            print(
                f"{PROG}: hard negatives: {h['hard_negatives']} windows added (of "
                f"{h['false_alarm_runs']} false-alarm runs in {h['minutes']:.0f} min "
                f"of keyword-free training streams, p >= {h['threshold']:g})"
            )
            config["hard_negatives"] = {  # counts: metrics.json's dataset summary
                "model": os.path.abspath(hard.model_path),
                "minutes": hard.minutes,
                "threshold": hard.threshold,
            }
        if teacher_path is not None:
            config["distill"] = {
                "teacher": os.path.abspath(teacher_path),
                "weight": f["distill_weight"],
                "temperature": f["distill_temperature"],
            }
        print(
            f"{PROG}: backend {backend}, preset {preset} {overrides or ''}, "
            f"{trainer.trainable_params(model):,} trainable parameters, {ds}, "
            f"recipe {recipe.name}, {epochs} epochs x batch {batch_size}, lr {lr:g}, "
            f"augment {augment}, distribute {dist['mode']} ({dist['devices']} "
            f"device(s)), dtype policy {f['dtype_policy']}, out {out}",
            flush=True,
        )
        # Last check before anything is written into --out (the flags above are
        # all checked first, so that their errors come first).
        try:
            outdir.check_no_previous_run(out, f["resume"], f.get("overwrite", False))
        except outdir.OutputExistsError as error:
            raise UsageError(str(error)) from error
        if f.get("overwrite") and not f["resume"]:
            removed = outdir.remove_previous_run(out, _RUN_OUTPUTS)
            if removed:
                print(
                    f"{PROG}: --overwrite: removed {', '.join(removed)} from {out}",
                    flush=True,
                )
        result = trainer.train(
            model,
            ds,
            recipe,
            out,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=lr,
            seed=f["seed"],
            augment=augment,
            resume=f["resume"],
            config=config,
            verbose=f["verbose"],
            teacher=teacher,
            distill_weight=f["distill_weight"],
            distill_temperature=f["distill_temperature"],
        )
    finally:
        if dist["mode"] != "none":
            distribute.clear_distribution()

    # Evaluation on one device, with the best checkpoint.
    best = keras.saving.load_model(os.path.join(out, trainer.MODEL_FILE))
    frame_logits = evaluate.predict_frame_logits(best, ds.x_test, batch_size=256)
    test = evaluate.evaluate_test(best, frame_logits, ds.y_test, recipe.loss_fn())
    hop = (best.frontend or {}).get("frame_hop_ms")
    stream = streaming_eval.streaming_evaluation(
        best,
        ds.x_test,
        ds.y_test,
        frame_logits,
        streamed_clips=f["streaming_clips"],
        tolerance=f["streaming_tolerance"],
        frame_hop_ms=hop,
    )
    with open(os.path.join(out, STREAMING_JSON), "w", encoding="utf-8") as fh:
        json.dump(stream, fh, indent=1)
    title = f"{preset} on {ds.name} ({backend})"
    plots.plot_streaming(stream, os.path.join(out, STREAMING_PNG), title=title)
    plots.plot_curves(
        result["history"],
        os.path.join(out, CURVES_PNG),
        title=title,
        augmented=result["augmenter"] is not None,
    )
    clip_files = evaluate.write_export_clips(
        out, ds, f["calibration_clips"], f["max_test_clips"], seed=f["seed"]
    )
    metrics = {
        "test_accuracy": test["test_accuracy"],
        "test_loss": test["test_loss"],
        "trainable_params": trainer.trainable_params(best),
        "test_clips": test["test_clips"],
        "best_val_accuracy": result["best_val_accuracy"],
        "best_epoch": result["best_epoch"],
        "epochs_completed": result["epochs_completed"],
        "resumed_from_epoch": result["initial_epoch"] if f["resume"] else None,
        "train_seconds": result["seconds"],
        "total_seconds": round(time.time() - start, 2),
        "streaming": {
            k: stream[k]
            for k in (
                "full_accuracy",
                "frames_within_1_point",
                "fraction_within_1_point",
                "frames_at_paper_fraction",
                "accuracy_at_paper_fraction",
                "streamed_clips",
                "max_abs_diff_streaming_vs_parallel",
                "clips_over_tolerance",
                "verified",
            )
        },
        "per_class_accuracy": test["per_class_accuracy"],
        "confusion_matrix": test["confusion_matrix"],
        "config": {
            "preset": preset,
            "overrides": overrides,
            "model": {
                k: v
                for k, v in best.get_config().items()
                if k not in ("labels", "frontend", "trainable", "dtype")
            },
            "labels": best.labels,
            "frontend": best.frontend,
            "flags": f,
            "backend": backend,
            "distribution": dist,
            "recipe": recipe.to_dict(),
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": lr,
            "augmenter": result["augmenter"],
            "distill": config.get("distill"),
            "dataset": dsets.dataset_summary(ds),
        },
        "files": {
            "model": trainer.MODEL_FILE,
            "history": trainer.HISTORY_FILE,
            "curves": CURVES_PNG,
            "streaming_json": STREAMING_JSON,
            "streaming_png": STREAMING_PNG,
            "calibration": evaluate.CALIBRATION_FILE,
            "test": evaluate.TEST_FILE,
            "clips": clip_files,
        },
    }
    with open(os.path.join(out, METRICS_FILE), "w", encoding="utf-8") as fh:
        json.dump(metrics, fh, indent=1, default=str)
    s = stream
    print(
        f"{PROG}: test accuracy {100 * metrics['test_accuracy']:.2f}% "
        f"(loss {metrics['test_loss']:.4f}, {metrics['test_clips']} clips), best val "
        f"{100 * metrics['best_val_accuracy']:.2f}% at epoch {metrics['best_epoch']}; "
        f"streaming: within 1 point of {100 * s['full_accuracy']:.2f}% after "
        f"{s['frames_within_1_point']}/{s['num_frames']} frames "
        f"({100 * s['fraction_within_1_point']:.1f}%), "
        f"{100 * s['accuracy_at_paper_fraction']:.2f}% after "
        f"{s['frames_at_paper_fraction']}/{s['num_frames']}; results in "
        f"{os.path.abspath(out)}",
        flush=True,
    )
    streaming_eval.check_verified(stream)
    return metrics


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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from lmuformer_keras.training.datasets import DatasetError
    from lmuformer_keras.training.distribute import DistributeError

    try:  # the first Keras import: its backend may be missing or misconfigured
        from lmuformer_keras.training.streaming_eval import StreamingMismatchError
        from lmuformer_keras.training.trainer import ResumeError
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
