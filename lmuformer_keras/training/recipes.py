"""Training recipes: optimizer, learning-rate schedule, loss and augmentation.

- ``default``: Adam (lr 2e-3, betas 0.9 / 0.999), one warm-up epoch then a cosine
  decay to 1 % over the run (per epoch), softmax cross-entropy on one-hot labels, 100
  epochs of 32 clips. Audio sets get the paper's feature augmentation without mixup
  (one frequency and one time mask of at most 8 bins / frames, uniform noise, time
  shift scaled to the feature shape, see :class:`lmuformer_keras.data.FeatureAugmenter`;
  tuned on the synthetic keywords, 40 x 49 micro40 features: mixup and the paper's
  wider masks lowered held-out-voice accuracy there); the toy sequence sets get none
  unless ``--augment``.
- ``paper_scv2``: the paper's Speech Commands v2 recipe (``shared/REFERENCE.md``):
  Adam lr 2.5e-3, betas (0.95, 0.999), no weight decay, lr x 0.85 every 10 epochs,
  200 epochs, batch 128, BCE-with-logits on one-hot (mixed) labels, mixup on 60 % of
  samples with lambda ~ Beta(10, 10), one frequency mask and one time mask (48 for
  128 x 128 features, scaled by ``F / 128`` and ``T / 128``), uniform noise, circular
  time shift -10..10 frames (scaled by ``T / 128``). Difference: the reference mixes
  waveforms before the fbank; here mixup is on features (the loaders return
  features).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: ``lmuformer-train`` imports this module
    import keras  # (for ``RECIPES``) before it checks ``KERAS_BACKEND``


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything about how a model is trained, apart from the model and the data.

    Attributes:
        name: recipe name.
        epochs, batch_size, learning_rate: defaults of ``--epochs`` etc.
        beta_1, beta_2: Adam moments.
        schedule: ``"cosine"`` (warm-up epochs then cosine to ``min_lr_fraction``)
            or ``"step"`` (x ``step_gamma`` every ``step_epochs`` epochs).
        warmup_epochs, min_lr_fraction, step_epochs, step_gamma: schedule settings.
        loss: ``"softmax_ce"`` (categorical cross-entropy from logits) or
            ``"bce"`` (binary cross-entropy from logits on one-hot / soft labels).
        augment: ``"audio"`` (on for keyword sets only), ``"always"`` or ``"never"``.
        mixup_prob, mixup_alpha, noise_scale, freq_mask, time_mask, time_shift:
            :class:`FeatureAugmenter` settings (``None``: the paper's mask widths and
            shift scaled to the feature shape).
        freq_shift: maximum shift along the feature (mel) axis, in bins (0: off;
            see :func:`lmuformer_keras.training.pipeline.frequency_shift`).
        equalizer: scale of a random smooth level / tilt curve added along the
            features (0: off; :func:`..pipeline.random_equalizer`).
        reversed_unknown: probability that a training keyword clip is played
            backwards and labelled ``_unknown_`` (0: off;
            :func:`..pipeline.reverse_to_unknown`).
    """

    name: str
    epochs: int
    batch_size: int
    learning_rate: float
    beta_1: float = 0.9
    beta_2: float = 0.999
    schedule: str = "cosine"
    warmup_epochs: int = 1
    min_lr_fraction: float = 0.01
    step_epochs: int = 10
    step_gamma: float = 0.85
    loss: str = "softmax_ce"
    augment: str = "audio"
    mixup_prob: float = 0.6
    mixup_alpha: float = 10.0
    noise_scale: float = 0.1
    freq_mask: int | None = None
    time_mask: int | None = None
    time_shift: int | None = None
    freq_shift: int = 0
    equalizer: float = 0.0
    reversed_unknown: float = 0.0

    def lr_factor(self, epoch: int, epochs: int) -> float:
        """Learning-rate multiplier of (0-based) ``epoch`` in a run of ``epochs``."""
        if self.schedule == "step":
            return self.step_gamma ** (epoch // self.step_epochs)
        if epoch < self.warmup_epochs:
            return (epoch + 1) / (self.warmup_epochs + 1)
        span = max(epochs - self.warmup_epochs, 1)
        progress = min((epoch - self.warmup_epochs) / span, 1.0)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_lr_fraction + (1.0 - self.min_lr_fraction) * cosine

    def optimizer(self, learning_rate: float) -> keras.optimizers.Optimizer:
        import keras

        return keras.optimizers.Adam(
            learning_rate=learning_rate, beta_1=self.beta_1, beta_2=self.beta_2
        )

    def loss_fn(self) -> keras.losses.Loss:
        import keras

        if self.loss == "bce":
            return keras.losses.BinaryCrossentropy(from_logits=True, name="bce")
        return keras.losses.CategoricalCrossentropy(from_logits=True, name="ce")

    def augments(self, audio: bool, flag: bool | None = None) -> bool:
        """Whether training batches are augmented (``flag`` = ``--augment``)."""
        if flag is not None:
            return flag
        return self.augment == "always" or (self.augment == "audio" and audio)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


RECIPES: dict[str, Recipe] = {
    "default": Recipe(
        name="default",
        epochs=100,
        batch_size=32,
        learning_rate=2e-3,
        mixup_prob=0.0,
        freq_mask=8,
        time_mask=8,
    ),
    "paper_scv2": Recipe(
        name="paper_scv2",
        epochs=200,
        batch_size=128,
        learning_rate=2.5e-3,
        beta_1=0.95,
        beta_2=0.999,
        schedule="step",
        step_epochs=10,
        step_gamma=0.85,
        loss="bce",
        augment="always",
    ),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``.

    Raises:
        ValueError: unknown name (names the flag and the known recipes).
    """
    if name not in RECIPES:
        raise ValueError(
            f"--recipe: unknown recipe {name!r}; known recipes: {sorted(RECIPES)}"
        )
    return RECIPES[name]
