"""The paper's training augmentations, in NumPy, with a seeded RNG.

For a feature batch ``x`` of shape ``(B, T, F)`` (in order, as in the reference):

- mixup (:func:`mixup`): each sample is, with probability ``mixup_prob`` (0.6), mixed
  with another random sample of the batch, ``x = lam x_i + (1 - lam) x_j``,
  ``y = lam y_i + (1 - lam) y_j`` with ``lam ~ Beta(10, 10)``; labels become soft. The
  paper mixes waveforms before the fbank: call :func:`mixup` on waveforms, then the
  frontend, then :class:`FeatureAugmenter` with ``mixup_prob=0``.
- one frequency mask (:func:`frequency_mask`): width ``w ~ U{0 .. W-1}``, start
  ``U{0 .. F-w}``; ``W = 48`` for 128 features, scaled by ``F / 128`` (15 for 40);
- one time mask (:func:`time_mask`): the same along frames, ``W = 48`` for 128 frames,
  scaled by ``T / 128`` (18 for 49);
- uniform noise (:func:`add_uniform_noise`): ``x + U(0, 1) * a / 10`` per element with
  ``a ~ U(0, 1)`` per sample;
- time shift (:func:`time_shift`): ``np.roll`` along frames by ``s ~ U{-S .. S}``,
  ``S = 10`` for 128 frames (scaled by ``T / 128``: 4 for 49), circular as in the
  reference.

Masks set values to ``mask_value`` (0.0, about the mean of normalised features; the
reference masks the fbank before normalising). Everything is off when
``training=False``: :class:`FeatureAugmenter` then returns ``x`` unchanged and one-hot
labels.
"""

from __future__ import annotations

import numpy as np

