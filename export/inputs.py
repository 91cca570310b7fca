"""Step 1 of the export: the checked model, clips, labels and frontend.

:func:`prepare` wraps the model in its streaming form, checks the streaming contract
(:mod:`.contract`), the calibration and test clips (:mod:`.calibration`), the class
names and the frontend record, and that ``out_dir`` can take an export, before any
slow step runs; the result is one :class:`ExportInputs`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from lmuformer_keras.contract import Frontend, MetadataError

from . import artifacts
from .calibration import check_clips
from .contract import (
    as_streaming_model,
    check_streaming_model,
    layer_names,
    num_classes,
    num_features,
)
from .errors import ExportError

__all__ = ["ExportInputs", "prepare"]


def _labels(streaming_model, labels, classes: int):
    labels = labels if labels is not None else getattr(streaming_model, "labels", None)
    if labels is None:
        return None
    labels = [str(label) for label in labels]
    if len(labels) != classes:
        raise ExportError(
            f"labels: {len(labels)} names given but the model has {classes} classes"
        )
    return labels


def _frontend(streaming_model) -> Frontend | None:
    """The model's frontend record (a record dict, a name-only record completed
    from the registered frontend, or a frontend object), or ``None``."""
    frontend = getattr(streaming_model, "frontend", None)
    if frontend is None:
        return None
    try:
        if isinstance(frontend, Frontend | Mapping):
            return Frontend.from_record(frontend, "the model's frontend")
        return Frontend.from_frontend(frontend)
    except (MetadataError, AttributeError, TypeError) as error:
        raise ExportError(
            f"the model's frontend {frontend!r:.120} is not a frontend record "
            f"{{name, params, frame_hop_ms}}: {error}"
        ) from error


@dataclasses.dataclass(frozen=True)
class ExportInputs:
    """The checked model and clips an export works on.

    Attributes:
        streaming_model: the model in its streaming form.
        states: its state specs (:func:`check_streaming_model`).
        x_cal: calibration clips ``(N, T, F)``.
        x_ver: verification clips (the test clips, else the calibration clips).
        y_ver: their labels, or ``None``.
        clips: what ``x_ver`` is, for the summary: ``"test"`` or ``"calibration"``.
        labels: class names, or ``None``.
        frontend: the frontend record, or ``None``.
        names: the step model's layer names (for error messages).
    """

    streaming_model: Any
    states: list
    x_cal: np.ndarray
    x_ver: np.ndarray
    y_ver: Any
    clips: str
    labels: list[str] | None
    frontend: Frontend | None
    names: Any


def prepare(
    streaming_model, calibration_x, out_dir: str, labels, y, test_x, test_y
) -> ExportInputs:
    """Step 1: check the streaming contract, the clips, labels and ``out_dir``.

    Args:
        streaming_model: the model, or its streaming form (:func:`as_streaming_model`).
        calibration_x: calibration clips ``(N, T, F)``.
        out_dir: the export's output folder.
        labels: class names (``None``: ``streaming_model.labels``).
        y: labels of ``calibration_x``, or ``None``.
        test_x, test_y: verification clips and labels, or ``None``.

    Returns:
        The checked :class:`ExportInputs`.

    Raises:
        ExportError: (subclasses) for a model without a streaming form, bad clips or
            labels, or an ``out_dir`` that cannot take an export.
    """
    streaming_model = as_streaming_model(streaming_model)
    states = check_streaming_model(streaming_model)
    features, classes = num_features(streaming_model), num_classes(streaming_model)
    x_cal = check_clips(calibration_x, features, "calibration clips")
    if test_x is not None:
        x_ver, y_ver = check_clips(test_x, features, "test clips"), test_y
    else:
        x_ver, y_ver = x_cal, y
    inputs = ExportInputs(
        streaming_model=streaming_model,
        states=states,
        x_cal=x_cal,
        x_ver=x_ver,
        y_ver=y_ver,
        clips="test" if test_x is not None else "calibration",
        labels=_labels(streaming_model, labels, classes),
        frontend=_frontend(streaming_model),
        names=layer_names(streaming_model.step_model),
    )
    artifacts.check_out_dir(out_dir)  # fail before the slow steps
    return inputs
