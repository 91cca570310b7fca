"""The LMU memory: its forms, and the choice of form (the measured ``AUTO`` tables).

The LMU memory is a linear time-invariant system, so over a whole sequence it is the
causal convolution of the encoded input ``u`` with the impulse response
``H[k] = A^k B`` (:mod:`.lmu_response`):

    m_t = sum_{k=0}^{t} H[t - k] u_k.

Its loop-free forms, each in its own module:

- ``"fft"`` (:mod:`.lmu_conv_fft`): O(T log T), by ``keras.ops.rfft`` / ``irfft``;
- ``"direct"`` (:mod:`.lmu_conv_direct`): a lower-triangular Toeplitz matrix product,
  O(T^2), the form an int8 runtime can take; ``"convolution"`` computes the same sum
  with the backend's convolution op;
- ``"chunked"`` (:mod:`.lmu_conv_chunked`): chunks of ``C`` steps, the memory
  entering each chunk carried by ``A^C`` (``T / C`` sequential steps instead of
  ``T``).

When the memories only feed a product ``m_t @ W``, the product folds into the impulse
response and each form's ``projected_`` variant gives ``m_t @ W`` without forming
``m_t``.

This module holds the choice: :func:`resolve_conv_mode` picks the form from the
tables below (measured per backend), :func:`chunk_length_for` the chunk length.
"""

from __future__ import annotations

CONV_MODES = ("auto", "fft", "direct", "chunked")

# Crossover lengths for conv_mode="auto": the direct (Toeplitz) form is used up to and
# including this sequence length, the FFT form above it. Measured on the project's
# 2-core CPU machine with `python benchmarks/lmu_speed.py --crossover` (forward +
# backward, batch 32, order 256, memory_d 1); see BUILD.md.
AUTO_DIRECT_MAX_LENGTH = {"tensorflow": 512, "jax": 896, "torch": 640}

# conv_mode="auto" for the memory itself (LMUParallel.memory): per backend, the
# first (max length, form) entry with T <= max length (None: any length). Measured
# with `python benchmarks/lmu_speed.py --crossover` (forward + backward, batch 32,
# order 256, memory_d 1); see docs/benchmarks.md.
# The direct form costs about T multiply-adds per step and memory, the chunked one
# C + order, the FFT form O(log T), but FFT ran slower than the faster of the other
# two at every length measured on these CPUs (32-4096). Two quiet-machine runs
# (2026-12-07) had direct ahead up to T = 128 and chunked ahead or level at 256 on
# every backend, so direct is used up to 192 everywhere.
AUTO_MEMORY_FORMS = {
    "tensorflow": ((192, "direct"), (None, "chunked")),
    "jax": ((192, "direct"), (None, "chunked")),
    "torch": ((192, "direct"), (None, "chunked")),
    "default": ((192, "direct"), (None, "chunked")),
}

# Target chunk length of conv_mode="chunked" per backend (chunk_length_for spreads
# T over ceil(T / target) chunks). `benchmarks/lmu_speed.py --chunks` did not
# separate 16-128 consistently on the loaded machine (docs/benchmarks.md).
CHUNK_LENGTH = {"tensorflow": 32, "jax": 32, "torch": 32}

# Backends on which, at inference, the direct form runs as the backend's convolution
# op (kernel: the flipped impulse response, T taps) instead of gathering the Toeplitz
# matrix and multiplying: there it is 1.1-1.2x faster at T = 32 and 1.3-2.7x at
# T = 128 and 512 (batch 32, 256 outputs, float32; `benchmarks/lmu_memory_forms.py`).
# Not on JAX (XLA's convolution is 1.1-1.7x slower than the gather form there), and
# not in training: forward + backward through the convolution, with its one-channel
# weight gradient, is 1.8-3.7x slower than through the Toeplitz product.
DIRECT_AS_CONVOLUTION_AT_INFERENCE = ("tensorflow", "torch")


def chunk_length_for(length: int, target: int) -> int:
    """Chunk length for ``conv_mode="chunked"``: ``ceil(T / ceil(T / target))``.

    As many chunks as chunks of ``target`` steps would need, spread evenly, so the
    zero padding at the end is under one step per chunk (``T <= target``: one
    chunk, the whole sequence).
    """
    chunks = -(-length // max(1, target))
    return -(-length // chunks)


def resolve_conv_mode(
    conv_mode: str,
    length,
    backend: str,
    training: bool | None = False,
    projected: bool = False,
) -> str:
    """The form that computes the memory: ``"fft"``, ``"direct"``, ``"chunked"`` or
    ``"convolution"``.

    ``conv_mode="auto"`` picks by length from the measured table
    ``AUTO_MEMORY_FORMS`` for the memory itself, and between ``"direct"`` and
    ``"fft"`` (``AUTO_DIRECT_MAX_LENGTH``) for its projection
    (``projected=True``, :meth:`LMUParallel.projected_memory`). The forms that
    need a static ``T`` (``"chunked"``, ``"convolution"``) give way to ``"fft"``
    (also when ``"chunked"`` is asked for) when ``T``
    is unknown at trace time. ``"direct"`` runs as ``"convolution"`` (the same
    O(T^2) sum by the backend's convolution op) at inference on the backends in
    ``DIRECT_AS_CONVOLUTION_AT_INFERENCE`` when ``T`` is static.
    """
    if conv_mode == "auto":
        if not isinstance(length, int):
            return "fft"
        if projected:
            direct = length <= AUTO_DIRECT_MAX_LENGTH.get(backend, 64)
            conv_mode = "direct" if direct else "fft"
        else:
            table = AUTO_MEMORY_FORMS.get(backend, AUTO_MEMORY_FORMS["default"])
            conv_mode = next(f for t, f in table if t is None or length <= t)
    if conv_mode == "chunked" and not isinstance(length, int):
        return "fft"
    if (
        conv_mode == "direct"
        and not training
        and isinstance(length, int)
        and backend in DIRECT_AS_CONVOLUTION_AT_INFERENCE
    ):
        return "convolution"
    return conv_mode
