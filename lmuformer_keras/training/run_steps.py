"""The steps of one ``lmuformer-train`` run, once its flags are checked.

:func:`lmuformer_keras.training.cli.run` checks the flags into a
:class:`~lmuformer_keras.training.run_plan.RunPlan`, locks ``--out`` and calls
:func:`train_and_evaluate`, which runs:

1. :func:`load_data_and_model`: the dataset, the model, the batch size it allows;
2. :func:`run_config`: the record saved beside the resume checkpoint;
3. :func:`train_model`: ``--overwrite`` clean-up, then :func:`trainer.train`;
4. :func:`evaluate_best`: test accuracy, streaming evaluation, plots, export clips;
5. :func:`~lmuformer_keras.training.run_outputs.build_metrics` (``metrics.json``)
   and :func:`summary_line`.

Keras is imported inside the steps, so importing this module is cheap.
"""

from __future__ import annotations

import json
import os
from typing import Any

from lmuformer_keras.training import outdir
from lmuformer_keras.training.run_outputs import (
    CURVES_PNG,
    METRICS_FILE,
    RUN_OUTPUTS,
    STREAMING_JSON,
    STREAMING_PNG,
    build_metrics,
)
from lmuformer_keras.training.run_plan import RunPlan, UsageError

PROG = "lmuformer-train"


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


def _fitting_batch_size(plan: RunPlan, train_clips: int, devices: int) -> int:
    """``plan.batch_size``, lowered (with a note) to the training set's size."""
    if plan.batch_size <= train_clips:
        return plan.batch_size
    clamped = train_clips // devices * devices
    if clamped < 1:
        raise UsageError(
            f"--batch_size={plan.batch_size}: the training set has {train_clips} "
            f"clips, fewer than the {devices} devices of "
            "--distribute=data_parallel"
        )
    print(
        f"{PROG}: note: --batch_size={plan.batch_size} exceeds the {train_clips} "
        f"training clips; using --batch_size={clamped}",
        flush=True,
    )
    return clamped


def load_data_and_model(plan: RunPlan, devices: int) -> tuple[Any, Any, Any]:
    """Step 1: ``(dataset, model, teacher)``; sets ``plan.batch_size`` to what fits.

    Raises:
        UsageError: bad ``--override``/``--spiking``, ``--batch_size`` or
            ``--teacher``.
    """
    from lmuformer_keras.models import PRESETS
    from lmuformer_keras.training import datasets as dsets
    from lmuformer_keras.training import trainer

    f = plan.flags
    frontend = (PRESETS[plan.preset].get("frontend") or {}).get("name")
    ds = dsets.load_dataset(
        f["dataset"],
        f["data_dir"],
        f["classes"],
        frontend=frontend,
        seed=f["seed"],
        exclude_engines=tuple(f.get("exclude_engines") or ()),
        hard_negatives=plan.hard,
        clip_context=f.get("clip_context") or 0.0,
    )
    ds = dsets.subset(ds, f["max_clips"], seed=f["seed"])
    try:
        model = trainer.build_model(
            plan.preset, ds, plan.overrides, dtype_policy=f["dtype_policy"]
        )
    except ValueError as error:
        raise UsageError(f"--override / --spiking: {error}") from error
    plan.batch_size = _fitting_batch_size(plan, len(ds.x_train), devices)
    teacher = None
    if plan.teacher_path is not None:
        teacher = load_model_file(plan.teacher_path, "--teacher")
        try:
            trainer.check_teacher(teacher, ds, plan.teacher_path)
        except ValueError as error:
            raise UsageError(str(error)) from error
    return ds, model, teacher


