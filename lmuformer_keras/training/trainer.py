"""The training loop: model from preset + data, ``fit``, best checkpoint, resume.

Files written into ``out``:

- ``model.keras``: the model of the epoch with the best validation accuracy (saved
  with its labels and frontend; always float32, whatever dtype policy it trained
  under, so that streaming, evaluation and export run it in float32);
- ``history.csv``: one row per epoch (epoch, learning_rate, loss, accuracy,
  val_loss, val_accuracy, seconds);
- ``resume/``: the checkpoint ``--resume`` continues from, after every epoch (its
  layout and commit order: :mod:`lmuformer_keras.training.checkpoint`).
"""

from __future__ import annotations

import csv
import logging
import os
import time
from typing import Any

import keras
import numpy as np

from lmuformer_keras.data import Dataset, FeatureAugmenter, one_hot
from lmuformer_keras.models import LMUFormer
from lmuformer_keras.training.checkpoint import (
    RESUME_DIR,
    commit_state,
    resume_from_checkpoint,
    save_resume_weights,
)
from lmuformer_keras.training.datasets import model_arguments
from lmuformer_keras.training.pipeline import (
    EpochSync,
    TrainBatches,
    reversal_arguments,
)
from lmuformer_keras.training.recipes import Recipe

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"


def build_model(
    preset: str,
    ds: Dataset,
    overrides: dict[str, Any] | None = None,
    dtype_policy: str = "float32",
) -> LMUFormer:
    """``LMUFormer.from_preset(preset, **data_arguments, **overrides)``.

    ``num_features``, ``num_classes``, ``num_frames``, ``labels`` and ``frontend``
    come from the data; ``overrides`` (e.g. ``{"spiking": True, "dim": 64}``) may not
    set them, nor ``dtype`` (that is ``dtype_policy``: ``"float32"``, or
    ``"mixed_bfloat16"`` for bfloat16 compute with float32 variables).
    """
    overrides = dict(overrides or {})
    data_args = model_arguments(ds)
    clash = sorted(set(overrides) & set(data_args))
    if clash:
        raise ValueError(
            f"--override: {clash} come from the dataset and cannot be overridden"
        )
    if "dtype" in overrides:
        raise ValueError(
            f"--override: dtype={overrides['dtype']!r}: set the dtype policy with "
            "--dtype_policy"
        )
    return LMUFormer.from_preset(preset, **data_args, **overrides, dtype=dtype_policy)


def trainable_params(model: keras.Model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def compile_model(model: keras.Model, recipe: Recipe, learning_rate: float) -> None:
    model.compile(
        optimizer=recipe.optimizer(learning_rate),
        loss=recipe.loss_fn(),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )


def write_history_csv(path: str, history: list[dict[str, Any]]) -> None:
    first, last = ["epoch", "learning_rate"], ["seconds"]
    seen = {k for row in history for k in row}
    keys = [k for k in first if k in seen]
    keys += sorted(seen - set(first) - set(last))
    keys += [k for k in last if k in seen]
    tmp = path + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)


def read_history_csv(path: str) -> list[dict[str, float]]:
    with open(path, encoding="utf-8") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


class EpochLearningRate(keras.callbacks.Callback):
    """Sets ``lr = base_lr * recipe.lr_factor(epoch, epochs)`` at each epoch start."""

    def __init__(self, recipe: Recipe, base_lr: float, epochs: int) -> None:
        super().__init__()
        self.recipe, self.base_lr, self.epochs = recipe, base_lr, epochs

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        lr = self.base_lr * self.recipe.lr_factor(epoch, self.epochs)
        self.model.optimizer.learning_rate.assign(lr)


