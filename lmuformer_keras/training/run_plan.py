"""``lmuformer-train``'s flag values checked into a :class:`RunPlan`.

:func:`plan_run` checks every flag (before anything is written into ``--out``) and
resolves the preset, the recipe (with its flag changes), the overrides, epochs,
batch size and learning rate; a value that cannot be used raises
:class:`UsageError`, naming the flag. The run itself is
:func:`lmuformer_keras.training.run_steps.train_and_evaluate`.

Keras is not imported here (the checks that need the model or data import it when
they run), so :mod:`lmuformer_keras.training.cli` can refuse a bad
``KERAS_BACKEND`` before it is imported.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import os
import time
from typing import Any

from lmuformer_keras.console import keras_verbose
from lmuformer_keras.training import outdir
from lmuformer_keras.training.recipes import Recipe


class UsageError(ValueError):
    """A flag value that cannot be used."""


@dataclasses.dataclass
class RunPlan:
    """A run's checked settings (flags resolved against the preset and recipe).

    Attributes:
        flags: the flag values, as given.
        start: ``time.time()`` when the run began.
        preset: the preset name.
        recipe: the training recipe (with the flags' changes).
        overrides: preset overrides.
        epochs: epochs to train.
        batch_size: batch size (lowered to the training set's size if larger).
        lr: learning rate.
        teacher_path: ``--teacher`` or ``None``.
        hard: the hard-negative settings or ``None``.
        out: the output folder.
        verbose: Keras ``fit`` verbosity.
    """

    flags: dict[str, Any]
    start: float
    preset: str
    recipe: Recipe
    overrides: dict[str, Any]
    epochs: int
    batch_size: int
    lr: float
    teacher_path: str | None
    hard: Any
    out: str
    verbose: int


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
    if f["verbose"] not in (None, 0, 1, 2):
        raise UsageError(f"--verbose must be 0, 1 or 2, got --verbose={f['verbose']}")


def _recipe_from_flags(f: dict[str, Any]) -> Recipe:
    """``--recipe`` with ``--mixup_prob``, ``--freq_shift``, ``--equalizer`` and
    ``--reversed_unknown``."""
    from lmuformer_keras.training.recipes import get_recipe

    recipe = get_recipe(f["recipe"])
    for name in ("mixup_prob", "reversed_unknown"):
        value = f.get(name)
        if value is None:
            continue
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"--{name} must be in [0, 1], got --{name}={value}")
        recipe = dataclasses.replace(recipe, **{name: float(value)})
    for name, cast in (("freq_shift", int), ("equalizer", float)):
        value = f.get(name)
        if value is None:
            continue
        if not math.isfinite(value) or value < 0:
            raise UsageError(
                f"--{name} must be a finite number >= 0, got --{name}={value}"
            )
        recipe = dataclasses.replace(recipe, **{name: cast(value)})
    return recipe


def _hard_negatives_from_flags(f: dict[str, Any]) -> Any:
    """The ``--hard_negatives_from`` settings, or ``None``."""
    from lmuformer_keras.training import datasets as dsets

    if f["hard_negatives_from"] is None:
        return None
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
    return dsets.HardNegatives(f["hard_negatives_from"], minutes, threshold)


def _check_out(f: dict[str, Any], out: str) -> None:
    """``--out`` is not a file, and ``--resume`` with ``--overwrite`` is refused."""
    try:
        outdir.check_out_path(out)
        if f["resume"] and f.get("overwrite"):
            outdir.check_no_previous_run(out, resume=True, overwrite=True)
    except outdir.OutputExistsError as error:
        raise UsageError(str(error)) from error


def plan_run(f: dict[str, Any], start: float | None = None) -> RunPlan:
    """Checks every flag (before anything is written) into a :class:`RunPlan`.

    Raises:
        UsageError: a flag value that cannot be used (names the flag and the value).
    """
    from lmuformer_keras.models import PRESETS, list_presets
    from lmuformer_keras.training import datasets as dsets
    from lmuformer_keras.training.pipeline import check_distillation

    start = time.time() if start is None else start
    dataset = f["dataset"]
    preset = f["preset"] or dsets.default_preset(dataset, f["classes"])
    if preset not in PRESETS:
        raise UsageError(
            f"--preset: unknown preset {preset!r}; available presets: {list_presets()}"
        )
    recipe = _recipe_from_flags(f)
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
    hard = _hard_negatives_from_flags(f)
    clip_context = f.get("clip_context") or 0.0
    if not 0.0 <= clip_context <= 1.0:
        raise UsageError(f"--clip_context must be in [0, 1], got {clip_context!r}")
    if clip_context and dataset != "kws_clips":
        raise UsageError(
            f"--clip_context works with --dataset=kws_clips, got --dataset={dataset}"
        )
    out = f["out"] or os.path.join("runs", f"{dataset}-{preset}")
    _check_out(f, out)
    return RunPlan(
        flags=f,
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
        verbose=keras_verbose(f["verbose"]),
    )
