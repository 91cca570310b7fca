"""Models: LMUFormer assembled from the library's layers, and its presets."""

from lmuformer_keras.models.blocks import StateSpec
from lmuformer_keras.models.channel_mixer import ChannelMixer
from lmuformer_keras.models.classifier_head import ClassifierHead
from lmuformer_keras.models.lmuformer import LMUFormer
from lmuformer_keras.models.patch_embedding import PatchEmbedding
from lmuformer_keras.models.presets import PRESETS, list_presets, preset_config
from lmuformer_keras.models.token_mixer import LMUTokenMixer

__all__ = [
    "PRESETS",
    "ChannelMixer",
    "ClassifierHead",
    "LMUFormer",
    "LMUTokenMixer",
    "PatchEmbedding",
    "StateSpec",
    "list_presets",
    "preset_config",
]