class Validation(keras.callbacks.Callback):
    """Adds ``val_loss`` / ``val_accuracy`` to the epoch logs (exact, any device count).

    The validation clips are padded to whole batches (the padding is dropped from the
    predictions), so every batch splits evenly over the devices of
    ``--distribute=data_parallel``; the loss is the training loss on one-hot labels.
    """

    def __init__(
        self, x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int, loss
    ) -> None:
        super().__init__()
        n = len(x)
        padded = -(-n // batch_size) * batch_size
        self.x = np.concatenate(
            [x, np.zeros((padded - n, *x.shape[1:]), x.dtype)]
        ).astype(np.float32)
        self.n, self.y = n, np.asarray(y)
        self.y_one_hot = one_hot(self.y, num_classes)
        self.batch_size, self.loss = batch_size, loss

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        logits = self.model.predict(self.x, batch_size=self.batch_size, verbose=0)
        logits = np.asarray(logits)[: self.n]
        loss = self.loss(
            keras.ops.convert_to_tensor(self.y_one_hot),
            keras.ops.convert_to_tensor(logits),
        )
        logs["val_loss"] = float(keras.ops.convert_to_numpy(loss))
        logs["val_accuracy"] = float((logits.argmax(-1) == self.y).mean())


class Recorder(keras.callbacks.Callback):
    """Per epoch: history row, best checkpoint, resume weights and state."""

    def __init__(self, out: str, config: dict[str, Any], state: dict | None) -> None:
        super().__init__()
        self.out = out
        self.config = config
        state = state or {}
        self.history: list[dict[str, Any]] = list(state.get("history", []))
        self.best = float(state.get("best_val_accuracy", -1.0))
        self.best_epoch = int(state.get("best_epoch", 0))
        self._start = time.time()
        os.makedirs(os.path.join(out, RESUME_DIR), exist_ok=True)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row: dict[str, Any] = {"epoch": epoch + 1, "learning_rate": lr}
        row.update({k: float(v) for k, v in sorted(logs.items()) if k != "lr"})
        row["seconds"] = round(time.time() - self._start, 3)
        self.history.append(row)
        val = row.get("val_accuracy", row.get("accuracy", 0.0))
        if val > self.best:
            self.best, self.best_epoch = val, epoch + 1
            tmp = os.path.join(self.out, "model.tmp.keras")
            self.model.with_dtype_policy("float32").save(tmp)
            os.replace(tmp, os.path.join(self.out, MODEL_FILE))
        self._checkpoint(epoch + 1)

    def _checkpoint(self, epochs_completed: int) -> None:
        """Writes new weights, then ``state.json`` naming them, then drops old ones."""
        name = save_resume_weights(self.model, self.out, epochs_completed)
        write_history_csv(os.path.join(self.out, HISTORY_FILE), self.history)
        commit_state(
            self.out,
            {
                "epochs_completed": epochs_completed,
                "best_val_accuracy": self.best,
                "best_epoch": self.best_epoch,
                "history": self.history,
                "config": self.config,
                "weights_file": name,
            },
        )


def teacher_logits(teacher: keras.Model):
    """``x -> teacher clip logits`` as NumPy (inference mode)."""

    def logits(x: np.ndarray) -> np.ndarray:
        return np.asarray(keras.ops.convert_to_numpy(teacher(x, training=False)))

    return logits


def check_teacher(
    teacher: keras.Model, ds: Dataset, path: str, flag: str = "--teacher"
) -> None:
    """Refuses a model whose labels, classes or features differ from the data's.

    ``flag`` names the argument the model came from in the message.

    Raises:
        ValueError: names the file and the mismatch.
    """
    features = getattr(teacher, "num_features", None)
    if features is not None and int(features) != int(ds.input_shape[1]):
        raise ValueError(
            f"{flag} {path!r}: {features} input features, the dataset has "
            f"{ds.input_shape[1]}"
        )
    classes = getattr(teacher, "num_classes", None)
    if classes is not None and int(classes) != ds.num_classes:
        raise ValueError(
            f"{flag} {path!r}: {classes} classes, the dataset has {ds.num_classes}"
        )
    labels = list(getattr(teacher, "labels", None) or [])
    if labels and labels != list(ds.labels):
        raise ValueError(
            f"{flag} {path!r}: labels {labels} differ from the dataset's "
            f"{list(ds.labels)}"
        )


def make_augmenter(ds: Dataset, recipe: Recipe, seed: int) -> FeatureAugmenter:
    """The recipe's :class:`FeatureAugmenter` for ``ds``'s input shape and classes."""
    num_frames, num_features = ds.input_shape
    return FeatureAugmenter(
        num_frames,
        num_features,
        ds.num_classes,
        seed=seed,
        mixup_prob=recipe.mixup_prob,
        mixup_alpha=recipe.mixup_alpha,
        noise_scale=recipe.noise_scale,
        freq_mask=recipe.freq_mask,
        time_mask=recipe.time_mask,
        time_shift=recipe.time_shift,
    )


def _fit_epochs(
    model: LMUFormer,
    batches: TrainBatches,
    recorder: Recorder,
    ds: Dataset,
    recipe: Recipe,
    *,
    epochs: int,
    initial_epoch: int,
    batch_size: int,
    learning_rate: float,
    verbose: int | str,
) -> None:
    """``model.fit`` from ``initial_epoch`` to ``epochs`` (nothing if already there).

    The callbacks: epoch sync, the recipe's learning-rate schedule, validation, then
    ``recorder`` (history, best model, resume checkpoint).
    """
    if initial_epoch >= epochs:
        logger.info("Nothing to train: %d of %d epochs done", initial_epoch, epochs)
        return
    model.fit(
        batches,
        epochs=epochs,
        initial_epoch=initial_epoch,
        shuffle=False,  # TrainBatches shuffles, deterministically per epoch
        callbacks=[
            EpochSync(batches),
            EpochLearningRate(recipe, learning_rate, epochs),
            Validation(
                ds.x_val, ds.y_val, ds.num_classes, batch_size, recipe.loss_fn()
            ),
            recorder,
        ],
        verbose=verbose,
    )


def _train_result(
    recorder: Recorder,
    initial_epoch: int,
    augmenter: FeatureAugmenter | None,
    recipe: Recipe,
    start: float,
) -> dict[str, Any]:
    """What :func:`train` returns, from its recorder and settings."""
    return {
        "history": recorder.history,
        "best_val_accuracy": recorder.best,
        "best_epoch": recorder.best_epoch,
        "epochs_completed": len(recorder.history),
        "initial_epoch": initial_epoch,
        "augmenter": None
        if augmenter is None
        else dict(
            augmenter.get_config(),
            freq_shift=recipe.freq_shift,
            equalizer=recipe.equalizer,
            reversed_unknown=recipe.reversed_unknown,
        ),
        "seconds": round(time.time() - start, 2),
    }


def train(
    model: LMUFormer,
    ds: Dataset,
    recipe: Recipe,
    out: str,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    augment: bool,
    resume: bool = False,
    config: dict[str, Any] | None = None,
    verbose: int | str = 1,
    teacher: keras.Model | None = None,
    distill_weight: float = 0.5,
    distill_temperature: float = 2.0,
) -> dict[str, Any]:
    """Trains ``model`` (compiled here) and keeps the best epoch in ``out/model.keras``.

    Args:
        model: a built, uncompiled ``LMUFormer``.
        ds: the data (labels as class ids).
        recipe: optimizer, schedule, loss and augmentation defaults.
        out: output folder.
        epochs, batch_size, learning_rate, seed: the run's settings.
        augment: augment training batches with :class:`FeatureAugmenter`.
        resume: continue from ``out/resume`` (model + optimizer state, history, best
            so far). ``config`` must equal the checkpoint's, apart from ``epochs``.
        config: what identifies the run (preset, overrides, dataset, ...); stored in
            the resume state.
        verbose: ``fit`` verbosity (1: progress bar).
        teacher: a trained model with the same labels and input shape; its
            posteriors on each (augmented) batch are mixed into the targets
            (knowledge distillation, see
            :func:`lmuformer_keras.training.pipeline.distill_targets`).
        distill_weight, distill_temperature: the mixture weight and temperature.

    Returns:
        ``{"history", "best_val_accuracy", "best_epoch", "epochs_completed",
        "initial_epoch", "augmenter", "seconds"}``.
    """
    config = dict(config or {})
    os.makedirs(out, exist_ok=True)
    compile_model(model, recipe, learning_rate)
    state = resume_from_checkpoint(model, out, config) if resume else None
    initial_epoch = 0 if state is None else int(state["epochs_completed"])
    augmenter = make_augmenter(ds, recipe, seed) if augment else None
    batches = TrainBatches(
        ds.x_train,
        ds.y_train,
        ds.num_classes,
        batch_size,
        seed,
        augmenter=augmenter,
        epoch=initial_epoch,
        freq_shift=recipe.freq_shift,
        equalizer=recipe.equalizer,
        **reversal_arguments(ds.labels, recipe.reversed_unknown),
        teacher=None if teacher is None else teacher_logits(teacher),
        distill_weight=distill_weight,
        distill_temperature=distill_temperature,
    )
    recorder = Recorder(out, config, state)
    start = time.time()
    _fit_epochs(
        model,
        batches,
        recorder,
        ds,
        recipe,
        epochs=epochs,
        initial_epoch=initial_epoch,
        batch_size=batch_size,
        learning_rate=learning_rate,
        verbose=verbose,
    )
    return _train_result(recorder, initial_epoch, augmenter, recipe, start)
