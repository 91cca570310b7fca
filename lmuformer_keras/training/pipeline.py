"""Training batches: shuffled, augmented (training only), deterministic from the seed.

Batch ``i`` of epoch ``e`` is a pure function of ``(seed, e, i)``: the clip order of
epoch ``e`` is ``default_rng([seed, e]).permutation(N)`` and the augmentation RNG of
the batch is ``default_rng([seed, e, i])``. So a resumed run sees exactly the batches
the uninterrupted run would have seen, whatever order Keras asks for them in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from lmuformer_keras.data import FeatureAugmenter, one_hot
from lmuformer_keras.data.speech_commands_layout import SILENCE_LABEL, UNKNOWN_LABEL


def check_distillation(weight: float, temperature: float, prefix: str = "") -> None:
    """Validates a distillation weight and temperature.

    Raises:
        ValueError: names the argument (``prefix`` + name, e.g. ``--distill_weight``)
            and its value.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(
            f"{prefix}distill_weight must be in [0, 1], got {prefix}distill_weight="
            f"{weight}"
        )
    if not temperature > 0.0:
        raise ValueError(
            f"{prefix}distill_temperature must be > 0, got "
            f"{prefix}distill_temperature={temperature}"
        )


def distill_targets(
    labels: np.ndarray, teacher_logits: np.ndarray, weight: float, temperature: float
) -> np.ndarray:
    """Mixes (soft) labels with a teacher's tempered posteriors.

    ``y = (1 - weight) * labels + weight * softmax(teacher_logits / temperature)``:
    knowledge distillation as a target mixture, so the recipe's loss is unchanged.
    """
    z = np.asarray(teacher_logits, dtype=np.float64) / temperature
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    soft = z / z.sum(axis=-1, keepdims=True)
    mixed = (1.0 - weight) * np.asarray(labels, np.float64) + weight * soft
    return mixed.astype(np.float32)


def frequency_shift(
    x: np.ndarray, max_shift: int, rng: np.random.Generator
) -> np.ndarray:
    """Shifts each sample of ``(B, T, F)`` along features by ``U{-S .. S}`` bins.

    The vacated bins repeat the edge bin (not circular). On a mel axis this moves
    formants up or down, a cheap stand-in for another speaker's vocal tract.
    """
    out = np.array(x, dtype=np.float32)
    if max_shift <= 0:
        return out
    num_features = out.shape[2]
    shifts = rng.integers(-max_shift, max_shift + 1, size=len(out))
    for i, s in enumerate(shifts):
        idx = np.clip(np.arange(num_features) - s, 0, num_features - 1)
        out[i] = out[i][:, idx]
    return out


