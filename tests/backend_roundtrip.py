"""Save under this backend, load under another: run the load in a subprocess.

The Keras backend is fixed at import, so the other backend needs its own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np

NEXT_BACKEND = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}

_LOADER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import lmuformer_keras.layers  # noqa: F401  (registers the layers)
    import lmuformer_keras.models  # noqa: F401
    data = np.load(sys.argv[2])
    model = keras.models.load_model(sys.argv[1])  # default safe_mode=True
    out = model(data["x"])
    np.save(sys.argv[3], keras.ops.convert_to_numpy(out))
    print(keras.backend.backend())
    """
)


def assert_loads_in_other_backend(
    path: str | Path, x: np.ndarray, expected: np.ndarray, atol: float = 1e-5
) -> str:
    """Loads ``path`` under the next backend and checks ``model(x) == expected``."""
    other = NEXT_BACKEND[keras.backend.backend()]
    path = Path(path)
    data_path = path.with_suffix(".inputs.npz")
    out_path = path.with_suffix(".outputs.npy")
    np.savez(data_path, x=x)
    env = dict(os.environ, KERAS_BACKEND=other, TF_CPP_MIN_LOG_LEVEL="3")
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", _LOADER, str(path), str(data_path), str(out_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == other
    np.testing.assert_allclose(np.load(out_path), expected, atol=atol)
    return other
