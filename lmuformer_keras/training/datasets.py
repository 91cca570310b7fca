"""Dataset names of ``lmuformer-train``, their natural presets, and the model wiring.

``load_dataset`` returns a :class:`lmuformer_keras.data.Dataset`; ``model_arguments``
turns it into the ``LMUFormer`` arguments that come from the data (``num_features``,
``num_classes``, ``num_frames``, ``labels``, ``frontend``), so the saved model records
the labels and the frontend the features were computed with (the frontend's params are
the single source of truth, read back from the dataset).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmuformer_keras.data import Dataset

DATASETS: tuple[str, ...] = (
    "synthetic_kws",
    "kws_streams",
    "kws_clips",
    "speech_commands",
    "mnist1d",
    "digits",
    "psmnist",
)
AUDIO_DATASETS: tuple[str, ...] = (
    "synthetic_kws",
    "kws_streams",
    "kws_clips",
    "speech_commands",
)
#: Datasets built from a synthetic set's utterances (``data.kws_streams``); they take
#: ``--exclude_engines``.
STREAM_DATASETS: dict[str, str] = {"kws_streams": "streams", "kws_clips": "clips"}
KWS_CLASSES: tuple[int, ...] = (12, 35)
DEFAULT_FRONTEND = "fbank128"


class DatasetError(ValueError):
    """A dataset flag that cannot be used (message names the flag and the value)."""


def default_preset(dataset: str, classes: int = 12) -> str:
    """The natural preset of ``dataset`` (``classes`` only matters for KWS sets).

    ``synthetic_kws`` / ``speech_commands`` with 12 classes -> ``lmuformer_tiny_kws``;
    ``speech_commands`` with 35 -> ``lmuformer_scv2``; the toy sets -> their own.
    """
    if dataset in AUDIO_DATASETS:
        return "lmuformer_scv2" if classes == 35 else "lmuformer_tiny_kws"
    if dataset in ("mnist1d", "digits", "psmnist"):
        return f"lmuformer_{dataset}"
    raise DatasetError(f"--dataset: unknown dataset {dataset!r}; known: {DATASETS}")


def default_synthetic_dir() -> str:
    """Where ``synthetic_kws`` is generated without ``--data_dir``."""
    from lmuformer_keras.data.speech_commands import default_cache_dir

    return os.path.join(default_cache_dir(), "synthetic_kws")


def existing_synthetic_set(data_dir: str) -> dict[str, Any] | None:
    """The manifest of a complete synthetic set in ``data_dir``, else ``None``.

    A set generated with other parameters (e.g. more clips per word, through
    :func:`lmuformer_keras.data.generate_synthetic_kws`) is used as it is, never
    regenerated over.
    """
    from lmuformer_keras.data.synthetic_kws_files import MANIFEST

    path = os.path.join(data_dir, MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    return manifest if manifest.get("complete") else None


def load_dataset(
    name: str,
    data_dir: str | None = None,
    classes: int = 12,
    frontend: str | dict[str, Any] | None = None,
    seed: int = 0,
    progress: bool = True,
    exclude_engines: tuple[str, ...] = (),
    hard_negatives: HardNegatives | None = None,
    clip_context: float = 0.0,
) -> Dataset:
    """Loads (or, for ``synthetic_kws``, generates then loads) a dataset.

    Args:
        name: one of :data:`DATASETS`.
        data_dir: ``speech_commands``: the v2 folder (required); ``psmnist``: an
            ``mnist.npz`` or a folder with it / the IDX files (required);
            ``synthetic_kws``: a generated set (any parameters), or where the
            default set is generated (default :func:`default_synthetic_dir`).
            Ignored by ``mnist1d`` and ``digits``.
        classes: 12 or 35 (keyword sets only).
        frontend: frontend name or params for the keyword sets (the preset's).
        seed: sampling seed of the 12-class ``_unknown_`` / ``_silence_`` clips.
        progress: progress bars on stderr.
        exclude_engines: ``kws_streams`` / ``kws_clips``: engines held out of every
            split, with the voices of their speakers.
        hard_negatives: ``kws_streams`` / ``kws_clips``: add the false alarms of a
            trained model to the training split (:class:`HardNegatives`).
        clip_context: ``kws_clips``: the fraction of keyword clips with
            non-keyword speech right before the keyword
            (:attr:`lmuformer_keras.data.kws_streams.StreamConfig.clip_context`).

    Raises:
        DatasetError: unknown name, bad ``classes`` or a missing ``data_dir`` (the
            message names the flag and the path).
    """
    if name not in DATASETS:
        raise DatasetError(f"--dataset: unknown dataset {name!r}; known: {DATASETS}")
    for flag, value in (("exclude_engines", exclude_engines),
                        ("hard_negatives_from", hard_negatives)):  # fmt: skip
        if value and name not in STREAM_DATASETS:
            raise DatasetError(
                f"--{flag} works with --dataset in {sorted(STREAM_DATASETS)}, "
                f"got --dataset={name}"
            )
    if clip_context and name != "kws_clips":
        raise DatasetError(
            f"--clip_context works with --dataset=kws_clips, got --dataset={name}"
        )
    if not 0.0 <= clip_context <= 1.0:
        raise DatasetError(f"--clip_context must be in [0, 1], got {clip_context!r}")
    if name in STREAM_DATASETS:
        ds = _stream_dataset(
            name, data_dir, classes, frontend, seed, progress, exclude_engines,
            clip_context,
        )  # fmt: skip
        if hard_negatives is not None:
            ds = _add_hard_negatives(ds, hard_negatives, frontend, seed, progress)
        return ds
    if name in AUDIO_DATASETS:
        return _audio_dataset(name, data_dir, classes, frontend, seed, progress)
    return _array_dataset(name, data_dir)


def _audio_dataset(
    name: str,
    data_dir: str | None,
    classes: int,
    frontend: str | dict[str, Any] | None,
    seed: int,
    progress: bool,
) -> Dataset:
    """``speech_commands`` or ``synthetic_kws`` (generated first if missing)."""
    from lmuformer_keras.data import generate_synthetic_kws, speech_commands

    if classes not in KWS_CLASSES:
        raise DatasetError(
            f"--classes must be one of {KWS_CLASSES} for --dataset={name}, got "
            f"--classes={classes}"
        )
    generation = None
    if name == "synthetic_kws":
        data_dir = data_dir or default_synthetic_dir()
        generation = existing_synthetic_set(data_dir)
        if generation is None:  # generate the default set (cached afterwards)
            generation = generate_synthetic_kws(data_dir, progress=progress)
        generation = {
            k: generation.get(k) for k in ("params", "counts", "espeak_ng_version")
        }
    else:
        if not data_dir:
            raise DatasetError(
                "--data_dir is required for --dataset=speech_commands (a Speech "
                "Commands v2 folder; nothing is downloaded)"
            )
        if not os.path.isdir(data_dir):
            raise DatasetError(
                f"--data_dir: Speech Commands folder not found: "
                f"{os.path.abspath(data_dir)!r} (--dataset=speech_commands)"
            )
    ds = speech_commands(
        data_dir,
        classes=classes,
        frontend=frontend or DEFAULT_FRONTEND,
        seed=seed,
        progress=progress,
    )
    ds.name = f"{name}{classes}"
    ds.summary = dict(ds.summary, dataset=name, data_dir=os.path.abspath(data_dir))
    if generation is not None:
        ds.summary["synthetic_kws"] = generation
    return ds


def _array_dataset(name: str, data_dir: str | None) -> Dataset:
    """``mnist1d``, ``digits`` or ``psmnist`` (from ``data_dir``)."""
    from lmuformer_keras.data import digits, mnist1d, psmnist

    if name == "mnist1d":
        return mnist1d()
    if name == "digits":
        return digits()
    if not data_dir:
        raise DatasetError(
            "--data_dir is required for --dataset=psmnist (a Keras-format mnist.npz or "
            "a folder with it or with the MNIST IDX files; nothing is downloaded)"
        )
    if not os.path.exists(data_dir):
        raise DatasetError(
            f"--data_dir: MNIST not found at {os.path.abspath(data_dir)!r} "
            "(--dataset=psmnist)"
        )
    return psmnist(data_dir)


def _stream_dataset(
    name: str,
    data_dir: str | None,
    classes: int,
    frontend: str | dict[str, Any] | None,
    seed: int,
    progress: bool,
    exclude_engines: tuple[str, ...],
    clip_context: float = 0.0,
) -> Dataset:
    from lmuformer_keras.data.kws_streams import StreamConfig, stream_dataset

    if classes != 12:
        raise DatasetError(
            f"--dataset={name} has the 12 keyword classes only, got --classes={classes}"
        )
    data_dir = data_dir or default_synthetic_dir()
    if existing_synthetic_set(data_dir) is None:
        raise DatasetError(
            f"--data_dir: no complete synthetic set in {os.path.abspath(data_dir)!r} "
            f"(--dataset={name} reads one made by generate_synthetic_kws)"
        )
    try:
        ds = stream_dataset(
            data_dir,
            frontend=frontend or "micro40",
            exclude_engines=exclude_engines,
            seed=seed,
            mode=STREAM_DATASETS[name],
            config=StreamConfig(clip_context=clip_context),
            progress=progress,
        )
    except ValueError as error:
        raise DatasetError(f"--dataset={name}: {error}") from error
    ds.name = name
    return ds


@dataclass(frozen=True)
class HardNegatives:
    """Hard-negative mining for the stream datasets (``--hard_negatives_from``).

    Attributes:
        model_path: a trained ``model.keras`` (same labels and features) whose false
            alarms on keyword-free training streams are mined
            (:func:`lmuformer_keras.data.kws_mining.mine_hard_negatives`).
        minutes: minutes of keyword-free speech streamed.
        threshold: keyword probability from which a window is kept.
        max_fraction: at most this fraction of the training split is added.
    """

    model_path: str
    minutes: float = 20.0
    threshold: float = 0.3
    max_fraction: float = 0.25


def _add_hard_negatives(
    ds: Dataset,
    spec: HardNegatives,
    frontend: str | dict[str, Any] | None,
    seed: int,
    progress: bool,
) -> Dataset:
    """``ds`` with a model's mined false alarms appended to its training split."""
    import keras

    from lmuformer_keras.data.kws_mining import mine_hard_negatives
    from lmuformer_keras.training.trainer import check_teacher

    flag = "--hard_negatives_from"
    if not os.path.isfile(spec.model_path):
        raise DatasetError(f"{flag}: no such file {spec.model_path!r}")
    try:
        model = keras.saving.load_model(spec.model_path)
        check_teacher(model, ds, spec.model_path, flag=flag)
    except ValueError as error:
        raise DatasetError(str(error)) from error

    def predict(x: np.ndarray) -> np.ndarray:
        logits = model.predict(x, batch_size=256, verbose=0)
        return keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))

    try:
        x, y, summary = mine_hard_negatives(
            predict,
            ds.summary["data_dir"],
            frontend=frontend or "micro40",
            exclude_engines=tuple(ds.summary.get("exclude_engines") or ()),
            seed=seed,
            minutes=spec.minutes,
            threshold=spec.threshold,
            max_windows=int(spec.max_fraction * len(ds.y_train)),
            progress=progress,
        )
    except ValueError as error:
        raise DatasetError(f"{flag}: {error}") from error
    summary["model"] = os.path.abspath(spec.model_path)
    arrays = {}
    for split, (xs, ys) in ds.splits().items():
        arrays[f"x_{split}"], arrays[f"y_{split}"] = xs, ys
    arrays["x_train"] = np.concatenate([ds.x_train, x.astype(ds.x_train.dtype)])
    arrays["y_train"] = np.concatenate([ds.y_train, y.astype(ds.y_train.dtype)])
    return Dataset(
        **arrays,
        labels=list(ds.labels),
        frontend=ds.frontend,
        summary=dict(ds.summary, hard_negatives=summary),
        name=ds.name,
    )


