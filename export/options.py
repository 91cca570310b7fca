"""``ExportOptions``: the export's settings, shared by the Python API and the CLI.

:func:`lmuformer_export.export_streaming_model` takes them as keyword arguments or as
one ``options=ExportOptions(...)``; ``lmuformer-export`` builds them from its flags
(:meth:`ExportOptions.from_flags`). Importing this module imports no TensorFlow or
Keras.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from .errors import ExportError
from .tf_convert import QUANTIZATIONS

# The CLI flags that are ExportOptions fields (same names, same defaults).
CLI_FIELDS = (
    "quantization",
    "max_clips",
    "max_tflm_clips",
    "litert_resolver",
    "divergence_clips",
    "max_calibration_samples",
    "verify",
    "optimize_graph",
    "dense_as_conv",
)


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """How a streaming model is converted, rewritten, written and verified.

    Attributes:
        quantization: ``"int8"`` (int8 weights per channel, int8 activations and
            I/O), ``"int16x8"`` (int16 activations and I/O, int8 weights) or
            ``"float32"``.
        max_calibration_clips: calibration clips streamed for the representative set.
        max_calibration_samples: random ``(clip, frame)`` tuples kept (plus the
            extremes of every input).
        max_clips: verification clips streamed in LiteRT (``None``: all).
        max_tflm_clips: verification clips streamed in TFLite Micro too (``None``:
            all).
        arena_margin: ``arena_bytes = min_arena * (1 + arena_margin)``, rounded up
            to 16 bytes.
        litert_resolver: LiteRT kernels compared with TFLite Micro:
            ``"reference"`` (``BUILTIN_REF``, default), ``"optimized"``
            (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``) or ``"default"`` (optimized
            kernels + XNNPACK); the per-step difference against the others is
            reported too.
        divergence_clips: integer models: verification clips rerun with every op
            output exposed, to report per op where TFLM and LiteRT part
            (:mod:`lmuformer_export.op_divergence`; 0: skip).
        strip_names: drop the names of internal tensors in ``model.tflite``
            (smaller flash; inputs and outputs keep theirs).
        optimize_graph: fold LIF neurons (int8), remove shape ops that move no
            data and merge equal constants (smaller flash and arena; the folds are
            exact up to the int8 rounding of the LIF potential, see
            :mod:`lmuformer_export.lif_fold`).
        dense_as_conv: int8: run each Dense as a 1x1 ``CONV_2D`` (same weights and
            arithmetic), whose int8 kernels give the same bytes in TFLite Micro and
            LiteRT where ``FULLY_CONNECTED``'s do not
            (:mod:`lmuformer_export.dense_as_conv`).
        verify: stream in LiteRT/TFLM (else only convert, check and write).
        extra_modules: modules to import in the TF conversion process (non-TF
            backends) besides those defining the step model's layer classes.
        verbose: print a summary.
    """

    quantization: str = "int8"
    max_calibration_clips: int = 200
    max_calibration_samples: int = 1000
    max_clips: int | None = None
    max_tflm_clips: int | None = None
    arena_margin: float = 0.25
    litert_resolver: str = "reference"
    divergence_clips: int = 8
    strip_names: bool = True
    optimize_graph: bool = True
    dense_as_conv: bool = True
    verify: bool = True
    extra_modules: Sequence[str] = ()
    verbose: bool = True

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise ExportError(
                "export_streaming_model: quantization must be one of "
                f"{QUANTIZATIONS}, got quantization={self.quantization!r}"
            )

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def from_flags(cls, flag_values: Any, **overrides: Any) -> ExportOptions:
        """The options the ``lmuformer-export`` flags name (see :data:`CLI_FIELDS`).

        Args:
            flag_values: parsed ``absl.flags.FlagValues`` holding the
                :data:`CLI_FIELDS` flags.
            **overrides: further fields (e.g. ``verbose``).

        Returns:
            The options; fields without a flag keep their defaults.
        """
        values = {name: flag_values[name].value for name in CLI_FIELDS}
        return cls(**{**values, **overrides})

    def replace(self, **changes: Any) -> ExportOptions:
        """A copy with ``changes``; an unknown name is a ``TypeError``.

        Raises:
            TypeError: for a name that is not an option (as a function call would).
        """
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise TypeError(
                f"export_streaming_model() got unexpected keyword argument(s) "
                f"{', '.join(map(repr, unknown))}"
            )
        return dataclasses.replace(self, **changes)
