"""``--distribute``: single device, or data parallel over every local device (JAX)."""

from __future__ import annotations

from typing import Any

# keras is imported in the functions: ``lmuformer-train`` imports this module (for
# ``MODES``) before it checks ``KERAS_BACKEND``.

MODES: tuple[str, ...] = ("none", "data_parallel")


class DistributeError(ValueError):
    """``--distribute`` cannot be used as asked (names the flag and the backend)."""


def setup_distribution(mode: str, batch_size: int) -> dict[str, Any]:
    """Sets Keras' global distribution; call before the model is built.

    ``data_parallel`` uses ``keras.distribution.DataParallel`` over
    ``keras.distribution.list_devices()``: variables are replicated, each batch is
    split along its first axis, gradients are averaged (on CPU, several devices are
    made with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``).

    Returns:
        ``{"mode", "devices"}`` for the run's metadata.

    Raises:
        DistributeError: unknown mode, a backend other than JAX, or a batch size that
            does not split evenly over the devices.
    """
    if mode not in MODES:
        raise DistributeError(
            f"--distribute: unknown mode {mode!r}; choose one of {MODES}"
        )
    if mode == "none":
        return {"mode": "none", "devices": 1}
    import keras

    backend = keras.backend.backend()
    if backend != "jax":
        raise DistributeError(
            f"--distribute=data_parallel needs the JAX backend (keras.distribution "
            f"supports JAX only), but KERAS_BACKEND={backend}; set KERAS_BACKEND=jax "
            "or use --distribute=none"
        )
    devices = keras.distribution.list_devices()
    if batch_size % len(devices):
        raise DistributeError(
            f"--batch_size={batch_size} does not split evenly over {len(devices)} "
            "devices (--distribute=data_parallel)"
        )
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=devices)
    )
    return {"mode": mode, "devices": len(devices), "device_names": list(devices)}


def clear_distribution() -> None:
    """Back to single-device execution (evaluation, streaming)."""
    import keras

    keras.distribution.set_distribution(None)
