"""Small real LMUFormer models and a learnable toy task, for the export tests.

- ``make_sign_task``: clips ``(n, T, F)`` whose class is the sign pattern of the
  means of two feature groups (``class = 2 [mean(x[..., F/2:]) > 0] +
  [mean(x[..., :F/2]) > 0]``): every frame carries the signal, so a small LMUFormer
  learns it in a few epochs, with wide margins.
- ``train_lmuformer``: a small causal ``LMUFormer`` (non-spiking or spiking), random
  init, a few epochs of Adam on the task, under the current Keras backend.
- ``GeluStep``: a tiny model meeting the streaming contract whose hidden Dense uses
  GELU, an op TensorFlow Lite Micro lacks (no LMUFormer has one).
- ``build_tiny_kws``: a keyword-spotting preset with random weights and random
  BatchNormalization statistics (so none is the identity the converter drops), for
  the flash and arena budgets.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

NUM_FEATURES = 8
NUM_CLASSES = 4
NUM_FRAMES = 16
LABELS = ["neg_neg", "neg_pos", "pos_neg", "pos_pos"]
FRONTEND = {
    "name": "toy_features",
    "params": {"num_features": NUM_FEATURES, "sample_rate": 16000},
    "frame_hop_ms": 20.0,
}
SMALL = dict(dim=16, order=8, theta=float(NUM_FRAMES), num_patch_layers=1, mlp_ratio=1)


def make_sign_task(
    n: int,
    num_frames: int = NUM_FRAMES,
    num_features: int = NUM_FEATURES,
    seed: int = 0,
    offset: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(x (n, T, F) float32, y (n,) int64)``: class = sign pattern of two means."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, NUM_CLASSES, size=n)
    half = num_features // 2
    signs = np.stack([np.where(y & 1, 1.0, -1.0), np.where(y & 2, 1.0, -1.0)], 1)
    shift = np.concatenate(
        [np.repeat(signs[:, :1], half, 1), np.repeat(signs[:, 1:], half, 1)], 1
    )
    x = rng.normal(0.0, 1.0, size=(n, num_frames, num_features))
    x += offset * shift[:, None, :]
    return x.astype(np.float32), y.astype(np.int64)


def build_lmuformer(spiking: bool = False, causal: bool = True, **overrides):
    """A small built ``LMUFormer`` with labels and frontend (random weights)."""
    from lmuformer_keras.models import LMUFormer

    config = dict(
        num_features=NUM_FEATURES,
        num_classes=NUM_CLASSES,
        spiking=spiking,
        causal=causal,
        labels=list(LABELS),
        frontend=dict(FRONTEND),
        name="spiking_small" if spiking else "small",
        **SMALL,
    )
    config.update(overrides)
    model = LMUFormer(**config)
    model.build((None, None, NUM_FEATURES))
    return model


def train_lmuformer(
    spiking: bool = False, epochs: int = 3, n_train: int = 256, seed: int = 0
):
    """``(model, train_accuracy)``: a small LMUFormer trained on the sign task."""
    keras.utils.set_random_seed(seed)
    model = build_lmuformer(spiking=spiking)
    x, y = make_sign_task(n_train, seed=seed + 1)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return model, float(history.history["accuracy"][-1])


def build_tiny_kws(spiking: bool, seed: int = 0):
    """``LMUFormer.from_preset("lmuformer_tiny_kws", spiking=...)``, random stats."""
    from lmuformer_keras.models import LMUFormer

    keras.utils.set_random_seed(seed)
    model = LMUFormer.from_preset(
        "lmuformer_tiny_kws", spiking=spiking, labels=[f"c{i}" for i in range(12)]
    )
    if not model.built:
        model.build((None, None, model.num_features))
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            layer.beta.assign(rng.normal(0.0, 0.2, n).astype("float32"))
            layer.moving_mean.assign(rng.normal(0.0, 0.2, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype("float32"))
    return model


@dataclass(frozen=True)
class StateSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


class GeluStep:
    """Streaming contract, one state; its hidden Dense is named ``gelu_hidden``."""

    def __init__(self, num_features: int = NUM_FEATURES, hidden: int = 8):
        frame = keras.Input((num_features,), name="frame")
        state = keras.Input((hidden,), name="state")
        h = keras.layers.Dense(hidden, activation="gelu", name="gelu_hidden")(frame)
        new_state = keras.layers.Add(name="accumulate")([state, h])
        logits = keras.layers.Dense(NUM_CLASSES, name="head")(new_state)
        self.step_model = keras.Model([frame, state], [logits, new_state])
        self.state_specs = [StateSpec("state", (hidden,))]
        self.labels = list(LABELS)
        self.frontend = dict(FRONTEND)

    def initial_states(self, batch_size: int) -> list[np.ndarray]:
        return [np.zeros((batch_size, *s.shape), np.float32) for s in self.state_specs]
