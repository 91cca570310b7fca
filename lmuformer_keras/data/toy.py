"""Small sequence datasets available offline: MNIST-1D, sklearn digits, psMNIST.

All return a :class:`Dataset` of float32 ``(N, T, 1)`` sequences with int64 labels and
``frontend=None``.

- :func:`mnist1d`: the standard MNIST-1D set (4000 train / 1000 test sequences of 40),
  generated offline by the ``mnist1d`` package; validation = the last
  ``validation_size`` (500) training sequences, train = the first 3500.
- :func:`digits`: scikit-learn's 1797 8x8 digits read row by row as 64 steps, scaled to
  [0, 1]; fixed split from ``RandomState(0)``: 360 test, 180 validation, 1257 train.
- :func:`psmnist`: permuted sequential MNIST (784 steps of one pixel in [0, 1]) from a
  local MNIST file; one fixed permutation ``np.random.default_rng(0).permutation(784)``
  applied to every image; validation = the last 10000 training images (50k / 10k /
  10k as in the LMU paper).
"""

from __future__ import annotations

import gzip
import os
import struct
import tempfile

import numpy as np

from lmuformer_keras.data.dataset import Dataset


def _seq(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).reshape(len(x), -1, 1)


def mnist1d(seed: int = 42, validation_size: int = 500) -> Dataset:
    """MNIST-1D (``mnist1d.data.get_dataset_args()``, generated, nothing downloaded).

    Args:
        seed: the generator seed (42 gives the published dataset).
        validation_size: training sequences held out (the last ones) for validation.
    """
    try:
        import mnist1d.data as m1d
    except ImportError as e:  # pragma: no cover - dependency missing
        raise ImportError("mnist1d() needs the 'mnist1d' package") from e
    args = m1d.get_dataset_args()
    args.seed = seed
    with tempfile.TemporaryDirectory() as tmp:
        data = m1d.get_dataset(
            args,
            path=os.path.join(tmp, "mnist1d.pkl"),
            download=False,
            regenerate=True,
            verbose=False,
        )
    x, y = _seq(data["x"]), np.asarray(data["y"], dtype=np.int64)
    if not 0 <= validation_size < len(x):
        raise ValueError(
            f"mnist1d: validation_size must be in [0, {len(x)}), got {validation_size}"
        )
    n_train = len(x) - validation_size
    return Dataset(
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_val=x[n_train:],
        y_val=y[n_train:],
        x_test=_seq(data["x_test"]),
        y_test=np.asarray(data["y_test"], dtype=np.int64),
        labels=[str(i) for i in range(10)],
        frontend=None,
        summary={
            "source": "mnist1d (generated offline)",
            "seed": seed,
            "train": n_train,
            "val": validation_size,
            "test": int(len(data["x_test"])),
            "validation": f"last {validation_size} of the 4000 training sequences",
        },
        name="mnist1d",
    )


def digits(test_size: int = 360, validation_size: int = 180, seed: int = 0) -> Dataset:
    """scikit-learn digits as 64-step sequences in [0, 1], fixed shuffled split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = _seq(bunch.data / 16.0)
    y = np.asarray(bunch.target, dtype=np.int64)
    if test_size + validation_size >= len(x):
        raise ValueError(
            f"digits: test_size + validation_size must be < {len(x)}, got "
            f"{test_size} + {validation_size}"
        )
    order = np.random.RandomState(seed).permutation(len(x))
    test = order[:test_size]
    val = order[test_size : test_size + validation_size]
    train = order[test_size + validation_size :]
    return Dataset(
        x_train=x[train],
        y_train=y[train],
        x_val=x[val],
        y_val=y[val],
        x_test=x[test],
        y_test=y[test],
        labels=[str(i) for i in range(10)],
        frontend=None,
        summary={
            "source": "sklearn.datasets.load_digits",
            "seed": seed,
            "train": len(train),
            "val": len(val),
            "test": len(test),
        },
        name="digits",
    )


_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _read_idx(path: str) -> np.ndarray:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
        zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype_code != 0x08:
            raise ValueError("not an unsigned-byte IDX file")
        shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
        arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
        return arr.reshape(shape)
    except (OSError, ValueError, struct.error, EOFError) as e:
        raise ValueError(f"psmnist: cannot read IDX file {path!r}: {e}") from e


def _load_mnist(path: str) -> dict[str, np.ndarray]:
    if os.path.isdir(path):
        npz = os.path.join(path, "mnist.npz")
        if os.path.isfile(npz):
            return _load_mnist(npz)
        arrays = {}
        for key, base in _IDX_FILES.items():
            found = [
                os.path.join(path, base + ext)
                for ext in ("", ".gz")
                if os.path.isfile(os.path.join(path, base + ext))
            ]
            if not found:
                raise FileNotFoundError(
                    f"psmnist: no mnist.npz and no IDX file {base}[.gz] in {path!r}"
                )
            arrays[key] = _read_idx(found[0])
        return arrays
    if os.path.isfile(path):
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in _IDX_FILES}
        except (KeyError, OSError, ValueError) as e:
            raise ValueError(
                f"psmnist: {path!r} is not a Keras-format mnist.npz with "
                f"x_train, y_train, x_test, y_test: {e}"
            ) from e
    raise FileNotFoundError(
        f"psmnist: MNIST not found at {path!r}; give a Keras-format mnist.npz or a "
        "folder with it or with the four IDX files (nothing is downloaded)"
    )


def psmnist(
    path: str | os.PathLike, seed: int = 0, validation_size: int = 10000
) -> Dataset:
    """Permuted sequential MNIST ``(N, 784, 1)`` from a local MNIST file.

    Args:
        path: ``mnist.npz`` (Keras format) or a folder with it or with the IDX files
            ``train-images-idx3-ubyte`` etc. (optionally ``.gz``).
        seed: permutation seed (``np.random.default_rng(seed).permutation(784)``).
        validation_size: the last training images held out for validation.

    Raises:
        FileNotFoundError: nothing usable at ``path`` (the message names it).
        ValueError: unreadable or inconsistent files.
    """
    path = os.fspath(path)
    raw = _load_mnist(path)
    for split in ("train", "test"):
        x, y = raw[f"x_{split}"], raw[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) != len(y):
            raise ValueError(
                f"psmnist: {path!r} has x_{split} {x.shape} and y_{split} {y.shape}; "
                "expected (N, 28, 28) and (N,)"
            )
    perm = np.random.default_rng(seed).permutation(784)
    x_train = _seq(raw["x_train"].reshape(-1, 784)[:, perm] / 255.0)
    x_test = _seq(raw["x_test"].reshape(-1, 784)[:, perm] / 255.0)
    y_train = raw["y_train"].astype(np.int64)
    if not 0 <= validation_size < len(x_train):
        raise ValueError(
            f"psmnist: validation_size must be in [0, {len(x_train)}), got "
            f"{validation_size}"
        )
    n = len(x_train) - validation_size
    return Dataset(
        x_train=x_train[:n],
        y_train=y_train[:n],
        x_val=x_train[n:],
        y_val=y_train[n:],
        x_test=x_test,
        y_test=raw["y_test"].astype(np.int64),
        labels=[str(i) for i in range(10)],
        frontend=None,
        summary={
            "source": os.path.abspath(path),
            "seed": seed,
            "permutation": perm.tolist(),
            "train": n,
            "val": validation_size,
            "test": len(x_test),
        },
        name="psmnist",
    )
