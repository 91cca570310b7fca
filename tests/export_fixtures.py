"""Toy streaming models meeting the streaming contract, for the export tests.

``build_toy_streaming_model`` returns a ``ToyStreamingModel`` whose ``step_model`` is a
small recurrent keyword spotter, loop-free, with three kinds of state:

- ``conv_buffer`` ``(2, F)``: the last two frames; the frame is shifted in with
  concat/slice and a Dense over the 3-frame window acts as a causal conv (kernel 3);
- ``lmu_memory`` ``(d,)``: Legendre memory ``m' = Abar m + Bbar u`` with
  ``u = relu(w . x)`` (zero-order hold, as in LMUFormer);
- spiking variant only, ``membrane`` ``(H,)``: leaky integrate-and-fire,
  ``h = v + (pre - v) / tau``, ``s = (h >= th)`` as float, ``v' = h (1 - s)``.

The head is a per-frame Dense, fitted by ridge regression on the mean over frames of
its input (clip logits = mean of frame logits = head(mean input), so this is exact), so
the toy is well conditioned without a training loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import scipy.linalg
from keras import ops

NUM_FEATURES = 16
NUM_CLASSES = 4
NUM_FRAMES = 32
LABELS = ["up", "down", "left", "right"]
FRONTEND = {
    "name": "toy_fbank",
    "params": {"num_features": NUM_FEATURES, "sample_rate": 16000, "hop_ms": 10.0},
    "frame_hop_ms": 10.0,
}


@dataclass(frozen=True)
class StateSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


def legendre_zoh(order: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero-order-hold Legendre system ``(Abar (d, d), Bbar (d,))`` with dt = 1."""
    i = np.arange(order)[:, None]
    j = np.arange(order)[None, :]
    scale = (2 * i + 1) / theta
    a = np.where(i < j, -1.0, (-1.0) ** (i - j + 1)) * scale
    b = ((2 * np.arange(order) + 1) / theta) * (-1.0) ** np.arange(order)
    abar = scipy.linalg.expm(a)
    bbar = np.linalg.solve(a, (abar - np.eye(order)) @ b)
    return abar, bbar


class ToyStreamingModel:
    """Streaming contract: ``step_model``, ``state_specs``, ``initial_states``, ..."""

    def __init__(self, step_model, state_specs, labels=None, frontend=None, head=None):
        self.step_model = step_model
        self.state_specs = list(state_specs)
        self.labels = labels
        self.frontend = frontend
        self._features_model = None
        if head is not None:
            self._features_model = keras.Model(
                step_model.inputs, [head.input, *step_model.outputs[1:]]
            )
        self._head = head

    def initial_states(self, batch_size: int) -> list[np.ndarray]:
        return [
            np.zeros((batch_size, *s.shape), dtype=s.dtype) for s in self.state_specs
        ]

    def step(self, frame, states):
        outputs = self.step_model([frame, *states], training=False)
        outputs = [np.asarray(ops.convert_to_numpy(o)) for o in outputs]
        return outputs[0], outputs[1:]

    def _scan(self, model, x):
        states = self.initial_states(x.shape[0])
        per_frame = []
        for t in range(x.shape[1]):
            outputs = model([x[:, t], *states], training=False)
            outputs = [np.asarray(ops.convert_to_numpy(o)) for o in outputs]
            per_frame.append(outputs[0])
            states = outputs[1:]
        return np.stack(per_frame, axis=1)

    def frame_logits(self, x) -> np.ndarray:
        """Float per-frame logits ``(N, T, C)``, stepping frame by frame."""
        return self._scan(self.step_model, np.asarray(x, np.float32))

    def clip_logits(self, x) -> np.ndarray:
        return self.frame_logits(x).mean(axis=1)

    def fit_head(self, x, y, l2: float = 1e-2) -> float:
        """Ridge-regress the head on mean head inputs; return train accuracy."""
        z = self._scan(self._features_model, np.asarray(x, np.float32)).mean(axis=1)
        classes = self._head.units
        targets = np.eye(classes)[y] * 2.0 - 1.0
        design = np.concatenate([z, np.ones((z.shape[0], 1))], axis=1)
        gram = design.T @ design + l2 * np.eye(design.shape[1])
        weights = np.linalg.solve(gram, design.T @ targets)
        self._head.set_weights(
            [weights[:-1].astype(np.float32), weights[-1].astype(np.float32)]
        )
        return float(np.mean(np.argmax(self.clip_logits(x), -1) == y))


