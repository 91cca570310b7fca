"""The few backend-specific helpers of the library, one import path for them all.

They live in :mod:`lmuformer_keras.kernels` by concern (``scan``: loops over time;
``batch_norm``: fused batch normalization; ``products``: ``matmul``,
``conv1d`` and ``conv1d_as_window_product``) and are re-exported here, so
``from lmuformer_keras import backend_utils`` keeps working (and a benchmark may
still replace ``backend_utils.conv1d`` for the layers that call it through this module).
"""

from __future__ import annotations

from lmuformer_keras.kernels.batch_norm import (
    fused_batch_norm_inference,
    fused_batch_norm_training,
)
from lmuformer_keras.kernels.products import (
    _jax_matmul_float32_accumulation,  # noqa: F401
    conv1d,
    conv1d_as_window_product,
    matmul,
    matmul_accumulates_in_float32,
)
from lmuformer_keras.kernels.scan import (
    _jax_time_scan,  # noqa: F401
    _tf_has_xla,  # noqa: F401  (tests clear its cache)
    _tf_time_scan,  # noqa: F401
    lif_scan_without_autograd,
    time_scan,
)

__all__ = [
    "conv1d",
    "conv1d_as_window_product",
    "fused_batch_norm_inference",
    "fused_batch_norm_training",
    "lif_scan_without_autograd",
    "matmul",
    "matmul_accumulates_in_float32",
    "time_scan",
]
