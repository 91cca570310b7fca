"""``lmuformer-export``: saved Keras model -> verified TFLite Micro artifacts.

Usage::

    lmuformer-export --model M.keras --calibration C.npz --out DIR \\
        [--quantization int8|int16x8|float32] [--test T.npz]

``C.npz`` (and ``T.npz``) hold ``x`` ``(N, T, F)`` and optionally ``y`` ``(N,)``.
The export always runs under Keras' TensorFlow backend (the model may have been trained
on any backend): ``KERAS_BACKEND`` is set to ``tensorflow`` before Keras is imported,
or, when Keras is already imported with another backend (``main()`` called from such a
process), the CLI re-runs itself in a child process.

Flags live in a private ``absl.flags.FlagValues`` so this module can be imported beside
other absl CLIs (the training CLI) without duplicate-flag errors.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys

import numpy as np
from absl import flags

from lmuformer_keras.console import quiet_tensorflow

from .artifacts import check_out_dir
from .contract import DEFAULT_FACTORY
from .errors import (
    CalibrationDataError,
    ExportError,
    NotStreamableError,
    OutputDirError,
)
from .options import ExportOptions

PROG = "lmuformer-export"

FLAGS = flags.FlagValues()
_DEFAULTS = ExportOptions()  # the flags of ExportOptions fields share its defaults
flags.DEFINE_string("model", None, "Saved Keras model (.keras).", flag_values=FLAGS)
flags.DEFINE_string(
    "calibration",
    None,
    "Calibration clips .npz: x (N, T, F), optional y (N,).",
    flag_values=FLAGS,
)
flags.DEFINE_string("out", None, "Output folder.", flag_values=FLAGS)
flags.DEFINE_enum(
    "quantization",
    _DEFAULTS.quantization,
    ["int8", "int16x8", "float32"],
    "int8: int8 weights/activations/IO; int16x8: int16 activations and IO; float32.",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "test",
    None,
    "Test clips .npz for verification (default: the calibration clips).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "streaming_factory",
    DEFAULT_FACTORY,
    "module:callable building the streaming model from the loaded Keras model.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "max_clips",
    _DEFAULTS.max_clips,
    "Verification clips streamed in LiteRT (default: all).",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "max_tflm_clips",
    _DEFAULTS.max_tflm_clips,
    "Verification clips streamed in TFLite Micro too (default: all).",
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "litert_resolver",
    _DEFAULTS.litert_resolver,
    ["reference", "optimized", "default"],
    "LiteRT kernels compared with TFLite Micro: reference (BUILTIN_REF), optimized "
    "(BUILTIN_WITHOUT_DEFAULT_DELEGATES) or default (optimized + XNNPACK); the "
    "others are reported too.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "divergence_clips",
    _DEFAULTS.divergence_clips,
    "Integer models: verification clips rerun with every op output exposed, to "
    "report per op where TFLite Micro and LiteRT differ (0: skip).",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "max_calibration_samples",
    _DEFAULTS.max_calibration_samples,
    "Representative (frame, states) tuples.",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "verify", _DEFAULTS.verify, "Stream in LiteRT and TFLite Micro.", flag_values=FLAGS
)
flags.DEFINE_bool(
    "optimize_graph",
    _DEFAULTS.optimize_graph,
    "Fold LIF neurons (int8), remove shape ops that move no data, merge equal "
    "constants (--nooptimize_graph: the converter's graph, for comparison).",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "dense_as_conv",
    _DEFAULTS.dense_as_conv,
    "int8: run each Dense as a 1x1 CONV_2D (same weights and arithmetic; TFLite "
    "Micro and LiteRT then compute the same bytes). --nodense_as_conv keeps "
    "FULLY_CONNECTED.",
    flag_values=FLAGS,
)


def load_clips_file(path: str, what: str) -> tuple:
    """``(x, y_or_None)`` from an ``.npz``; shape checks need the model (later)."""
    if not os.path.isfile(path):
        raise CalibrationDataError(f"{what} file {path}: not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            files = sorted(data.files)
            x = data["x"] if "x" in files else None
            y = data["y"] if "y" in files else None
    except (OSError, ValueError) as error:
        raise CalibrationDataError(
            f"{what} file {path}: cannot read: {error}"
        ) from error
    if x is None:
        raise CalibrationDataError(
            f"{what} file {path}: no array 'x' (expected x of shape (N, T, F) and "
            f"optionally y of shape (N,); found {files})"
        )
    if y is not None and (y.ndim == 0 or x.ndim == 0 or len(y) != len(x)):
        raise CalibrationDataError(
            f"{what} file {path}: y has shape {y.shape} but x has shape {x.shape}: "
            "expected one label per clip"
        )
    return x, y


def resolve_factory(spec: str):
    """Import ``module:callable``; a missing module means no streaming form."""
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise NotStreamableError(
            f"cannot build the streaming form: module '{module_name}' is not "
            f"available ({error})"
        ) from error
    attribute = attribute or "StreamingModel"
    if not hasattr(module, attribute):
        raise NotStreamableError(
            f"cannot build the streaming form: module '{module_name}' has no "
            f"'{attribute}'"
        )
    return getattr(module, attribute)


def build_streaming_model(model, factory_spec: str = DEFAULT_FACTORY, source=""):
    """``factory(model)``, turning any failure into :class:`NotStreamableError`."""
    factory = resolve_factory(factory_spec)
    name = source or getattr(model, "name", "model")
    try:
        streaming = factory(model)
    except ExportError:
        raise
    except Exception as error:  # the factory's own validation errors
        raise NotStreamableError(
            f"model {name} has no streaming form ({factory_spec}): "
            f"{type(error).__name__}: {error}"
        ) from error
    return streaming


def _import_project_layers() -> None:
    for module in (
        "lmuformer_keras",
        "lmuformer_keras.layers",
        "lmuformer_keras.models",
    ):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


def run(
    model_path: str,
    calibration_path: str,
    out_dir: str,
    quantization: str | None = None,
    test_path: str | None = None,
    streaming_factory: str = DEFAULT_FACTORY,
    options: ExportOptions | None = None,
    **option_values,
) -> dict:
    """The CLI's work, callable from Python (TensorFlow backend required).

    Args:
        model_path: saved Keras model (``.keras``).
        calibration_path: calibration ``.npz`` (``x``, optional ``y``).
        out_dir: output folder.
        quantization: overrides ``options.quantization`` when given.
        test_path: test ``.npz`` for verification (default: the calibration clips).
        streaming_factory: ``module:callable`` building the streaming model.
        options: the export's settings (default: ``ExportOptions()``).
        **option_values: :class:`ExportOptions` fields overriding ``options``.

    Returns:
        The export's report.
    """
    x_cal, y_cal = load_clips_file(calibration_path, "calibration")
    x_test, y_test = (None, None)
    if test_path:
        x_test, y_test = load_clips_file(test_path, "test")
    if not os.path.exists(model_path):
        raise ExportError(f"--model {model_path}: not found")
    module_name = streaming_factory.partition(":")[0]
    # Import the factory's module first: it registers its layers for loading (an
    # ImportError is reported by build_streaming_model).
    with contextlib.suppress(ImportError):
        importlib.import_module(module_name)
    _import_project_layers()
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ExportError(
            "lmuformer_export.cli.run needs the TensorFlow backend; use main() or the "
            f"{PROG} command, which switch to it"
        )
    try:
        model = keras.models.load_model(model_path, compile=False)
    except Exception as error:
        raise ExportError(f"--model {model_path}: cannot load: {error}") from error
    model = _float32(model, model_path)
    streaming = build_streaming_model(model, streaming_factory, source=model_path)

    from .calibration import check_clips
    from .contract import check_streaming_model, num_features
    from .convert import export_streaming_model

    check_streaming_model(streaming)
    features = num_features(streaming)
    x_cal = check_clips(x_cal, features, f"calibration file {calibration_path}: x")
    if x_test is not None:
        x_test = check_clips(x_test, features, f"test file {test_path}: x")
    return export_streaming_model(
        streaming,
        x_cal,
        out_dir,
        quantization=quantization,
        y=y_cal,
        test_x=x_test,
        test_y=y_test,
        options=options,
        **option_values,
    )


def _float32(model, model_path: str):
    """The model in float32: the step graph is converted from float32 ops."""
    policy = getattr(model, "dtype_policy", None)
    if policy is None or policy.name == "float32":
        return model
    if not hasattr(model, "with_dtype_policy"):
        raise ExportError(
            f"--model {model_path}: computes under dtype policy {policy.name!r}; "
            "export needs a float32 model"
        )
    print(
        f"{PROG}: --model {model_path} was saved under dtype policy "
        f"{policy.name!r}; exporting its float32 copy (same weights)",
        flush=True,
    )
    return model.with_dtype_policy("float32")


def _needs_reexec() -> bool:
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend() != "tensorflow"
    os.environ["KERAS_BACKEND"] = "tensorflow"
    return False


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code (0 ok, 1 error, 2 usage).

    ``--out`` that is a regular file, or a folder holding files an export does not
    write, is a usage error (2). The export is written into a sibling folder and
    swapped in at the end, so an error (1) leaves a previous export intact.
    """
    argv = list(sys.argv if argv is None else argv)
    if any(a in ("-h", "--help", "--helpfull") for a in argv[1:]):
        print(__doc__.strip() + "\n\nFlags:\n" + FLAGS.get_help())
        return 0
    try:
        FLAGS(argv)
        for name in ("model", "calibration", "out"):
            if not FLAGS[name].value:
                raise flags.Error(f"--{name} is required")
        check_out_dir(FLAGS.out)  # a file, or a folder of other files: usage
    except (flags.Error, OutputDirError) as error:
        print(f"{PROG}: usage error: {error}", file=sys.stderr)
        return 2
    quiet_tensorflow(import_now=True)  # no TensorFlow start-up lines
    if _needs_reexec():
        env = dict(os.environ, KERAS_BACKEND="tensorflow")
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        command = [sys.executable, "-m", "lmuformer_export.cli", *argv[1:]]
        return subprocess.call(command, env=env)
    try:
        run(
            FLAGS.model,
            FLAGS.calibration,
            FLAGS.out,
            test_path=FLAGS.test,
            streaming_factory=FLAGS.streaming_factory,
            options=ExportOptions.from_flags(FLAGS),
        )
    except OutputDirError as error:
        print(f"{PROG}: usage error: {error}", file=sys.stderr)
        return 2
    except ExportError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
