"""Step graph -> TFLite flatbuffer with the TensorFlow converter (TF backend only).

The step model is wrapped in a ``tf.function`` with a batch-1 ``input_signature`` and
converted with ``tf.lite.TFLiteConverter.from_concrete_functions([cf])`` WITHOUT the
trackable argument (with it, weights stay variables and int8 calibration fails).
Input tensors are named ``frame``, ``state_0``, ...; the names of the outputs (the
converter keeps the concrete function's ``Identity``, ``Identity_1``, ... names) are
returned so the caller can map tensors by name, whatever order the converter chose.
"""

from __future__ import annotations

import numpy as np

from lmuformer_keras.console import converter_notices_dropped
from lmuformer_keras.contract import StateSpec

from .errors import ConversionError

QUANTIZATIONS = ("int8", "int16x8", "float32")


def input_names(states: list[StateSpec]) -> list[str]:
    """TFLite input tensor names, in step-model order: ``frame``, ``state_<i>``."""
    return ["frame"] + [f"state_{i}" for i in range(len(states))]


def convert_step_model(
    step_model,
    num_features: int,
    states: list[StateSpec],
    samples: list[list[np.ndarray]],
    quantization: str = "int8",
) -> tuple[bytes, dict]:
    """Convert ``step_model`` to a TFLite flatbuffer.

    Args:
        step_model: ``keras.Model`` ``[frame, *states] -> [logits, *new_states]``
            built under the TensorFlow backend.
        num_features: frame size ``F``.
        states: state specs (shape without batch).
        samples: representative dataset, tuples ``[frame (1, F), *states (1, ...)]``.
        quantization: ``"int8"``, ``"int16x8"`` or ``"float32"``.

    Returns:
        ``(model_bytes, {"inputs": [...], "outputs": [...]})``: the tensor names of
        the inputs and outputs in step-model order.
    """
    import keras
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"convert_step_model: quantization must be one of {QUANTIZATIONS}, "
            f"got quantization={quantization!r}"
        )
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "convert_step_model runs under the TensorFlow backend only, got "
            f"{keras.backend.backend()!r} (use lmuformer_export.tf_subprocess)"
        )
    names = input_names(states)
    signature = [tf.TensorSpec((1, num_features), tf.float32, name=names[0])]
    signature += [
        tf.TensorSpec((1, *s.shape), tf.as_dtype(s.dtype), name=n)
        for s, n in zip(states, names[1:], strict=True)
    ]

    @tf.function(input_signature=signature, autograph=False)
    def step(*args):
        outputs = step_model(list(args), training=False)
        return [tf.identity(o) for o in outputs]

    concrete = step.get_concrete_function()
    output_names = [t.name.split(":")[0] for t in concrete.outputs]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    _set_quantization(converter, quantization, samples)
    model_bytes = _convert(converter, quantization)
    return bytes(model_bytes), {"inputs": names, "outputs": output_names}


def _set_quantization(converter, quantization: str, samples) -> None:
    """Post-training ``int8`` / ``int16x8`` (integer inputs and outputs, calibrated
    on ``samples``) or plain ``float32`` built-in ops."""
    import tensorflow as tf

    if quantization != "float32":

        def representative_dataset():
            for sample in samples:
                yield [np.asarray(a) for a in sample]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        if quantization == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            io_type = tf.int8
        else:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
            io_type = tf.int16
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]


def _convert(converter, quantization: str) -> bytes:
    """``converter.convert()``; any failure becomes a :class:`ConversionError`
    holding the converter's last lines."""
    try:
        with converter_notices_dropped():  # deprecation notice, fully_quantize: ...
            model_bytes = converter.convert()
    except Exception as error:  # the converter raises several unrelated types
        message = str(error).strip().splitlines()
        detail = " | ".join(line.strip() for line in message[-6:] if line.strip())
        hint = ""
        if "16x8-bit not yet supported" in detail:
            hint = (
                " (the int16x8 mode lacks these ops, e.g. the comparisons of spiking "
                "neurons: export such models as int8)"
            )
        raise ConversionError(
            f"the TFLite converter failed on the step graph ({quantization}): "
            f"{type(error).__name__}: {detail}{hint}"
        ) from error
    return model_bytes
