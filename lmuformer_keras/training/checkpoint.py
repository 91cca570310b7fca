"""The resume checkpoint in ``out/resume``: what ``--resume`` continues from.

Files:

- ``resume/epoch-NNNN.weights.h5``: model and optimizer variables after the last
  finished epoch, ``NNNN``;
- ``resume/state.json``: epochs done, best validation accuracy, history, the run's
  configuration, and the weights file's name and SHA-256.

Each epoch's weights go to a new file (:func:`save_resume_weights`); ``state.json``
is written last, atomically, naming them (:func:`commit_state`): it is the commit
point ``--resume`` continues from, so a run killed at any moment resumes from one
consistent epoch (older weights files are deleted once the new state is committed).
Checkpoints from before this layout (``resume/last.weights.h5``, no name or checksum
in ``state.json``) still resume.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any

import keras

logger = logging.getLogger(__name__)

RESUME_DIR = "resume"
STATE_FILE = "state.json"
WEIGHTS_FILE = "last.weights.h5"  # checkpoints written before state["weights_file"]


class ResumeError(ValueError):
    """``--resume`` cannot continue (no checkpoint, or a different configuration)."""


def _atomic_json(path: str, obj: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def file_sha256(path: str) -> str:
    """The SHA-256 of a file, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_file_name(epoch: int) -> str:
    """``epoch-0003.weights.h5``: the resume weights after ``epoch`` epochs."""
    return f"epoch-{epoch:04d}.weights.h5"


def save_resume_weights(model: keras.Model, out: str, epochs_completed: int) -> str:
    """Writes the model's and optimizer's variables to a new weights file.

    Args:
        model: the model being trained (compiled).
        out: the run's output folder (``out/resume`` exists).
        epochs_completed: epochs finished; names the file.

    Returns:
        The weights file's name in ``out/resume`` (for :func:`commit_state`).
    """
    resume = os.path.join(out, RESUME_DIR)
    name = weights_file_name(epochs_completed)
    tmp = os.path.join(resume, f"epoch-{epochs_completed:04d}.tmp.weights.h5")
    model.save_weights(tmp)
    os.replace(tmp, os.path.join(resume, name))
    return name


def commit_state(out: str, state: dict[str, Any]) -> None:
    """Writes ``state.json`` atomically, then deletes every other weights file.

    Args:
        out: the run's output folder.
        state: the resume state; ``state["weights_file"]`` names the weights file
            written by :func:`save_resume_weights`, whose SHA-256 is added as
            ``weights_sha256``.
    """
    resume = os.path.join(out, RESUME_DIR)
    name = state["weights_file"]
    _atomic_json(
        os.path.join(resume, STATE_FILE),
        dict(state, weights_sha256=file_sha256(os.path.join(resume, name))),
    )
    for other in os.listdir(resume):  # older epochs' (and killed runs') weights
        if other.endswith(".weights.h5") and other != name:
            os.remove(os.path.join(resume, other))


def load_state(out: str) -> dict[str, Any] | None:
    """The resume state in ``out/resume/state.json``, or ``None`` if there is none.

    Raises:
        ResumeError: the file is not valid JSON or lacks ``epochs_completed`` (names
            the file).
    """
    path = os.path.join(out, RESUME_DIR, STATE_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            state = json.load(fh)
        if not isinstance(state, dict):
            raise ValueError(f"a JSON {type(state).__name__}, not an object")
        int(state["epochs_completed"])
        if not isinstance(state.get("config", {}), dict):
            raise ValueError("'config' is not an object")
        if not isinstance(state.get("history", []), list):
            raise ValueError("'history' is not a list")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
        raise ResumeError(
            f"--resume: the checkpoint state {path!r} is damaged ({detail}); "
            "restore it, or start again with --overwrite"
        ) from error
    return state


def load_resume_weights(model: keras.Model, out: str, state: dict[str, Any]) -> str:
    """Loads the weights ``state`` names into ``model``; returns their path.

    The weights file is ``state["weights_file"]`` (``last.weights.h5`` for older
    checkpoints) and must match ``state["weights_sha256"]`` when that is recorded.

    Raises:
        ResumeError: the file is missing, does not match, or cannot be loaded (names
            the file).
    """
    name = state.get("weights_file", WEIGHTS_FILE)
    path = os.path.join(out, RESUME_DIR, str(name))
    state_path = os.path.join(out, RESUME_DIR, STATE_FILE)
    if not os.path.isfile(path):
        raise ResumeError(
            f"--resume: the checkpoint weights {path!r} named by {state_path!r} are "
            "missing; restore them, or start again with --overwrite"
        )
    expected = state.get("weights_sha256")
    if expected is not None and file_sha256(path) != expected:
        raise ResumeError(
            f"--resume: the checkpoint weights {path!r} do not match the checksum in "
            f"{state_path!r} (damaged or replaced); restore them, or start again "
            "with --overwrite"
        )
    try:
        model.load_weights(path)
    except Exception as error:  # h5py, OSError and Keras' shape errors alike
        raise ResumeError(
            f"--resume: cannot load the checkpoint weights {path!r} (truncated or "
            f"damaged?): {type(error).__name__}: {error}"
        ) from error
    return path


def resume_from_checkpoint(
    model: keras.Model, out: str, config: dict[str, Any]
) -> dict[str, Any]:
    """Loads ``out/resume`` into a compiled ``model`` (weights and optimizer state).

    Args:
        model: the compiled model to continue.
        out: the run's output folder.
        config: the run's configuration; it must equal the checkpoint's, apart from
            ``epochs``.

    Returns:
        The checkpoint's state (``epochs_completed``, ``best``, ``history``, ...).

    Raises:
        ResumeError: no checkpoint, or one trained with a different configuration
            (names the differing keys).
    """
    state = load_state(out)
    if state is None:
        raise ResumeError(
            f"--resume: no checkpoint in {os.path.join(out, RESUME_DIR)!r} "
            "(run without --resume first)"
        )
    old = {k: v for k, v in state.get("config", {}).items() if k != "epochs"}
    new = {k: v for k, v in config.items() if k != "epochs"}
    if old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise ResumeError(
            f"--resume: the checkpoint in {out!r} was trained with a different "
            f"configuration (differs in {diff}); use the same flags or a new --out"
        )
    model.optimizer.build(model.trainable_variables)
    load_resume_weights(model, out, state)
    logger.info("Resuming from epoch %d in %s", int(state["epochs_completed"]), out)
    return state