REFERENCE_FRAMES = 128
REFERENCE_FEATURES = 128


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def one_hot(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer labels ``(B,)`` -> float32 ``(B, num_classes)``; soft labels pass."""
    y = np.asarray(y)
    if y.ndim == 2:
        if y.shape[1] != num_classes:
            raise ValueError(
                f"one_hot: labels have {y.shape[1]} columns, num_classes={num_classes}"
            )
        return y.astype(np.float32)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"one_hot: labels must be in [0, {num_classes}), got [{y.min()}, {y.max()}]"
        )
    return np.eye(num_classes, dtype=np.float32)[y.astype(np.int64)]


def mixup(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    rng: np.random.Generator | int | None = None,
    prob: float = 0.6,
    alpha: float = 10.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Mixup of a batch (waveforms or features) with soft labels.

    Returns float32 ``x`` (same shape) and ``(B, num_classes)`` soft labels.
    """
    rng = _rng(rng)
    x = np.asarray(x)
    xf = x.astype(np.float32) if x.dtype != np.float32 else x.copy()
    yf = one_hot(y, num_classes)
    b = len(xf)
    if b < 2 or prob <= 0:
        return xf, yf
    mix = rng.uniform(size=b) < prob
    partner = rng.integers(0, b - 1, size=b)
    partner = partner + (partner >= np.arange(b))  # never itself
    lam = rng.beta(alpha, alpha, size=b).astype(np.float32)
    lam = np.where(mix, lam, 1.0).astype(np.float32)
    shape = (b,) + (1,) * (xf.ndim - 1)
    x_out = lam.reshape(shape) * xf + (1 - lam).reshape(shape) * xf[partner]
    y_out = lam[:, None] * yf + (1 - lam)[:, None] * yf[partner]
    return x_out.astype(np.float32), y_out.astype(np.float32)


def frequency_mask(
    x: np.ndarray,
    max_width: int,
    rng: np.random.Generator | int | None = None,
    mask_value: float = 0.0,
) -> np.ndarray:
    """One frequency mask per sample of ``(B, T, F)``; returns a new array."""
    return _mask(x, max_width, axis=2, rng=_rng(rng), mask_value=mask_value)


def time_mask(
    x: np.ndarray,
    max_width: int,
    rng: np.random.Generator | int | None = None,
    mask_value: float = 0.0,
) -> np.ndarray:
    """One time mask per sample of ``(B, T, F)``; returns a new array."""
    return _mask(x, max_width, axis=1, rng=_rng(rng), mask_value=mask_value)


def _mask(x, max_width, axis, rng, mask_value):
    out = np.array(x, dtype=np.float32)
    size = out.shape[axis]
    max_width = int(min(max_width, size))
    if max_width <= 0:
        return out
    for i in range(len(out)):
        width = int(rng.integers(0, max_width))
        start = int(rng.integers(0, size - width + 1))
        if axis == 1:
            out[i, start : start + width, :] = mask_value
        else:
            out[i, :, start : start + width] = mask_value
    return out


def add_uniform_noise(
    x: np.ndarray, rng: np.random.Generator | int | None = None, scale: float = 0.1
) -> np.ndarray:
    """``x + U(0, 1) * a * scale`` with ``a ~ U(0, 1)`` per sample."""
    rng = _rng(rng)
    x = np.asarray(x, dtype=np.float32)
    a = rng.uniform(size=(len(x),) + (1,) * (x.ndim - 1)) * scale
    return (x + rng.uniform(size=x.shape) * a).astype(np.float32)


def time_shift(
    x: np.ndarray, max_shift: int, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """Circular shift of each sample along frames by ``U{-max_shift .. max_shift}``."""
    rng = _rng(rng)
    out = np.array(x, dtype=np.float32)
    if max_shift <= 0:
        return out
    shifts = rng.integers(-max_shift, max_shift + 1, size=len(out))
    for i, s in enumerate(shifts):
        out[i] = np.roll(out[i], int(s), axis=0)
    return out


class FeatureAugmenter:
    """All feature augmentations, scaled to the feature shape; off when not training.

    Args:
        num_frames, num_features: ``T`` and ``F`` of the features.
        num_classes: for one-hot / soft labels.
        seed: RNG seed (the augmenter keeps one ``np.random.Generator``).
        mixup_prob, mixup_alpha: feature mixup (set ``mixup_prob=0`` when mixing
            waveforms instead).
        freq_mask, time_mask, time_shift: maximum widths / shift; ``None`` scales the
            paper's 48 / 48 / 10 (for 128 x 128) by ``F / 128`` and ``T / 128``.
        noise_scale: the uniform noise scale (0.1); 0 disables it.
        mask_value: value written by the masks.
    """

    def __init__(
        self,
        num_frames: int,
        num_features: int,
        num_classes: int,
        seed: int = 0,
        mixup_prob: float = 0.6,
        mixup_alpha: float = 10.0,
        freq_mask: int | None = None,
        time_mask: int | None = None,
        time_shift: int | None = None,
        noise_scale: float = 0.1,
        mask_value: float = 0.0,
    ):
        for name, value in (
            ("num_frames", num_frames),
            ("num_features", num_features),
            ("num_classes", num_classes),
        ):
            if value < 1:
                raise ValueError(f"FeatureAugmenter: {name} must be >= 1, got {value}")
        if not 0.0 <= mixup_prob <= 1.0:
            raise ValueError(
                f"FeatureAugmenter: mixup_prob must be in [0, 1], got {mixup_prob}"
            )
        t_scale = num_frames / REFERENCE_FRAMES
        f_scale = num_features / REFERENCE_FEATURES
        self.num_frames, self.num_features = num_frames, num_features
        self.num_classes = num_classes
        self.mixup_prob, self.mixup_alpha = mixup_prob, mixup_alpha
        self.freq_mask = round(48 * f_scale) if freq_mask is None else freq_mask
        self.time_mask = round(48 * t_scale) if time_mask is None else time_mask
        self.time_shift = round(10 * t_scale) if time_shift is None else time_shift
        self.noise_scale = noise_scale
        self.mask_value = mask_value
        self.rng = np.random.default_rng(seed)

    def get_config(self) -> dict:
        """The effective settings (for logs and metadata)."""
        return {
            "num_frames": self.num_frames,
            "num_features": self.num_features,
            "num_classes": self.num_classes,
            "mixup_prob": self.mixup_prob,
            "mixup_alpha": self.mixup_alpha,
            "freq_mask": self.freq_mask,
            "time_mask": self.time_mask,
            "time_shift": self.time_shift,
            "noise_scale": self.noise_scale,
            "mask_value": self.mask_value,
        }

    def __call__(
        self, x: np.ndarray, y: np.ndarray, training: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Augments ``(B, T, F)`` features; returns ``(x, soft_or_one_hot_labels)``."""
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[1:] != (self.num_frames, self.num_features):
            raise ValueError(
                f"FeatureAugmenter: expected x of shape (B, {self.num_frames}, "
                f"{self.num_features}), got {x.shape}"
            )
        if not training:
            return x, one_hot(y, self.num_classes)
        x, y = mixup(
            x, y, self.num_classes, self.rng, self.mixup_prob, self.mixup_alpha
        )
        x = frequency_mask(x, self.freq_mask, self.rng, self.mask_value)
        x = time_mask(x, self.time_mask, self.rng, self.mask_value)
        if self.noise_scale > 0:
            x = add_uniform_noise(x, self.rng, self.noise_scale)
        x = time_shift(x, self.time_shift, self.rng)
        return x, y