def reverse_to_unknown(
    x: np.ndarray,
    y: np.ndarray,
    prob: float,
    keyword_classes: np.ndarray,
    unknown_index: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Turns keyword clips, each with probability ``prob``, into reversed negatives.

    A chosen clip (its label's argmax is one of ``keyword_classes``) is played
    backwards, ``x[b] = x[b, ::-1]`` along frames, and labelled ``unknown_index``:
    the same spectra as the keyword in the wrong order, so the model must hear the
    order of the sounds, not only which sounds occur (a voice it never heard makes
    the right sounds in ways it has not learned; their order is what stays).
    """
    out_x = np.array(x, dtype=np.float32)
    out_y = np.array(y, dtype=np.float32)
    if prob <= 0:
        return out_x, out_y
    is_keyword = np.isin(out_y.argmax(axis=-1), keyword_classes)
    chosen = np.flatnonzero(is_keyword & (rng.random(len(out_x)) < prob))
    out_x[chosen] = out_x[chosen, ::-1]
    out_y[chosen] = 0.0
    out_y[chosen, unknown_index] = 1.0
    return out_x, out_y


def reversal_arguments(labels: Sequence[str], prob: float) -> dict[str, Any]:
    """:class:`TrainBatches`' ``reversed_unknown`` arguments for a label list.

    Keyword classes are the labels other than ``_silence_`` and ``_unknown_``.

    Raises:
        ValueError: ``prob > 0`` and no ``_unknown_`` label (names the flag).
    """
    if not prob:
        return {}
    labels = list(labels)
    if UNKNOWN_LABEL not in labels:
        raise ValueError(
            f"--reversed_unknown={prob} needs an {UNKNOWN_LABEL} class; the "
            f"dataset's labels are {labels}"
        )
    not_keywords = (SILENCE_LABEL, UNKNOWN_LABEL)
    keywords = [i for i, label in enumerate(labels) if label not in not_keywords]
    return {
        "reversed_unknown": float(prob),
        "keyword_classes": keywords,
        "unknown_index": labels.index(UNKNOWN_LABEL),
    }


def random_equalizer(
    x: np.ndarray, scale: float, rng: np.random.Generator, order: int = 3
) -> np.ndarray:
    """Adds a random smooth curve along features to each sample of ``(B, T, F)``.

    ``x[b, :, f] += sum_{k=0..order} c_bk cos(pi k f / (F - 1))`` with
    ``c_bk ~ U(-scale, scale)``: on log-mel features, a random level (``k = 0``),
    spectral tilt (``k = 1``) and broad equalisation, the same over the clip (a
    different voice source, microphone or channel).
    """
    out = np.array(x, dtype=np.float32)
    if scale <= 0:
        return out
    num_features = out.shape[2]
    basis = np.cos(
        np.pi
        * np.arange(order + 1)[:, None]
        * np.arange(num_features)[None, :]
        / max(num_features - 1, 1)
    )
    coeffs = rng.uniform(-scale, scale, size=(len(out), order + 1))
    return (out + (coeffs @ basis)[:, None, :]).astype(np.float32)


class TrainBatches(keras.utils.PyDataset):
    """Shuffled training batches of ``(x, one_hot_or_soft_labels)``.

    The last incomplete batch is dropped (each epoch has its own order, so every clip
    is used); this keeps batch shapes fixed (one compiled step, and batches that
    split evenly over devices with ``--distribute=data_parallel``).

    Args:
        x: ``(N, T, F)`` float32.
        y: ``(N,)`` int class ids.
        num_classes: classes (labels become one-hot / soft).
        batch_size: clips per batch (clipped to ``N``).
        seed: shuffling and augmentation seed.
        augmenter: a :class:`FeatureAugmenter`, or ``None`` for no augmentation.
        epoch: the epoch the next batches belong to (see :meth:`set_epoch`).
        freq_shift: maximum :func:`frequency_shift` in bins, applied after the
            augmenter (0: none; only with an augmenter).
        equalizer: :func:`random_equalizer` scale, applied last (0: none; only
            with an augmenter).
        reversed_unknown: probability that a keyword clip becomes a reversed
            ``_unknown_`` clip (:func:`reverse_to_unknown`, after the augmenter;
            0: none; only with an augmenter).
        keyword_classes: the keyword class ids (with ``reversed_unknown``).
        unknown_index: the ``_unknown_`` class id (with ``reversed_unknown``).
        teacher: ``(B, T, F) -> (B, classes)`` clip logits of a trained teacher on
            the (augmented) batch; its posteriors are mixed into the labels with
            :func:`distill_targets` (``None``: no distillation).
        distill_weight: weight of the teacher's posteriors in ``[0, 1]``.
        distill_temperature: softmax temperature of the teacher (> 0).
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        num_classes: int,
        batch_size: int,
        seed: int,
        augmenter: FeatureAugmenter | None = None,
        epoch: int = 0,
        freq_shift: int = 0,
        equalizer: float = 0.0,
        reversed_unknown: float = 0.0,
        keyword_classes: Sequence[int] = (),
        unknown_index: int | None = None,
        teacher: Callable[[np.ndarray], np.ndarray] | None = None,
        distill_weight: float = 0.5,
        distill_temperature: float = 2.0,
    ) -> None:
        super().__init__()
        check_distillation(distill_weight, distill_temperature)
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(
                f"TrainBatches: need as many labels as clips (> 0), got x {x.shape} "
                f"and y {y.shape}"
            )
        self.x = np.asarray(x, dtype=np.float32)
        self.y = np.asarray(y)
        self.num_classes = num_classes
        self.batch_size = int(min(batch_size, len(x)))
        self.seed = int(seed)
        self.augmenter = augmenter
        self.freq_shift = int(freq_shift)
        self.equalizer = float(equalizer)
        if reversed_unknown and (unknown_index is None or not len(keyword_classes)):
            raise ValueError(
                f"TrainBatches: reversed_unknown={reversed_unknown} needs an "
                "_unknown_ class and keyword classes"
            )
        self.reversed_unknown = float(reversed_unknown)
        self.keyword_classes = np.asarray(keyword_classes, dtype=np.int64)
        self.unknown_index = unknown_index
        self.teacher = teacher
        self.distill_weight = float(distill_weight)
        self.distill_temperature = float(distill_temperature)
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        """Selects the order (and augmentation draws) of ``epoch``."""
        self.epoch = int(epoch)
        self._order = np.random.default_rng([self.seed, self.epoch]).permutation(
            len(self.x)
        )

    def __len__(self) -> int:
        return len(self.x) // self.batch_size

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = self._batch(index)
        if self.teacher is not None:
            y = distill_targets(
                y, self.teacher(x), self.distill_weight, self.distill_temperature
            )
        return x, y

    def _batch(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        x, y = self.x[idx], self.y[idx]
        if self.augmenter is None:
            return x, one_hot(y, self.num_classes)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        self.augmenter.rng = rng
        x, y = self.augmenter(x, y, training=True)
        if self.reversed_unknown:
            x, y = reverse_to_unknown(
                x, y, self.reversed_unknown, self.keyword_classes,
                int(self.unknown_index), rng,
            )  # fmt: skip
        if self.freq_shift:
            x = frequency_shift(x, self.freq_shift, rng)
        if self.equalizer:
            x = random_equalizer(x, self.equalizer, rng)
        return x, y


class EpochSync(keras.callbacks.Callback):
    """Tells :class:`TrainBatches` which epoch starts (correct after ``--resume``)."""

    def __init__(self, batches: TrainBatches) -> None:
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.batches.set_epoch(epoch)