def subset(ds: Dataset, max_clips: int, seed: int = 0) -> Dataset:
    """At most ``max_clips`` clips per split (seeded random choice; for smoke runs)."""
    if max_clips <= 0:
        return ds
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, (x, y) in ds.splits().items():
        keep = np.sort(rng.permutation(len(x))[:max_clips])
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x[keep], y[keep]
    return Dataset(
        **arrays,
        labels=list(ds.labels),
        frontend=ds.frontend,
        summary=dict(ds.summary, subset_max_clips_per_split=max_clips),
        name=ds.name,
    )


def model_frontend(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """The model's ``frontend`` record (``name``, ``params``, ``frame_hop_ms``).

    Built from the dataset's frontend params (the features' single source of truth),
    in the form ``LMUFormer.from_preset`` stores.
    """
    if params is None:
        return None
    from lmuformer_keras.features import get_frontend

    return get_frontend(params).record()


def model_arguments(ds: Dataset) -> dict[str, Any]:
    """``LMUFormer`` arguments taken from the data (override the preset's)."""
    num_frames, num_features = ds.input_shape
    return {
        "num_features": int(num_features),
        "num_classes": ds.num_classes,
        "num_frames": int(num_frames),
        "labels": list(ds.labels),
        "frontend": model_frontend(ds.frontend),
    }


def dataset_summary(ds: Dataset) -> dict[str, Any]:
    """A JSON-friendly summary for ``metrics.json`` (shapes, counts, provenance)."""
    summary = {k: v for k, v in ds.summary.items() if k != "permutation"}
    return {
        "name": ds.name,
        "labels": list(ds.labels),
        "input_shape": list(ds.input_shape),
        "sizes": {s: int(len(y)) for s, (_, y) in ds.splits().items()},
        "frontend": None if ds.frontend is None else ds.frontend.get("name"),
        "summary": summary,
    }
