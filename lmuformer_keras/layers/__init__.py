"""Keras layers: the math of LMUFormer (keras.ops only)."""

from lmuformer_keras.layers.batch_normalization import BatchNormalization
from lmuformer_keras.layers.conv1d import Conv1D
from lmuformer_keras.layers.dense import Dense
from lmuformer_keras.layers.lif import LIF
from lmuformer_keras.layers.lmu_cell import LMUCell
from lmuformer_keras.layers.lmu_parallel import LMUParallel
from lmuformer_keras.layers.spike_activation import SpikeActivation

__all__ = [
    "BatchNormalization",
    "Conv1D",
    "Dense",
    "LIF",
    "LMUCell",
    "LMUParallel",
    "SpikeActivation",
]