def build_toy_streaming_model(
    num_features: int = NUM_FEATURES,
    num_classes: int = NUM_CLASSES,
    hidden: int = 32,
    order: int = 8,
    theta: float = float(NUM_FRAMES),
    spiking: bool = False,
    heaviside: str = "cast",
    hidden_activation: str = "relu",
    threshold: float = 0.5,
    tau: float = 2.0,
    seed: int = 0,
) -> ToyStreamingModel:
    """Toy streaming keyword spotter (see the module docstring).

    Args:
        heaviside: spike as ``"cast"`` (``cast(h >= th, float)``, the LIF layers'
            form) or ``"where"`` (``where(h >= th, 1, 0)``).
        hidden_activation: activation of the non-spiking hidden layer (``"gelu"``
            makes an op TFLite Micro lacks).
    """
    if heaviside not in ("cast", "where"):
        raise ValueError(f"heaviside must be 'cast' or 'where', got {heaviside!r}")

    frame = keras.Input((num_features,), name="frame")
    buffer = keras.Input((2, num_features), name="conv_buffer")
    memory = keras.Input((order,), name="lmu_memory")
    inputs = [frame, buffer, memory]
    specs = [
        StateSpec("conv_buffer", (2, num_features)),
        StateSpec("lmu_memory", (order,)),
    ]

    window = ops.concatenate([buffer, ops.expand_dims(frame, 1)], axis=1)
    new_buffer = window[:, 1:, :]
    x = keras.layers.Dense(hidden, activation="relu", name="conv")(
        keras.layers.Flatten(name="window")(window)
    )
    u = keras.layers.Dense(1, activation="relu", name="lmu_u")(x)
    dense_a = keras.layers.Dense(order, use_bias=False, name="lmu_A")
    dense_b = keras.layers.Dense(order, use_bias=False, name="lmu_B")
    new_memory = keras.layers.Add(name="lmu_update")([dense_a(memory), dense_b(u)])
    mixed = keras.layers.Concatenate(name="lmu_concat")([new_memory, x])
    outputs_states = [new_buffer, new_memory]

    if spiking:
        membrane = keras.Input((hidden,), name="membrane")
        inputs.append(membrane)
        specs.append(StateSpec("membrane", (hidden,)))
        pre = keras.layers.Dense(hidden, name="lmu_hidden")(mixed)
        h = membrane + (pre - membrane) * (1.0 / tau)
        if heaviside == "cast":
            spikes = ops.cast(h >= threshold, "float32")
            new_membrane = h * (1.0 - spikes)
        else:
            fired = h >= threshold
            spikes = ops.where(fired, 1.0, 0.0)
            new_membrane = ops.where(fired, 0.0, h)
        head_input = spikes
        outputs_states.append(new_membrane)
    else:
        head_input = keras.layers.Dense(
            hidden,
            activation=hidden_activation,
            name="lmu_hidden",
        )(mixed)
    head = keras.layers.Dense(num_classes, name="head")
    logits = head(head_input)
    step_model = keras.Model(inputs, [logits, *outputs_states], name="toy_step")

    # NumPy-drawn Glorot-uniform kernels: the same toy under every Keras backend.
    rng = np.random.default_rng(seed)
    for name in ("conv", "lmu_u", "lmu_hidden", "head"):
        layer = step_model.get_layer(name)
        kernel, bias = layer.get_weights()
        limit = np.sqrt(6.0 / (kernel.shape[0] + kernel.shape[1]))
        kernel = rng.uniform(-limit, limit, size=kernel.shape).astype(np.float32)
        layer.set_weights([kernel, np.zeros_like(bias)])
    abar, bbar = legendre_zoh(order, theta)
    dense_a.set_weights([abar.T.astype(np.float32)])
    dense_b.set_weights([bbar[None, :].astype(np.float32)])
    labels = LABELS[:num_classes] if num_classes <= len(LABELS) else None
    return ToyStreamingModel(step_model, specs, labels, dict(FRONTEND), head=head)


def make_toy_dataset(
    n: int,
    num_frames: int = NUM_FRAMES,
    num_features: int = NUM_FEATURES,
    num_classes: int = NUM_CLASSES,
    seed: int = 0,
    amplitude: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Clips ``(n, T, F)`` with a keyword-like burst in one feature band per class.

    ``amplitude`` 2.0 makes a well-conditioned toy (float accuracy 1.0, wide
    margins); about 0.8 gives ~0.9 accuracy and near-tied clips.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, size=n)
    x = rng.normal(0.0, 0.5, size=(n, num_frames, num_features))
    band = num_features // num_classes
    length = max(4, num_frames // 3)
    envelope = np.sin(np.linspace(0.0, np.pi, length)) * amplitude
    for i in range(n):
        start = rng.integers(0, num_frames - length + 1)
        sl = slice(y[i] * band, (y[i] + 1) * band)
        x[i, start : start + length, sl] += envelope[:, None]
    return x.astype(np.float32), y.astype(np.int64)


def make_trained_toy(
    spiking: bool = False, n_train: int = 400, seed: int = 0, **kwargs
):
    """``(toy, train_acc)`` with the head fitted on ``n_train`` clips."""
    toy = build_toy_streaming_model(spiking=spiking, seed=seed, **kwargs)
    x, y = make_toy_dataset(n_train, seed=seed + 1)
    return toy, toy.fit_head(x, y)


def streaming_from_keras(model) -> ToyStreamingModel:
    """CLI ``--streaming_factory``: wrap a saved toy step model.

    Raises ``ValueError`` for a model that is not a toy step model (no state inputs).
    """
    if len(model.inputs) < 2 or len(model.outputs) != len(model.inputs):
        raise ValueError(
            f"model '{model.name}' is not a streaming step model: it has "
            f"{len(model.inputs)} input(s) and {len(model.outputs)} output(s)"
        )
    specs = [
        StateSpec(t.name.split(":")[0], tuple(int(d) for d in t.shape[1:]))
        for t in model.inputs[1:]
    ]
    return ToyStreamingModel(
        model, specs, LABELS[: model.outputs[0].shape[-1]], dict(FRONTEND)
    )
