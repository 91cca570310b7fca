"""Run the TFLite conversion under the TensorFlow backend from any Keras backend.

The converter traces the step model with ``tf.function``, which needs Keras' TensorFlow
backend; a model built under JAX or torch cannot be traced. The Keras backend is fixed
per process, so for those backends the step model is saved as ``.keras`` (with the
representative dataset as ``.npz``) and converted in a child process started with
``KERAS_BACKEND=tensorflow`` (``python -m lmuformer_export.tf_subprocess DIR``). Only
the conversion crosses the process boundary: calibration, graph edits and verification
run in the caller's process under its own backend.

The child imports the modules that define the model's custom layer classes (so they
are registered for deserialisation) with the caller's ``sys.path``.

What crosses: the step model itself (``step_model.save``), or, when a streaming model
is built from a Keras model by an importable class (``StreamingModel(model)`` keeps
``model``), that source model, and the child rebuilds ``factory(model).step_model``.
The second form is preferred: a source model such as ``LMUFormer`` is fully
serialisable, whereas a step model wrapping it in a custom layer may not be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import traceback
from dataclasses import asdict

import numpy as np

from lmuformer_keras.contract import StateSpec

from .calibration import stack_samples, unstack_samples
from .contract import layer_modules
from .errors import ERROR_CLASSES, ConversionError, ExportError


def convert_in_subprocess(
    step_model,
    num_features: int,
    states: list[StateSpec],
    samples: list[list[np.ndarray]],
    quantization: str,
    extra_modules=(),
    timeout: float = 900.0,
    source_model=None,
    factory: str | None = None,
) -> tuple[bytes, dict]:
    """Same contract as :func:`lmuformer_export.tf_convert.convert_step_model`.

    Args:
        source_model, factory: when both are given, ``source_model`` (a Keras model)
            is saved instead of ``step_model`` and the child converts
            ``factory(source_model).step_model`` (``factory``: ``"module:callable"``).
    """
    saved = source_model if (source_model is not None and factory) else step_model
    modules = set(layer_modules(saved)) | set(extra_modules)
    if saved is source_model:
        modules.add(factory.partition(":")[0])
    modules = sorted(modules)
    if "__main__" in modules:
        raise ExportError(
            "the step model uses a layer class defined in __main__, which the "
            "TensorFlow-backend conversion process cannot import: move it to a module, "
            "or export under KERAS_BACKEND=tensorflow"
        )
    with tempfile.TemporaryDirectory(prefix="lmuformer_export_") as tmp:
        try:
            saved.save(os.path.join(tmp, "step_model.keras"))
        except Exception as error:  # Keras: a layer without get_config, ...
            raise ConversionError(
                f"cannot save {type(saved).__name__} '{saved.name}' for the "
                f"TensorFlow-backend conversion process: {type(error).__name__}: "
                f"{str(error).strip().splitlines()[0]} (export under "
                "KERAS_BACKEND=tensorflow instead)"
            ) from error
        arrays = stack_samples(samples)
        np.savez(os.path.join(tmp, "samples.npz"), *arrays)
        spec = {
            "num_features": num_features,
            "states": [asdict(s) for s in states],
            "quantization": quantization,
            "modules": modules,
            "factory": factory if saved is source_model else None,
        }
        with open(os.path.join(tmp, "spec.json"), "w") as f:
            json.dump(spec, f)
        env = dict(
            os.environ,
            KERAS_BACKEND="tensorflow",
            PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
            TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        )
        result = subprocess.run(
            [sys.executable, "-m", "lmuformer_export.tf_subprocess", tmp],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        error_path = os.path.join(tmp, "error.json")
        if os.path.exists(error_path):
            with open(error_path) as f:
                error = json.load(f)
            raise ERROR_CLASSES.get(error["type"], ConversionError)(error["message"])
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-15:]
            raise ConversionError(
                "the TensorFlow-backend conversion process failed "
                f"(exit code {result.returncode}): " + "\n".join(tail)
            )
        with open(os.path.join(tmp, "model.tflite"), "rb") as f:
            model_bytes = f.read()
        with open(os.path.join(tmp, "io.json")) as f:
            io_names = json.load(f)
    return model_bytes, io_names


def _child(directory: str) -> None:
    import importlib

    os.environ["KERAS_BACKEND"] = "tensorflow"
    with open(os.path.join(directory, "spec.json")) as f:
        spec = json.load(f)
    for module in spec["modules"]:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ConversionError(
                f"the conversion process cannot import module '{module}' (it defines "
                f"layers of the step model): {error}"
            ) from error
    import keras

    from .tf_convert import convert_step_model

    step_model = keras.models.load_model(
        os.path.join(directory, "step_model.keras"), compile=False, safe_mode=False
    )
    if spec.get("factory"):
        module_name, _, attribute = spec["factory"].partition(":")
        factory = getattr(importlib.import_module(module_name), attribute)
        step_model = factory(step_model).step_model
    with np.load(os.path.join(directory, "samples.npz")) as data:
        arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
    states = [
        StateSpec(s["name"], tuple(s["shape"]), s["dtype"]) for s in spec["states"]
    ]
    model_bytes, io_names = convert_step_model(
        step_model,
        spec["num_features"],
        states,
        unstack_samples(arrays),
        spec["quantization"],
    )
    with open(os.path.join(directory, "model.tflite"), "wb") as f:
        f.write(model_bytes)
    with open(os.path.join(directory, "io.json"), "w") as f:
        json.dump(io_names, f)


def main(argv: list[str]) -> int:
    directory = argv[1]
    try:
        _child(directory)
    except ExportError as error:
        with open(os.path.join(directory, "error.json"), "w") as f:
            json.dump({"type": type(error).__name__, "message": str(error)}, f)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
