"""The ``--out`` folder of ``lmuformer-train``: one run at a time, nothing replaced.

- :func:`check_out_path`: ``--out`` must be a folder (or not exist yet);
- :class:`RunLock`: a lock file in ``--out`` (``.lmuformer-train.lock``, holding the
  pid of the run) taken with ``O_CREAT | O_EXCL``, so a second run on the same folder
  is refused; a lock left by a process that no longer lives is taken over;
- :func:`previous_run_files` / :func:`remove_previous_run`: what an earlier run left
  (``model.keras``, ``history.csv``, ``resume/``), which a new run without
  ``--resume`` replaces only with ``--overwrite``.

This module does not import Keras.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable
from types import TracebackType

LOCK_FILE = ".lmuformer-train.lock"
PREVIOUS_RUN_FILES = ("model.keras", "history.csv", "resume/state.json")


class OutputExistsError(ValueError):
    """``--out`` cannot be used as asked (a file, or a previous run's outputs)."""


class RunLockError(RuntimeError):
    """Another run holds the lock on ``--out``."""


def check_out_path(out: str) -> None:
    """Refuses an ``--out`` that exists and is not a folder.

    Raises:
        OutputExistsError: names ``--out`` and the path.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise OutputExistsError(
            f"--out={out!r} is an existing file, not a folder; pass a folder"
        )


def previous_run_files(out: str) -> list[str]:
    """The paths in ``out`` that a previous training run wrote (relative, sorted)."""
    found = [p for p in PREVIOUS_RUN_FILES if os.path.exists(os.path.join(out, p))]
    resume = os.path.join(out, "resume")
    if os.path.isdir(resume):
        found += [
            f"resume/{name}"
            for name in os.listdir(resume)
            if name.endswith(".weights.h5")
        ]
    return sorted(set(found))


def check_no_previous_run(out: str, resume: bool, overwrite: bool) -> None:
    """Refuses to train into a folder holding a previous run, unless asked to.

    Args:
        out: the ``--out`` folder.
        resume: ``--resume`` (continue the run in ``out``).
        overwrite: ``--overwrite`` (replace the run in ``out``).

    Raises:
        OutputExistsError: ``out`` holds ``model.keras``, ``history.csv`` or a
            resume checkpoint and neither flag is given (names ``--out``, the path
            and the files), or both flags are given.
    """
    if resume and overwrite:
        raise OutputExistsError(
            "--resume and --overwrite contradict each other: --resume continues the "
            "run in --out, --overwrite replaces it; pass one"
        )
    if resume or overwrite:
        return
    found = previous_run_files(out)
    if found:
        raise OutputExistsError(
            f"--out={out!r} already holds a training run ({', '.join(found)}); pass "
            "--resume to continue it, --overwrite to replace it, or another --out"
        )


def remove_previous_run(out: str, names: Iterable[str]) -> list[str]:
    """Removes the files and folders ``names`` from ``out``; returns those removed."""
    removed = []
    for name in names:
        path = os.path.join(out, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
        else:
            continue
        removed.append(name)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # lives, under another user
        return True
    return True


class RunLock:
    """An exclusive lock on an output folder, as a context manager.

    The lock is the file ``out/.lmuformer-train.lock``, created with
    ``O_CREAT | O_EXCL`` and holding the pid of its run; it is removed on exit
    (also on an error). A lock whose pid no longer lives is stale: it is taken over.

    Raises:
        RunLockError: on entry, when another living process holds the lock (names
            the lock file and the pid).
    """

    def __init__(self, out: str) -> None:
        self.path = os.path.join(out, LOCK_FILE)
        self.held = False

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
        return True

    def _holder(self) -> int | None:
        try:
            with open(self.path, encoding="utf-8") as fh:
                text = fh.read().strip()
        except FileNotFoundError:
            return None
        try:
            return int(text)
        except ValueError:
            return -1

    def acquire(self) -> None:
        """Takes the lock (see the class docstring)."""
        for _ in range(3):
            if self._create():
                self.held = True
                return
            pid = self._holder()
            if pid is None:  # released meanwhile
                continue
            if pid == -1:
                raise RunLockError(
                    f"--out: the lock file {self.path!r} does not hold a pid; if no "
                    "other lmuformer-train runs on this folder, remove it"
                )
            if _pid_alive(pid):
                raise RunLockError(
                    f"--out: another lmuformer-train (pid {pid}) is running on this "
                    f"folder (lock file {self.path!r}); wait for it, or pass another "
                    "--out"
                )
            if self._holder() == pid:  # stale: its process is gone; take it over
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path)
        raise RunLockError(f"--out: could not take the lock file {self.path!r}")

    def release(self) -> None:
        """Removes the lock file if this process holds it."""
        if not self.held:
            return
        self.held = False
        if self._holder() == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
