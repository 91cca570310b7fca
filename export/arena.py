"""Smallest TFLite Micro tensor arena that allocates and invokes the model.

The TFLM Python interpreter raises "TFLM failed to allocate tensors" for most arenas
that are too small, but for some it crashes the process (a size underflow in its tail
allocator: "available 4294967281"). So the binary search runs in a worker process
(``python -m lmuformer_export.arena``) that prints each probe before trying it; a probe
that kills the worker counts as a failure and the search resumes in a fresh worker.
The result is confirmed in fresh processes (``n`` allocates, ``n - 16`` does not).

The figure is for the TFLM reference kernels of the ``tflite_micro`` package;
optimized kernels (CMSIS-NN, ...) may need some scratch memory more, hence the margin
applied to ``metadata.json``'s ``arena_bytes``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

GRANULARITY = 16
_MAX_ARENA = 1 << 30


def _probe(model_bytes: bytes, arena_size: int) -> bool:
    from tflite_micro import runtime

    try:
        interpreter = runtime.Interpreter.from_bytes(model_bytes, arena_size=arena_size)
        interpreter.invoke()
    except RuntimeError:
        return False
    return True


def round_up(value: int) -> int:
    """``value`` rounded up to the arena granularity (16 bytes)."""
    return -(-value // GRANULARITY) * GRANULARITY


def _worker(path: str, low: int, high: int | None) -> None:
    """Binary search in this process; print ``try``/``ok``/``fail`` lines."""
    with open(path, "rb") as f:
        model_bytes = f.read()
    if high is None:
        guess = round_up(max(low * 2, 2 * len(model_bytes) + 16384))
        while True:
            print(f"try {guess}", flush=True)
            if _probe(model_bytes, guess):
                print(f"ok {guess}", flush=True)
                high = guess
                break
            print(f"fail {guess}", flush=True)
            low = guess
            if guess >= _MAX_ARENA:
                print("give-up", flush=True)
                return
            guess *= 2
    while high - low > GRANULARITY:
        mid = round_up((low + high) // 2)
        if mid >= high:
            mid = high - GRANULARITY
        print(f"try {mid}", flush=True)
        if _probe(model_bytes, mid):
            print(f"ok {mid}", flush=True)
            high = mid
        else:
            print(f"fail {mid}", flush=True)
            low = mid
    print(f"done {high}", flush=True)


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))


def _run_worker(path: str, low: int, high: int | None, timeout: float):
    args = [sys.executable, "-m", "lmuformer_export.arena", path, str(low)]
    args.append("none" if high is None else str(high))
    result = subprocess.run(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        timeout=timeout,
        env=_env(),
        check=False,
    )
    return result.returncode, result.stdout.split("\n")


def _fresh_probe(path: str, arena_size: int, timeout: float) -> bool:
    """Probe ``arena_size`` in a new process (a crash counts as a failure)."""
    args = [sys.executable, "-m", "lmuformer_export.arena", path, "probe"]
    args.append(str(arena_size))
    result = subprocess.run(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=timeout,
        env=_env(),
        check=False,
    )
    return result.returncode == 0


def find_min_arena(model_bytes: bytes, timeout: float = 120.0) -> int:
    """Smallest arena (bytes, multiple of 16) with which TFLM allocates and invokes."""
    with tempfile.TemporaryDirectory(prefix="lmuformer_arena_") as tmp:
        path = os.path.join(tmp, "model.tflite")
        with open(path, "wb") as f:
            f.write(model_bytes)
        low, high = 0, None
        for _ in range(64):
            code, lines = _run_worker(path, low, high, timeout)
            pending = None
            done = None
            for line in lines:
                parts = line.split()
                if len(parts) != 2:
                    continue
                word, value = parts[0], int(parts[1])
                if word == "try":
                    pending = value
                elif word == "ok":
                    high = value if high is None else min(high, value)
                    pending = None
                elif word == "fail":
                    low = max(low, value)
                    pending = None
                elif word == "done":
                    done = value
            if done is not None:
                if not _fresh_probe(path, done, timeout):
                    low = max(low, done)
                    high = None
                    continue
                if done > GRANULARITY and _fresh_probe(
                    path, done - GRANULARITY, timeout
                ):
                    high = done - GRANULARITY
                    low = 0
                    continue
                return done
            if "give-up" in lines:
                break
            if pending is not None:  # the worker died on this probe: a failure
                low = max(low, pending)
            elif code != 0 and high is None:
                break
        raise RuntimeError(
            "find_min_arena: no arena size allocates the model in TFLite Micro "
            f"(last bounds {low}..{high})"
        )


def _main(argv: list[str]) -> int:
    path = argv[1]
    if argv[2] == "probe":
        with open(path, "rb") as f:
            return 0 if _probe(f.read(), int(argv[3])) else 1
    _worker(path, int(argv[2]), None if argv[3] == "none" else int(argv[3]))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
