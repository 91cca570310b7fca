"""Named LMUFormer configurations: plain data, read by ``LMUFormer.from_preset``.

Each preset is a dict of ``LMUFormer`` constructor arguments. A keyword-spotting
preset names its frontend by a frontend record without params (``{"name":
"micro40"}``); :func:`preset_config` completes it to the full record
(:meth:`lmuformer_keras.contract.Frontend.record`: the frontend's params, the single
source of truth, and its hop).

This module imports neither Keras nor the model (:mod:`lmuformer_keras.models.lmuformer`
imports it, not the other way round): ``LMUFormer.from_preset(name, **overrides)``
checks the overrides against its own constructor.
"""

from __future__ import annotations

import copy
from typing import Any

_SCV2: dict[str, Any] = {
    "num_features": 128,
    "num_classes": 35,
    "num_frames": 128,
    "dim": 256,
    "num_blocks": 1,
    "mlp_ratio": 4,
    "order": 256,
    "theta": 128.0,
    "num_patch_layers": 4,
    "frontend": {"name": "fbank128"},
}
_TINY_KWS: dict[str, Any] = {
    "num_features": 40,
    "num_classes": 12,
    "num_frames": 49,
    "dim": 48,
    "num_blocks": 1,
    "mlp_ratio": 2,
    "order": 64,
    "theta": 49.0,
    "num_patch_layers": 2,
    "frontend": {"name": "micro40"},
}

PRESETS: dict[str, dict[str, Any]] = {
    # The paper's Speech Commands v2 model (reference trainable parameters:
    # 1,621,796 / spiking 1,689,894). Frontend: 128-bin Kaldi fbank, 128 frames.
    "lmuformer_scv2": dict(_SCV2),
    "spiking_lmuformer_scv2": dict(_SCV2, order=512, spiking=True),
    # Microcontroller keyword spotting: 40 log-mel, 20 ms hop, 12 classes; about
    # 37k parameters, so the int8 step graph fits in 64 KB of flash.
    "lmuformer_tiny_kws": dict(_TINY_KWS),
    "spiking_lmuformer_tiny_kws": dict(_TINY_KWS, spiking=True),
    # Cortex-M7-class boards (<= 256 KB flash, <= 128 KB arena): twice the width and
    # memory order of the tiny preset, about 138k parameters.
    "lmuformer_small_kws": dict(_TINY_KWS, dim=96, order=128),
    # MNIST-1D (40 steps x 1 feature, 10 classes).
    "lmuformer_mnist1d": {
        "num_features": 1,
        "num_classes": 10,
        "num_frames": 40,
        "dim": 64,
        "num_blocks": 1,
        "mlp_ratio": 2,
        "order": 32,
        "theta": 40.0,
        "num_patch_layers": 2,
    },
    # scikit-learn digits as a 64-step sequence of pixels.
    "lmuformer_digits": {
        "num_features": 1,
        "num_classes": 10,
        "num_frames": 64,
        "dim": 48,
        "num_blocks": 1,
        "mlp_ratio": 2,
        "order": 32,
        "theta": 64.0,
        "num_patch_layers": 2,
    },
    # Permuted sequential MNIST with the paper's psMNIST LMU (order 468,
    # theta 784) inside an LMUFormer block. The paper's psMNIST network itself is a
    # plain LMU classifier (hidden 346, about 167k parameters), not an LMUFormer.
    "lmuformer_psmnist": {
        "num_features": 1,
        "num_classes": 10,
        "num_frames": 784,
        "dim": 128,
        "num_blocks": 1,
        "mlp_ratio": 2,
        "order": 468,
        "theta": 784.0,
        "num_patch_layers": 1,
    },
}
"""Preset name -> ``LMUFormer`` constructor arguments (``frontend`` by name)."""


def list_presets() -> list[str]:
    """Names of the presets."""
    return sorted(PRESETS)


def preset_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The constructor arguments of preset ``name`` with ``overrides`` applied.

    A fresh copy (``PRESETS`` is never changed); ``name`` defaults to the preset's
    name; a frontend given by name only is completed to its full record. The
    override names are checked by ``LMUFormer.from_preset`` (against the
    constructor), not here.

    Raises:
        ValueError: Unknown preset name.
    """
    if name not in PRESETS:
        raise ValueError(
            f"Unknown LMUFormer preset {name!r}; available presets: {list_presets()}"
        )
    config = copy.deepcopy(PRESETS[name])
    config.setdefault("name", name)
    config.update(overrides)
    frontend = config.get("frontend")
    if frontend is not None and "params" not in frontend:
        # One source of truth: the frontend's parameters come from its definition.
        from lmuformer_keras.contract import Frontend

        config["frontend"] = Frontend.named(frontend["name"]).record()
    return config
