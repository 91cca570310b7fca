"""Models: LMUFormer assembled from the library's layers, and its presets.

The names below are imported on first use (``from lmuformer_keras.models import
LMUFormer``), so :mod:`lmuformer_keras.models.presets`, plain data, loads without
Keras or the model.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "ChannelMixer": "lmuformer_keras.models.channel_mixer",
    "ClassifierHead": "lmuformer_keras.models.classifier_head",
    "LMUFormer": "lmuformer_keras.models.lmuformer",
    "LMUTokenMixer": "lmuformer_keras.models.token_mixer",
    "PRESETS": "lmuformer_keras.models.presets",
    "PatchEmbedding": "lmuformer_keras.models.patch_embedding",
    "StateSpec": "lmuformer_keras.models.blocks",
    "list_presets": "lmuformer_keras.models.presets",
    "preset_config": "lmuformer_keras.models.presets",
}
"""Public name -> the module that defines it."""

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(
            f"module 'lmuformer_keras.models' has no attribute {name!r}"
        )
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