def run_config(plan: RunPlan, ds: Any, augment: Any) -> dict[str, Any]:
    """Step 2: the run's record (saved with the resume checkpoint, compared on
    ``--resume``); prints the hard-negative counts when mined."""
    from lmuformer_keras.training import datasets as dsets

    f, audio = plan.flags, plan.flags["dataset"] in dsets.AUDIO_DATASETS
    config = {
        "preset": plan.preset,
        "overrides": plan.overrides,
        "dataset": f["dataset"],
        "classes": f["classes"] if audio else ds.num_classes,
        "recipe": plan.recipe.name,
        "batch_size": plan.batch_size,
        "learning_rate": plan.lr,
        "seed": f["seed"],
        "augment": augment,
        "max_clips": f["max_clips"],
        "exclude_engines": list(f.get("exclude_engines") or ()),
        "distribute": f["distribute"],
        "epochs": plan.epochs,
    }
    if f.get("clip_context"):  # absent in the resume state of runs without it
        config["clip_context"] = f["clip_context"]
    if f["dtype_policy"] != "float32":  # absent in float32 runs' resume state
        config["dtype_policy"] = f["dtype_policy"]
    if plan.hard is not None:
        h = ds.summary["hard_negatives"]
        print(
            f"{PROG}: hard negatives: {h['hard_negatives']} windows added (of "
            f"{h['false_alarm_runs']} false-alarm runs in {h['minutes']:.0f} min "
            f"of keyword-free training streams, p >= {h['threshold']:g})"
        )
        config["hard_negatives"] = {  # counts: metrics.json's dataset summary
            "model": os.path.abspath(plan.hard.model_path),
            "minutes": plan.hard.minutes,
            "threshold": plan.hard.threshold,
        }
    if plan.teacher_path is not None:
        config["distill"] = {
            "teacher": os.path.abspath(plan.teacher_path),
            "weight": f["distill_weight"],
            "temperature": f["distill_temperature"],
        }
    return config


def train_model(
    plan: RunPlan, model: Any, ds: Any, teacher: Any, augment: Any, config: dict
) -> dict[str, Any]:
    """Step 3: the last ``--out`` check, ``--overwrite`` clean-up, then training.

    Raises:
        UsageError: ``--out`` holds a run and neither ``--resume`` nor
            ``--overwrite`` is given.
    """
    from lmuformer_keras.training import trainer

    f, out = plan.flags, plan.out
    # Last check before anything is written into --out (the flags are all checked
    # first, so that their errors come first).
    try:
        outdir.check_no_previous_run(out, f["resume"], f.get("overwrite", False))
    except outdir.OutputExistsError as error:
        raise UsageError(str(error)) from error
    if f.get("overwrite") and not f["resume"]:
        removed = outdir.remove_previous_run(out, RUN_OUTPUTS)
        if removed:
            print(
                f"{PROG}: --overwrite: removed {', '.join(removed)} from {out}",
                flush=True,
            )
    return trainer.train(
        model,
        ds,
        plan.recipe,
        out,
        epochs=plan.epochs,
        batch_size=plan.batch_size,
        learning_rate=plan.lr,
        seed=f["seed"],
        augment=augment,
        resume=f["resume"],
        config=config,
        verbose=plan.verbose,
        teacher=teacher,
        distill_weight=f["distill_weight"],
        distill_temperature=f["distill_temperature"],
    )


def evaluate_best(
    plan: RunPlan, ds: Any, result: dict[str, Any], backend: str
) -> tuple[Any, dict, dict, dict]:
    """Step 4: ``(best model, test figures, streaming figures, clip files)``.

    Evaluates the best checkpoint on one device; writes the streaming JSON and
    plot, the training curves and the export clips into ``--out``.
    """
    import keras

    from lmuformer_keras.training import evaluate, plots, streaming_eval, trainer

    f, out = plan.flags, plan.out
    best = keras.saving.load_model(os.path.join(out, trainer.MODEL_FILE))
    frame_logits = evaluate.predict_frame_logits(best, ds.x_test, batch_size=256)
    test = evaluate.evaluate_test(best, frame_logits, ds.y_test, plan.recipe.loss_fn())
    stream = streaming_eval.streaming_evaluation(
        best,
        ds.x_test,
        ds.y_test,
        frame_logits,
        streamed_clips=f["streaming_clips"],
        tolerance=f["streaming_tolerance"],
        frame_hop_ms=(best.frontend or {}).get("frame_hop_ms"),
    )
    with open(os.path.join(out, STREAMING_JSON), "w", encoding="utf-8") as fh:
        json.dump(stream, fh, indent=1)
    title = f"{plan.preset} on {ds.name} ({backend})"
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
    return best, test, stream, clip_files


