"""LMUFormer for Keras 3: LMU layers, spiking neurons, models, streaming and export.

The public classes are attributes of the package (``lmuformer_keras.LMUFormer``,
``lmuformer_keras.StreamingModel``, ``lmuformer_keras.LMUCell``, ...), imported on
first use: ``import lmuformer_keras`` itself imports neither Keras nor a backend, so
the NumPy-only parts (:mod:`lmuformer_keras.contract`, :mod:`lmuformer_keras.features`)
stay light for the apps.

Saved models load after ``import lmuformer_keras`` alone::

    import keras
    import lmuformer_keras

    model = keras.saving.load_model("model.keras")

The Keras-serializable classes register themselves when their modules are imported:
at ``import lmuformer_keras`` when Keras is already imported, else right after Keras
is (see :func:`register_keras_objects`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import warnings
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # layers
    "BatchNormalization": "lmuformer_keras.layers",
    "Conv1D": "lmuformer_keras.layers",
    "Dense": "lmuformer_keras.layers",
    "LIF": "lmuformer_keras.layers",
    "LMUCell": "lmuformer_keras.layers",
    "LMUParallel": "lmuformer_keras.layers",
    "SpikeActivation": "lmuformer_keras.layers",
    # models
    "ChannelMixer": "lmuformer_keras.models",
    "ClassifierHead": "lmuformer_keras.models",
    "LMUFormer": "lmuformer_keras.models",
    "LMUTokenMixer": "lmuformer_keras.models",
    "PatchEmbedding": "lmuformer_keras.models",
    "PRESETS": "lmuformer_keras.models",
    "list_presets": "lmuformer_keras.models",
    "preset_config": "lmuformer_keras.models",
    # streaming
    "StreamingModel": "lmuformer_keras.streaming",
    "StreamingStep": "lmuformer_keras.streaming",
    "frame_logits": "lmuformer_keras.streaming",
    # deployment contract (NumPy only)
    "ExportMetadata": "lmuformer_keras.contract",
    "ExportedState": "lmuformer_keras.contract",
    "MetadataError": "lmuformer_keras.contract",
    "QuantizedTensor": "lmuformer_keras.contract",
    "StateSpec": "lmuformer_keras.contract",
    # frontends (NumPy only)
    "get_frontend": "lmuformer_keras.features",
    "list_frontends": "lmuformer_keras.features",
}
"""Public name -> the module that defines it."""

KERAS_MODULES = (
    "lmuformer_keras.layers",
    "lmuformer_keras.models.lmuformer",  # and the model blocks it imports
    "lmuformer_keras.streaming",
)
"""The modules whose import registers every Keras-serializable class of the package."""

__all__ = sorted(_EXPORTS) + ["register_keras_objects"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lmuformer_keras' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


def register_keras_objects() -> None:
    """Imports :data:`KERAS_MODULES`, registering every class with Keras' saving.

    Called for you (see the module docstring); call it yourself only where Keras was
    imported in an unusual way (e.g. by a module of this package that was still being
    imported at the time).
    """
    for module in KERAS_MODULES:
        importlib.import_module(module)


def _importing_this_package() -> bool:
    """Whether a module of this package is being imported right now."""
    for name, module in list(sys.modules.items()):
        if name.startswith("lmuformer_keras.") and getattr(
            getattr(module, "__spec__", None), "_initializing", False
        ):
            return True
    return False


def _register_quietly() -> None:
    """:func:`register_keras_objects`, skipped while a module of this package is
    being imported (it registers its own classes, and importing the others now could
    see it half-initialised); a failure is a warning, not a failed ``import keras``
    (using the class then raises the real error)."""
    if _importing_this_package():
        return
    try:
        register_keras_objects()
    except Exception as error:  # reported here, raised again when the class is used
        warnings.warn(
            f"lmuformer_keras: its Keras classes are not registered for loading "
            f"saved models ({type(error).__name__}: {error})",
            RuntimeWarning,
            stacklevel=2,
        )


class _RegisterAfterLoad(importlib.abc.Loader):
    """Runs Keras' own loader, then :func:`_register_quietly`."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        _register_quietly()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _KerasImportHook(importlib.abc.MetaPathFinder):
    """Finds ``keras`` with the other finders and wraps its loader (once)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "keras":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            spec = None if find is None else find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None  # not installed: the import fails as usual
        if spec.loader is None:
            return spec
        spec.loader = _RegisterAfterLoad(spec.loader)
        return spec


if "keras" in sys.modules:
    _register_quietly()
elif not any(isinstance(f, _KerasImportHook) for f in sys.meta_path):
    sys.meta_path.insert(0, _KerasImportHook())
