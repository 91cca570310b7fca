"""The library's backend-specific compute kernels, by concern.

- :mod:`~lmuformer_keras.kernels.scan`: loops over time (``time_scan``, the LIF's
  torch inference loop);
- :mod:`~lmuformer_keras.kernels.batch_norm`: fused batch normalization;
- :mod:`~lmuformer_keras.kernels.products`: ``matmul`` and ``conv1d``.

Layers call them through :mod:`lmuformer_keras.backend_utils`, which re-exports
every one (the import path that code and benchmarks use).
"""