def summary_line(metrics: dict[str, Any], stream: dict, out: str) -> str:
    """The run's last line: test accuracy and how soon streaming reaches it."""
    s = stream
    return (
        f"{PROG}: test accuracy {100 * metrics['test_accuracy']:.2f}% "
        f"(loss {metrics['test_loss']:.4f}, {metrics['test_clips']} clips), best val "
        f"{100 * metrics['best_val_accuracy']:.2f}% at epoch {metrics['best_epoch']}; "
        f"streaming: within 1 point of {100 * s['full_accuracy']:.2f}% after "
        f"{s['frames_within_1_point']}/{s['num_frames']} frames "
        f"({100 * s['fraction_within_1_point']:.1f}%), "
        f"{100 * s['accuracy_at_paper_fraction']:.2f}% after "
        f"{s['frames_at_paper_fraction']}/{s['num_frames']}; results in "
        f"{os.path.abspath(out)}"
    )


def _start_line(plan: RunPlan, model: Any, ds: Any, augment, dist, backend) -> str:
    from lmuformer_keras.training import trainer

    return (
        f"{PROG}: backend {backend}, preset {plan.preset} {plan.overrides or ''}, "
        f"{trainer.trainable_params(model):,} trainable parameters, {ds}, "
        f"recipe {plan.recipe.name}, {plan.epochs} epochs x batch {plan.batch_size}, "
        f"lr {plan.lr:g}, augment {augment}, distribute {dist['mode']} "
        f"({dist['devices']} device(s)), dtype policy "
        f"{plan.flags['dtype_policy']}, out {plan.out}"
    )


def train_and_evaluate(plan: RunPlan) -> dict[str, Any]:
    """Runs the steps for a checked plan on a locked ``--out``; returns the metrics.

    Raises:
        UsageError: a flag that only the data or the model can judge.
        lmuformer_keras.training.streaming_eval.StreamingMismatchError: the
            streaming model does not match the parallel one.
    """
    import keras

    from lmuformer_keras.training import datasets as dsets
    from lmuformer_keras.training import distribute, streaming_eval

    f, backend = plan.flags, keras.backend.backend()
    keras.utils.set_random_seed(f["seed"])
    dist = distribute.setup_distribution(f["distribute"], plan.batch_size)
    try:
        ds, model, teacher = load_data_and_model(plan, dist["devices"])
        audio = f["dataset"] in dsets.AUDIO_DATASETS
        augment = plan.recipe.augments(audio, f["augment"])
        config = run_config(plan, ds, augment)
        print(_start_line(plan, model, ds, augment, dist, backend), flush=True)
        result = train_model(plan, model, ds, teacher, augment, config)
    finally:
        if dist["mode"] != "none":
            distribute.clear_distribution()

    best, test, stream, clip_files = evaluate_best(plan, ds, result, backend)
    metrics = build_metrics(
        plan,
        best=best,
        ds=ds,
        result=result,
        test=test,
        stream=stream,
        clip_files=clip_files,
        config=config,
        backend=backend,
        dist=dist,
    )
    with open(os.path.join(plan.out, METRICS_FILE), "w", encoding="utf-8") as fh:
        json.dump(metrics, fh, indent=1, default=str)
    print(summary_line(metrics, stream, plan.out), flush=True)
    streaming_eval.check_verified(stream)
    return metrics
