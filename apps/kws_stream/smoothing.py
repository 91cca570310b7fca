"""Posterior smoothing and detection, like TensorFlow's ``RecognizeCommands``.

A streaming keyword spotter emits one posterior vector per frame (every 20 ms for
``micro40``). Single frames are noisy, so, as in the classic TensorFlow
``micro_speech`` / ``speech_commands`` ``RecognizeCommands``, detections are made on a
moving average of the frame results:

1. keep the results whose time lies in ``(now - average_window_ms, now]``;
2. with fewer than ``minimum_count`` of them, decide nothing (stream start);
3. average their log-posteriors per label (each clipped below at
   ``log(POSTERIOR_FLOOR)``) and normalise: ``scores = softmax(mean_t log p_t)``, the
   normalised geometric mean of the posteriors; the top label is the argmax of the
   scores (the first one on ties);
4. report a detection of the top label when it is not an ignored label (silence,
   unknown), its score is ``>= detection_threshold``, and that label was not
   detected during the last ``suppression_ms`` (``now - last_time >= suppression_ms``).

Why the log-posteriors: ``log softmax(z) = z - logsumexp(z)``, and the softmax ignores
a shift common to all labels, so the scores are the softmax of the mean *logits* over
the window: the decision rule the model was trained with (``clip_decision`` in
``metadata.json``: the argmax of the mean of the frame logits over a 1 s clip). Only
that mean is trained; single frames of an LMUFormer trained this way are very
confident (int8 logits about +-130) and often wrong, so the classic arithmetic mean of
the posteriors is close to a majority vote of the frame argmaxes and misses most
keywords. The floor (``1e-30``, a log-posterior of -69) keeps ``log 0`` out of the sum
and bounds how far one frame can pull the mean; it is representable in float32, so
the C port (float32 posteriors) clips the same frames as this float64 code.

Differences from the classic version, chosen for a per-frame recurrent model: the
geometric mean above (the classic averages the posteriors), the suppression timer is
per label (the classic code only remembers the last detected label, so ``A, B, A``
within the suppression time reports ``A`` twice), and silence or unknown becoming the
top label does not reset it (so one utterance whose average dips under silence and
back is not reported twice). A different label may still be reported at once, so two
different words in quick succession are both found.

Defaults (used where a model's metadata has no ``smoothing`` record; the shipped
model's own, 980 ms / 0.98, was chosen by ``tune_smoothing``), for a 20 ms hop
(``micro40``), measured on the espeak-ng-only model shipped before with
``python -m lmuformer_apps.kws_stream.evaluate --model_dir
apps/pretrained/tiny_kws_synthetic --seed S`` (240 keywords by the 24 held-out voices,
1-2 s apart over noise, 10-30 dB SNR; 5-10 minutes of noise only), seeds 0 and 10:

- ``average_window_ms = 700``: 35 frames, long enough to hold a whole keyword (0.2-0.7
  s spoken) with some context, as the 1 s training clips do. Recall 97.1 / 93.3 %
  within 0.5 s of the word's end, 6.0 / 5.4 false detections per minute *while
  keywords are spoken*. Most of those (85 %) are "up" 0.5-1.2 s after a word (after
  "stop" above all): the window then holds only the end of the word, which the model
  never saw alone in training. 980 ms (49 frames, the clip length): 93.8 / 92.1 %
  recall, 2.8 / 2.7 per minute; 500 ms: 96.2 / 94.6 %, 9.9 / 8.3 per minute.
- ``detection_threshold = 0.95``: averaged logits are sharp, so a high threshold costs
  little recall: 0.9 gives 96.7 / 93.8 % with 9.9 / 8.4 false per minute, 0.8 gives
  94.6 / 93.8 % with 17.6 / 15.3.
- ``suppression_ms = 1000``: at most one report per label per second (the Speech
  Commands clip length), and longer than the window, so an utterance has left the
  average before its label may fire again (1500 ms, the classic value: 96.2 / 92.9 %
  recall, as many false detections).
- ``minimum_count = 10``: no decision from fewer than 10 frames (200 ms): at stream
  start the recurrent states are still warming up from zero, and no keyword is shorter.

None of these settings gave a false detection in the noise-only streams (white, pink,
brown noise, hum and mixtures from -65 to -25 dBFS RMS, silence). The previous
defaults (arithmetic mean of the posteriors over 500 ms, threshold 0.6) found 24 % of
the keywords; the best arithmetic-mean setting (300 ms, 0.4) about 90 %, with 10 false
detections per minute (both simulated on the same frame logits). The stand-in test
model of ``tests/apps_fixtures.py`` has much softer posteriors than a trained model
(its clipped tone peaks at 0.85): tests expecting all its tones use
``detection_threshold=0.6``.

Times are in milliseconds; in :class:`~lmuformer_apps.kws_stream.runner.KWSStream` a
frame's time is when its last sample arrived, ``(t * hop + window) / rate``. The C
(``apps/mcu/recognize_commands.c``) and Java (``RecognizeCommands.java``) ports follow
this module step for step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_AVERAGE_WINDOW_MS = 700.0
DEFAULT_DETECTION_THRESHOLD = 0.95
DEFAULT_SUPPRESSION_MS = 1000.0
DEFAULT_MINIMUM_COUNT = 10
#: Posteriors are clipped below at this value before their log is averaged.
POSTERIOR_FLOOR = 1e-30

#: Labels (lower case, underscores stripped) that never trigger a detection, besides
#: every label written ``_like_this_`` (Speech Commands' ``_silence_``, ``_unknown_``).
IGNORED_WORDS = frozenset({"silence", "unknown", "background", "background_noise"})


def is_ignored_label(label: str) -> bool:
    """True for silence / unknown style labels (``_x_`` or a word of IGNORED_WORDS)."""
    if label.startswith("_") and label.endswith("_") and len(label) > 1:
        return True
    return label.strip("_").lower() in IGNORED_WORDS


@dataclass(frozen=True)
class Detection:
    """One detected keyword.

    Attributes:
        label: the keyword.
        index: its class index.
        time_ms: time of the frame that triggered it.
        score: its averaged posterior at that time.
    """

    label: str
    index: int
    time_ms: float
    score: float

    def __str__(self) -> str:
        return f"{self.time_ms / 1000.0:9.3f} s  {self.label}  (score {self.score:.3f})"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis (float64)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


class RecognizeCommands:
    """Moving-average posterior smoothing with thresholding and suppression.

    The average is the normalised geometric mean of the posteriors, i.e. the softmax
    of the mean logits (module docstring).

    Args:
        labels: class names, in the model's output order.
        average_window_ms: results newer than ``now - average_window_ms`` are averaged.
        detection_threshold: minimum score (averaged posterior) of a detection, in
            ``(0, 1]``.
        suppression_ms: minimum time between two detections of the same label.
        minimum_count: minimum number of results in the window to decide anything.
        ignored_labels: labels that never trigger; default: those for which
            :func:`is_ignored_label` is true.

    Raises:
        ValueError: naming a bad argument.
    """

    def __init__(
        self,
        labels: Sequence[str],
        average_window_ms: float = DEFAULT_AVERAGE_WINDOW_MS,
        detection_threshold: float = DEFAULT_DETECTION_THRESHOLD,
        suppression_ms: float = DEFAULT_SUPPRESSION_MS,
        minimum_count: int = DEFAULT_MINIMUM_COUNT,
        ignored_labels: Iterable[str] | None = None,
    ):
        labels = [str(label) for label in labels]
        if not labels:
            raise ValueError("RecognizeCommands: labels must not be empty")
        if not average_window_ms > 0:
            raise ValueError(
                "RecognizeCommands: average_window_ms must be > 0, got "
                f"average_window_ms={average_window_ms}"
            )
        if not 0 < detection_threshold <= 1:
            raise ValueError(
                "RecognizeCommands: detection_threshold must be in (0, 1], got "
                f"detection_threshold={detection_threshold}"
            )
        if not suppression_ms >= 0:
            raise ValueError(
                "RecognizeCommands: suppression_ms must be >= 0, got "
                f"suppression_ms={suppression_ms}"
            )
        if int(minimum_count) != minimum_count or minimum_count < 1:
            raise ValueError(
                "RecognizeCommands: minimum_count must be an integer >= 1, got "
                f"minimum_count={minimum_count}"
            )
        if ignored_labels is None:
            ignored = {label for label in labels if is_ignored_label(label)}
        else:
            ignored = set(ignored_labels)
            unknown = sorted(ignored - set(labels))
            if unknown:
                raise ValueError(
                    f"RecognizeCommands: ignored_labels {unknown} are not in labels "
                    f"{labels}"
                )
        self.labels = labels
        self.average_window_ms = float(average_window_ms)
        self.detection_threshold = float(detection_threshold)
        self.suppression_ms = float(suppression_ms)
        self.minimum_count = int(minimum_count)
        self.ignored = np.array([label in ignored for label in labels], dtype=bool)
        self.reset()

    def reset(self) -> None:
        """Forgets every result and detection time."""
        self._times: deque[float] = deque()
        self._ring = np.zeros((64, self.num_classes), dtype=np.float64)
        self._head = 0  # ring row of the oldest kept result
        self._last_detection_ms: dict[int, float] = {}
        self._last_time: float | None = None
        #: Scores (averaged posteriors, summing to 1) of the last call (``None``
        #: before ``minimum_count`` results).
        self.scores: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def _append(self, p: np.ndarray) -> None:
        n, cap = len(self._times), self._ring.shape[0]
        if n == cap:  # grow, oldest first
            order = (self._head + np.arange(n)) % cap
            ring = np.zeros((2 * cap, self.num_classes), dtype=np.float64)
            ring[:n] = self._ring[order]
            self._ring, self._head, cap = ring, 0, 2 * cap
        self._ring[(self._head + n) % cap] = p

    def _window_scores(self) -> np.ndarray:
        """``softmax`` of the mean of the kept log-posteriors."""
        n, cap, h = len(self._times), self._ring.shape[0], self._head
        if h + n <= cap:
            total = self._ring[h : h + n].sum(axis=0)
        else:
            total = self._ring[h:].sum(axis=0) + self._ring[: h + n - cap].sum(axis=0)
        return softmax(total / n)

    def process(self, posteriors: np.ndarray, time_ms: float) -> Detection | None:
        """Adds the posteriors of the frame at ``time_ms``; returns a new detection.

        Raises:
            ValueError: wrong number of posteriors, or a time before the previous one.
        """
        p = np.asarray(posteriors, dtype=np.float64).reshape(-1)
        if p.shape[0] != self.num_classes:
            raise ValueError(
                f"RecognizeCommands.process: expected {self.num_classes} posteriors "
                f"(one per label), got {p.shape[0]}"
            )
        time_ms = float(time_ms)
        if self._last_time is not None and time_ms < self._last_time:
            raise ValueError(
                f"RecognizeCommands.process: time_ms={time_ms} is before the previous "
                f"result's time {self._last_time}"
            )
        self._last_time = time_ms
        # p >= floor is False for NaN too: a NaN posterior counts as the floor
        self._append(np.log(np.where(p >= POSTERIOR_FLOOR, p, POSTERIOR_FLOOR)))
        self._times.append(time_ms)
        while time_ms - self._times[0] >= self.average_window_ms:
            self._times.popleft()
            self._head = (self._head + 1) % self._ring.shape[0]
        if len(self._times) < self.minimum_count:
            self.scores = None
            return None
        scores = self._window_scores()
        self.scores = scores
        top = int(np.argmax(scores))
        score = float(scores[top])
        if self.ignored[top] or score < self.detection_threshold:
            return None
        last = self._last_detection_ms.get(top)
        if last is not None and time_ms - last < self.suppression_ms:
            return None
        self._last_detection_ms[top] = time_ms
        return Detection(self.labels[top], top, time_ms, score)

    def process_many(
        self, posteriors: np.ndarray, times_ms: Sequence[float]
    ) -> list[Detection]:
        """:meth:`process` over rows ``(T, C)`` with their times; the detections."""
        out = []
        for p, t in zip(np.asarray(posteriors), times_ms, strict=True):
            detection = self.process(p, t)
            if detection is not None:
                out.append(detection)
        return out


SMOOTHING_KEYS: tuple[str, ...] = (
    "average_window_ms",
    "detection_threshold",
    "suppression_ms",
    "minimum_count",
)


def smoothing_from_metadata(metadata: dict) -> dict[str, float | int]:
    """The ``smoothing`` record of an export's metadata (``tune_smoothing --write``).

    Every app uses it as its default (options given by the user win); keys it lacks
    keep :class:`RecognizeCommands`' defaults. ``{}`` when there is none.

    Raises:
        ValueError: a record that is not an object of numbers in the ranges
            :class:`RecognizeCommands` accepts (the message names the key).
    """
    record = metadata.get("smoothing")
    if record is None:
        return {}
    if not isinstance(record, dict):
        raise ValueError(f"'smoothing' must be an object, got {type(record).__name__}")
    out: dict[str, float | int] = {}
    for key in SMOOTHING_KEYS:
        if key not in record:
            continue
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"smoothing {key} must be a number, got {value!r}")
        out[key] = int(value) if key == "minimum_count" else float(value)
    RecognizeCommands(["_silence_", "keyword"], **out)  # range checks, named
    return out
