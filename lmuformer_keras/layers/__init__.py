"""Keras layers: the math of LMUFormer (keras.ops only)."""

from lmuformer_keras.layers.fused_batch_norm import FusedBatchNormalization
from lmuformer_keras.layers.lif import LIF
from lmuformer_keras.layers.lmu_cell import LMUCell
from lmuformer_keras.layers.lmu_parallel import LMUParallel
from lmuformer_keras.layers.spike_activation import SpikeActivation

__all__ = [
    "FusedBatchNormalization",
    "LIF",
    "LMUCell",
    "LMUParallel",
    "SpikeActivation",
]
