"""Streaming-aware keyword training data: windows cut from long rendered streams.

A streaming keyword spotter decides on every frame from what it heard last, so it is
trained the way it is used (``synthetic_kws_streams``):

1. the utterances of a synthetic set (``_utterances_/``, every engine and voice, see
   :mod:`lmuformer_keras.data.synthetic_kws`) are laid end to end into streams of
   ``StreamConfig.seconds``: each keyword alone after a gap, at the end of a phrase
   (right after non-keyword speech), inside a phrase (speech before and after) or
   right after another keyword, with non-keyword words and sentences and pauses in
   between; each utterance at a peak level ~ U(``peak_dbfs``), over a continuous
   noise bed (white, pink, brown noise, hum, or babble made from the split's
   non-keyword speech; its type changes every 3-10 s) at an SNR ~ U(``snr_db``) below
   the speech;
2. the frontend runs over the whole stream (the frames the app computes);
3. windows of ``window`` frames are cut at random ends ``e``; the label of a window is
   the keyword whose **end** lies in its last ``tolerance_frames`` frames with (almost,
   ``truncation_frames``) all of the word inside; ``_unknown_`` for windows with speech
   but no such keyword (partial words, a keyword's tail, non-keyword speech);
   ``_silence_`` for windows without speech. Windows whose keyword is nearly complete
   (its end within ``lookahead_frames`` after ``e``) or complete but older than the
   tolerance are not used: firing there is neither right nor wrong.

``mode="clips"`` builds today's clip-mean examples from the same utterances for
comparison: one utterance per 1 s clip at a random offset (longer ones cropped at a
random place, keywords labelled only when whole), the same levels and noise beds, and
as many examples per keyword as the streams mode cuts (``keyword_windows`` renderings
of each keyword, ``unknown_windows`` negative and ``silence_windows`` noise-only clips
per keyword). ``StreamConfig.clip_context`` gives that many keyword clips non-keyword
speech right before the keyword (the tail of another utterance, as at the end of a
phrase), the keyword still whole and labelled.

Engines and speakers can be held out (``exclude_engines``): every voice of an excluded
engine, and every voice of another engine with the same *speaker* (flite's and
festival's ``kal`` and ``slt`` are the same recorded people), is dropped from every
split, so a held-out engine is never heard in training or model selection.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lmuformer_keras.data import channel
from lmuformer_keras.data.dataset import Dataset
from lmuformer_keras.data.speech_commands import (
    COMMAND_WORDS,
    LABELS_12,
    SILENCE_LABEL,
    UNKNOWN_LABEL,
)
from lmuformer_keras.features import get_frontend
from lmuformer_keras.features.progress import Progress

MODES: tuple[str, ...] = ("streams", "clips")
SPLITS: tuple[str, ...] = ("train", "val", "test")
SAMPLE_RATE = 16000
#: Label value of a frame whose window is not used.
SKIP = -1
BED_KINDS: tuple[str, ...] = (*channel.NOISE_TYPES, "babble", "babble")


@dataclass(frozen=True)
class StreamConfig:
    """How streams are laid out and windows cut (see the module docstring).

    Attributes:
        seconds: length of each stream.
        gap_s: pause range between utterances.
        contexts: probabilities of a keyword's context: ``alone`` (after a pause),
            ``phrase_end`` (right after non-keyword speech), ``inside`` (non-keyword
            speech right before and after) and ``after_keyword``.
        negatives_per_keyword: non-keyword utterances placed per keyword (on
            average, besides the phrase contexts).
        peak_dbfs: range of each utterance's peak level.
        snr_db: range of the speech's RMS over the noise bed's.
        silence_probability: chance that a pause is digital silence (no bed).
        window: frames per window (the model's input length).
        tolerance_frames, truncation_frames, lookahead_frames: labelling (module
            docstring).
        keyword_windows: windows cut per keyword in the stream (ends drawn in its
            labelled range); in ``clips`` mode, clips rendered per keyword.
        unknown_windows, silence_windows: windows cut per keyword among the frames
            labelled ``_unknown_`` / ``_silence_`` (``clips`` mode: negative and
            noise-only clips per keyword).
        clip_context: ``clips`` mode: the fraction of keyword clips in which the
            keyword follows non-keyword speech: the last 0.1-0.6 s of a negative
            utterance (its own level), then a pause of 0-150 ms, then the keyword,
            whole, labelled as itself; 0 keeps every clip one utterance.
    """

    seconds: float = 30.0
    gap_s: tuple[float, float] = (0.05, 1.2)
    contexts: tuple[tuple[str, float], ...] = (
        ("alone", 0.4),
        ("phrase_end", 0.25),
        ("inside", 0.25),
        ("after_keyword", 0.1),
    )
    negatives_per_keyword: float = 1.0
    peak_dbfs: tuple[float, float] = (-40.0, -3.0)
    snr_db: tuple[float, float] = (0.0, 30.0)
    silence_probability: float = 0.1
    window: int = 49
    tolerance_frames: int = 20
    truncation_frames: int = 3
    lookahead_frames: int = 6
    keyword_windows: int = 3
    unknown_windows: float = 3.0
    silence_windows: float = 0.6
    clip_context: float = 0.0

    def __post_init__(self) -> None:
        names = [c for c, _ in self.contexts]
        if sorted(names) != sorted(("alone", "phrase_end", "inside", "after_keyword")):
            raise ValueError(f"StreamConfig.contexts: unknown contexts {names}")
        if not np.isclose(sum(p for _, p in self.contexts), 1.0):
            raise ValueError("StreamConfig.contexts: probabilities must sum to 1")
        for name in ("seconds", "window", "keyword_windows"):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"StreamConfig.{name} must be > 0, got {getattr(self, name)}"
                )
        if not 0.0 <= self.clip_context <= 1.0:
            raise ValueError(
                "StreamConfig.clip_context must be in [0, 1], got "
                f"{self.clip_context!r}"
            )
        if not 0 < self.tolerance_frames < self.window:
            raise ValueError(
                "StreamConfig.tolerance_frames must be in (0, window), got "
                f"{self.tolerance_frames}"
            )


@dataclass
class Utterance:
    """One rendered utterance of the set (speech only, float64 at 16 kHz)."""

    audio: np.ndarray
    kind: str
    text: str
    engine: str
    speaker: str
    split: str


def read_manifest(data_dir: str) -> dict[str, Any]:
    """The complete manifest of a synthetic set with utterances, or a clear error."""
    from lmuformer_keras.data.synthetic_kws import MANIFEST

    path = os.path.join(data_dir, MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No {MANIFEST} in {data_dir!r}: streams are built from a set made by "
            "generate_synthetic_kws"
        )
    with open(path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    if not manifest.get("complete") or "voices" not in manifest:
        raise ValueError(
            f"{path}: incomplete, or written by an older generator without "
            "utterances (generator_version < 2); generate the set again"
        )
    return manifest


def held_out_voices(
    manifest: dict[str, Any], exclude_engines: Sequence[str]
) -> list[str]:
    """Voice keys dropped when ``exclude_engines`` are held out (speakers too).

    Raises:
        ValueError: an engine that the set was not rendered with.
    """
    voices = manifest["voices"]
    engines = sorted({v["engine"] for v in voices.values()})
    for e in exclude_engines:
        if e not in engines:
            raise ValueError(
                f"exclude_engines: {e!r} is not an engine of this set; it has {engines}"
            )
    speakers = {v["speaker"] for v in voices.values() if v["engine"] in exclude_engines}
    return sorted(
        k
        for k, v in voices.items()
        if v["engine"] in exclude_engines or v["speaker"] in speakers
    )


def load_utterances(
    data_dir: str, exclude_engines: Sequence[str] = ()
) -> tuple[dict[str, list[Utterance]], dict[str, Any]]:
    """Every utterance of the kept voices, by split, and a summary."""
    manifest = read_manifest(data_dir)
    dropped = set(held_out_voices(manifest, exclude_engines))
    by_split: dict[str, list[Utterance]] = {s: [] for s in SPLITS}
    for key, info in sorted(manifest["voices"].items()):
        if key in dropped:
            continue
        path = os.path.join(data_dir, info["utterances"])
        with np.load(path, allow_pickle=False) as data:
            audio, bounds = data["audio"], data["bounds"]
            records = json.loads(str(data["records"]))
        for (a, b), rec in zip(bounds, records, strict=True):
            by_split[rec["split"]].append(
                Utterance(
                    audio[a:b].astype(np.float64) / 32768.0,
                    rec["kind"],
                    rec["text"],
                    info["engine"],
                    info["speaker"],
                    rec["split"],
                )
            )
    summary = {
        "data_dir": os.path.abspath(data_dir),
        "exclude_engines": list(exclude_engines),
        "dropped_voices": sorted(dropped),
        "engines": sorted(
            {v["engine"] for k, v in manifest["voices"].items() if k not in dropped}
        ),
        "utterances": {s: len(u) for s, u in by_split.items()},
    }
    return by_split, summary


def _label_of(utt: Utterance, labels: Sequence[str]) -> int:
    if utt.kind == "word" and utt.text in COMMAND_WORDS and utt.text in labels:
        return labels.index(utt.text)
    return labels.index(UNKNOWN_LABEL)


def _noise_bed(
    n: int, rng: np.random.Generator, babble_pool: Sequence[np.ndarray]
) -> np.ndarray:
    """Continuous noise of RMS 1 whose type changes every 3-10 s (no cross-fade)."""
    out = np.zeros(n)
    start = 0
    while start < n:
        length = min(int(rng.uniform(3.0, 10.0) * SAMPLE_RATE), n - start)
        kind = BED_KINDS[int(rng.integers(len(BED_KINDS)))]
        if kind == "babble" and babble_pool:
            picks = [babble_pool[i] for i in rng.integers(len(babble_pool), size=12)]
            seg = channel.babble(picks, int(rng.integers(2, 6)), length, rng)
        else:
            kind = kind if kind != "babble" else "pink"
            seg = channel.make_noise(kind, length / SAMPLE_RATE + 0.01, rng)[:length]
        out[start : start + length] = seg / max(np.sqrt(np.mean(seg**2)), 1e-12)
        start += length
    return out


def _level(x: np.ndarray, rng: np.random.Generator, config: StreamConfig):
    """``x`` at a random peak level; its RMS for the SNR."""
    y = x * 10.0 ** (rng.uniform(*config.peak_dbfs) / 20.0) / max(np.abs(x).max(), 1e-9)
    return y, float(np.sqrt(np.mean(y**2)))


def build_stream(
    keywords: Sequence[Utterance],
    negatives: Sequence[Utterance],
    labels: Sequence[str],
    rng: np.random.Generator,
    config: StreamConfig,
    babble_pool: Sequence[np.ndarray] = (),
    min_seconds: float = 0.0,
) -> tuple[np.ndarray, list[tuple[int, int, int, bool]]]:
    """One stream holding every utterance of ``keywords`` (plus negatives).

    ``min_seconds``: non-keyword utterances are added (after pauses) until the stream
    is at least this long; with no ``keywords``, a stream of negatives only.

    Returns:
        ``(samples, events)``: float64 audio at 16 kHz and ``(label, start, end,
        is_keyword)`` per placed utterance, in samples.
    """
    contexts = [c for c, _ in config.contexts]
    probs = np.array([p for _, p in config.contexts])
    pieces: list[tuple[int, np.ndarray, int, bool]] = []  # (start, x, label, kw)
    rms: list[float] = []
    t = int(rng.uniform(*config.gap_s) * SAMPLE_RATE)
    unknown = labels.index(UNKNOWN_LABEL)

    def place(utt: Utterance, gap: float) -> None:
        nonlocal t
        x, r = _level(utt.audio, rng, config)
        label = _label_of(utt, labels)
        pieces.append((t, x, label, label != unknown))
        rms.append(r)
        t += x.size + int(gap * SAMPLE_RATE)

    def negative() -> Utterance:
        return negatives[int(rng.integers(len(negatives)))]

    def short_gap() -> float:
        return rng.uniform(0.02, 0.2)

    def pause() -> float:
        return rng.uniform(*config.gap_s)

    for kw in keywords:
        n_neg = rng.poisson(config.negatives_per_keyword) if negatives else 0
        for _ in range(n_neg):
            place(negative(), pause())
        context = contexts[int(rng.choice(len(contexts), p=probs))]
        if context in ("phrase_end", "inside") and negatives:
            place(negative(), short_gap())
        elif context == "after_keyword":
            place(keywords[int(rng.integers(len(keywords)))], short_gap())
        place(kw, short_gap() if context == "inside" else pause())
        if context == "inside" and negatives:
            place(negative(), pause())
    while negatives and t < min_seconds * SAMPLE_RATE:
        place(negative(), short_gap() if rng.uniform() < 0.3 else pause())
    n = t + int(config.gap_s[1] * SAMPLE_RATE)
    bed = _noise_bed(n, rng, babble_pool)
    mean_rms = float(np.mean(rms)) if rms else 10 ** (-40 / 20)
    bed *= mean_rms / 10.0 ** (rng.uniform(*config.snr_db) / 20.0)
    out = bed
    speech_mask = np.zeros(n, bool)
    for start, x, _, _ in pieces:
        out[start : start + x.size] += x
        speech_mask[start : start + x.size] = True
    # digital-silence pauses: no bed outside speech in some streams' gaps
    if rng.uniform() < config.silence_probability:
        out[~speech_mask] = 0.0
    events = [(lab, s, s + x.size, kw) for s, x, lab, kw in pieces]
    return np.clip(out, -1.0, 1.0), events


def frame_labels(
    events: Sequence[tuple[int, int, int, bool]],
    num_frames: int,
    labels: Sequence[str],
    frame_length: int,
    frame_step: int,
    config: StreamConfig,
) -> np.ndarray:
    """Label of the window ending at each frame (:data:`SKIP` where unused)."""
    w = config.window
    silence, unknown = labels.index(SILENCE_LABEL), labels.index(UNKNOWN_LABEL)
    out = np.full(num_frames, silence, np.int64)
    ends = np.arange(num_frames)
    speech_count = np.zeros(num_frames + 1, np.int64)
    for _, a, b, _ in events:
        fa = max(0, -(-(a - frame_length + 1) // frame_step))  # first frame seeing a
        fb = max(0, -(-(b - frame_length) // frame_step))  # first frame seeing b - 1
        speech_count[fa] += 1
        speech_count[min(fb + 1, num_frames)] -= 1
    has_speech = np.cumsum(speech_count)[:num_frames] > 0
    # a window has speech when any of its frames has
    window_speech = np.convolve(has_speech.astype(np.int64), np.ones(w, np.int64))
    out[window_speech[:num_frames] > 1] = unknown
    for label, a, b, is_kw in events:
        if not is_kw:
            continue
        fa = max(0, -(-(a - frame_length + 1) // frame_step))
        fb = max(0, -(-(b - frame_length) // frame_step))
        inside = fa >= ends - w + 1 - config.truncation_frames
        recent = (fb <= ends) & (fb >= ends - config.tolerance_frames)
        old = (fb < ends - config.tolerance_frames) & inside & (fb >= ends - w + 1)
        soon = (fb > ends) & (fb <= ends + config.lookahead_frames)
        out[(old | soon) & (out != SKIP)] = SKIP
        out[recent & inside] = label
    out[: w - 1] = SKIP  # the window must fit in the stream
    return out


def _cut_windows(
    feats: np.ndarray,
    lab: np.ndarray,
    rng: np.random.Generator,
    n_keywords: int,
    labels: Sequence[str],
    config: StreamConfig,
) -> tuple[np.ndarray, np.ndarray]:
    silence, unknown = labels.index(SILENCE_LABEL), labels.index(UNKNOWN_LABEL)
    chosen: list[np.ndarray] = []
    kw_frames = np.flatnonzero((lab != SKIP) & (lab != silence) & (lab != unknown))
    if kw_frames.size:
        count = min(kw_frames.size, config.keyword_windows * max(n_keywords, 1))
        chosen.append(rng.choice(kw_frames, count, replace=False))
    for value, per in ((unknown, config.unknown_windows),
                       (silence, config.silence_windows)):  # fmt: skip
        frames = np.flatnonzero(lab == value)
        count = min(frames.size, int(round(per * n_keywords)))
        if count:
            chosen.append(rng.choice(frames, count, replace=False))
    ends = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
    w = config.window
    x = np.stack([feats[e - w + 1 : e + 1] for e in ends]) if ends.size else None
    if x is None:
        x = np.zeros((0, w, feats.shape[1]), np.float32)
    return x.astype(np.float32), lab[ends]


def _clip_examples(
    keywords: Sequence[Utterance],
    negatives: Sequence[Utterance],
    labels: Sequence[str],
    rng: np.random.Generator,
    config: StreamConfig,
    frontend,
    babble_pool: Sequence[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """1 s clips, one utterance each (keywords, negatives, noise only)."""
    n = frontend.num_frames_target * frontend.params["frame_step"] + (
        frontend.params["frame_length"] - frontend.params["frame_step"]
    )
    n = max(n, SAMPLE_RATE)
    # as many examples per keyword utterance as the streams mode cuts windows:
    # each keyword rendered keyword_windows times (own offset, level and noise)
    items: list[Utterance | None] = list(keywords) * config.keyword_windows
    count = int(round(config.unknown_windows * len(keywords)))
    items += [negatives[i] for i in rng.integers(len(negatives), size=count)]
    items += [None] * int(round(config.silence_windows * len(keywords)))
    waves, ys = [], []
    unknown = labels.index(UNKNOWN_LABEL)
    for utt in items:
        bed = _noise_bed(n, rng, babble_pool)
        if utt is None:
            level = 10 ** (rng.uniform(-80.0, -25.0) / 20.0)
            waves.append(np.clip(bed * level, -1, 1))
            ys.append(labels.index(SILENCE_LABEL))
            continue
        x, r = _level(utt.audio, rng, config)
        label = _label_of(utt, labels)
        if (
            label != unknown
            and config.clip_context
            and x.size < n
            and rng.random() < config.clip_context  # drawn only when enabled
        ):
            x = _after_context(x, negatives, n, rng, config)
        if x.size > n:
            start = int(rng.integers(0, x.size - n + 1))
            x = x[start : start + n]
            if label != unknown:
                label = unknown  # a cropped keyword is not the keyword
        offset = int(rng.integers(0, n - x.size + 1))
        clip = bed * r / 10.0 ** (rng.uniform(*config.snr_db) / 20.0)
        clip[offset : offset + x.size] += x
        waves.append(np.clip(clip, -1, 1))
        ys.append(label)
    x = frontend.batch(waves) if waves else None
    return x, np.asarray(ys, np.int64)


def _after_context(
    keyword: np.ndarray,
    negatives: Sequence[Utterance],
    n: int,
    rng: np.random.Generator,
    config: StreamConfig,
) -> np.ndarray:
    """``[tail of a negative utterance, pause, keyword]``, at most ``n`` samples.

    The tail is 0.1-0.6 s (at most what fits before the keyword) of a random
    negative utterance at its own random level; the pause 0-150 ms.
    """
    context, _ = _level(negatives[int(rng.integers(len(negatives)))].audio, rng, config)
    gap = int(rng.uniform(0.0, 0.15) * SAMPLE_RATE)
    room = n - keyword.size - gap
    tail = min(int(rng.uniform(0.1, 0.6) * SAMPLE_RATE), context.size, max(room, 0))
    if tail <= 0:
        return keyword
    return np.concatenate([context[-tail:], np.zeros(gap, keyword.dtype), keyword])


def stream_dataset(
    data_dir: str | os.PathLike,
    frontend: str | dict[str, Any] = "micro40",
    exclude_engines: Sequence[str] = (),
    seed: int = 0,
    mode: str = "streams",
    config: StreamConfig | None = None,
    progress: bool = True,
) -> Dataset:
    """The 12-class streaming-aware (or clip) training set of a synthetic set.

    Args:
        data_dir: a set written by :func:`generate_synthetic_kws`.
        frontend: frontend name or params (the model's).
        exclude_engines: engines held out (with their speakers), e.g. ``["piper"]``.
        seed: everything random derives from it.
        mode: ``"streams"`` (windows from streams) or ``"clips"`` (one utterance per
            1 s clip, the clip-mean baseline on the same utterances).
        config: layout and labelling; default :class:`StreamConfig`.
        progress: progress bars on stderr.

    Returns:
        A :class:`Dataset` with ``LABELS_12``; the test split is the set's test voices
        (espeak-ng), or its validation split when those are held out.

    Raises:
        ValueError: unknown mode, an engine not in the set, or no keyword left.
    """
    if mode not in MODES:
        raise ValueError(f"stream_dataset: mode must be one of {MODES}, got {mode!r}")
    config = config or StreamConfig()
    data_dir = os.fspath(data_dir)
    fe = get_frontend(frontend)
    labels = list(LABELS_12)
    if config.window != fe.num_frames_target:
        raise ValueError(
            f"StreamConfig.window={config.window} differs from the frontend's "
            f"{fe.num_frames_target} frames per clip"
        )
    by_split, summary = load_utterances(data_dir, exclude_engines)
    arrays: dict[str, np.ndarray] = {}
    counts: dict[str, Any] = {}
    for s_index, split in enumerate(SPLITS):
        rng = np.random.default_rng([int(seed), 97, s_index])
        x, y, counts[split] = _split_examples(
            by_split[split], labels, rng, mode, config, fe,
            progress and split == "train", split,
        )  # fmt: skip
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    if len(arrays["y_train"]) == 0:
        raise ValueError(
            f"stream_dataset: no keyword utterances left for training in {data_dir!r} "
            f"with exclude_engines={list(exclude_engines)}"
        )
    test_from = "test"
    if len(arrays["y_test"]) == 0:
        arrays["x_test"], arrays["y_test"] = arrays["x_val"], arrays["y_val"]
        test_from = "val"
    summary.update(
        mode=mode,
        seed=int(seed),
        config=asdict(config),
        counts=counts,
        test_split_from=test_from,
    )
    return Dataset(
        **arrays,
        labels=labels,
        frontend=fe.params,
        summary=summary,
        name=f"synthetic_kws_{mode}",
    )


def _babble_pool(negs: Sequence[Utterance]) -> list[np.ndarray]:
    """Audio for babble noise: the sentences among ``negs``, else all of them."""
    return [u.audio for u in negs if u.kind == "sentence"] or [u.audio for u in negs]


def _split_examples(
    utts: Sequence[Utterance],
    labels: Sequence[str],
    rng: np.random.Generator,
    mode: str,
    config: StreamConfig,
    fe,
    progress: bool,
    split: str,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One split's examples in ``mode`` and their counts: ``(x, y, counts)``."""
    unknown = labels.index(UNKNOWN_LABEL)
    is_keyword = [_label_of(u, labels) != unknown for u in utts]
    kws = [u for u, k in zip(utts, is_keyword, strict=True) if k]
    negs = [u for u, k in zip(utts, is_keyword, strict=True) if not k]
    if not kws:
        x = np.zeros((0, config.window, fe.num_features), "f4")
        return x, np.zeros(0, np.int64), {"keywords": 0}
    babble_pool = _babble_pool(negs)
    order = rng.permutation(len(kws))
    shuffled = [kws[i] for i in order]
    if mode == "clips":
        x, y = _clip_examples(shuffled, negs, labels, rng, config, fe, babble_pool)
    else:
        x, y = _stream_windows(
            shuffled, negs, labels, rng, config, fe, babble_pool, progress, split
        )
    counts = {
        "keywords": len(kws),
        "negatives": len(negs),
        "examples": int(len(y)),
        "class_counts": np.bincount(y, minlength=len(labels)).tolist(),
    }
    return x, y, counts


def _stream_windows(
    kws: Sequence[Utterance],
    negs: Sequence[Utterance],
    labels: Sequence[str],
    rng: np.random.Generator,
    config: StreamConfig,
    fe,
    babble_pool: Sequence[np.ndarray],
    progress: bool,
    split: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Streams holding every keyword once; windows cut from each."""
    p = fe.params
    mean_len = np.mean([u.audio.size for u in kws]) / SAMPLE_RATE
    per_stream = max(
        1,
        int(config.seconds / (mean_len + np.mean(config.gap_s)) / (
            1.0 + config.negatives_per_keyword + 0.6)),
    )  # fmt: skip
    groups = [kws[i : i + per_stream] for i in range(0, len(kws), per_stream)]
    bar = Progress(len(groups), f"streams[{split}]") if progress else None
    xs, ys = [], []
    for g_index, group in enumerate(groups):
        audio, events = build_stream(group, negs, labels, rng, config, babble_pool)
        feats = fe(audio, pad=False)
        lab = frame_labels(
            events, feats.shape[0], labels, p["frame_length"], p["frame_step"], config
        )
        x, y = _cut_windows(feats, lab, rng, len(group), labels, config)
        xs.append(x)
        ys.append(y)
        if bar is not None:
            bar.update(g_index + 1)
    return np.concatenate(xs), np.concatenate(ys)


def mine_hard_negatives(
    predict: Callable[[np.ndarray], np.ndarray],
    data_dir: str | os.PathLike,
    frontend: str | dict[str, Any] = "micro40",
    exclude_engines: Sequence[str] = (),
    seed: int = 0,
    minutes: float = 20.0,
    threshold: float = 0.3,
    stride: int = 2,
    max_windows: int | None = None,
    config: StreamConfig | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Windows of keyword-free training streams that a model still takes for a keyword.

    Streams of the *training* split's non-keyword utterances only (words, sentences,
    pauses, noise beds; drawn with their own seed, so not the training streams) are
    cut into windows every ``stride`` frames; ``p_kw(window)`` is the model's highest
    keyword probability. Each run of windows with ``p_kw >= threshold`` gives its
    highest-scoring window, labelled as :func:`frame_labels` labels it (``_unknown_``
    or ``_silence_``): the false alarms of a model, fed back into its training set.

    Args:
        predict: ``(N, window, features) float32 -> (N, classes)`` probabilities in
            ``LABELS_12`` order (e.g. ``softmax`` of a trained model's logits).
        data_dir, frontend, exclude_engines, config: as :func:`stream_dataset`.
        seed: stream seed (offset from the training streams').
        minutes: length of non-keyword speech streamed.
        threshold: keyword probability from which a window is a hard negative.
        stride: frames between scored windows (>= 1).
        max_windows: at most this many windows (the highest-scoring).
        progress: progress bar on stderr.

    Returns:
        ``(x, y, summary)``: the windows, their labels, and counts.

    Raises:
        ValueError: bad ``minutes`` / ``threshold`` / ``stride``, or no non-keyword
            training utterance.
    """
    _check_mining_arguments(minutes, threshold, stride)
    config = config or StreamConfig()
    fe = get_frontend(frontend)
    p = fe.params
    labels = list(LABELS_12)
    keyword_ids = [i for i, name in enumerate(labels) if name in COMMAND_WORDS]
    negs = _training_negatives(data_dir, exclude_engines, labels, keyword_ids)
    babble_pool = _babble_pool(negs)
    rng = np.random.default_rng([int(seed), 131])
    count = max(1, int(np.ceil(minutes * 60.0 / config.seconds)))
    bar = Progress(count, "hard negatives") if progress else None
    hits: list[tuple[np.ndarray, int, float]] = []
    scored = 0
    for i in range(count):
        audio, events = build_stream(
            [], negs, labels, rng, config, babble_pool, min_seconds=config.seconds
        )
        feats = fe(audio, pad=False).astype(np.float32)
        lab = frame_labels(
            events, feats.shape[0], labels, p["frame_length"], p["frame_step"], config
        )
        stream_hits, stream_scored = _false_alarm_runs(
            predict, feats, lab, keyword_ids, threshold, stride, config
        )
        hits += stream_hits
        scored += stream_scored
        if bar is not None:
            bar.update(i + 1)
    x, y = _strongest_windows(hits, max_windows, config.window, fe.num_features)
    summary = {
        "minutes": float(count * config.seconds / 60.0),
        "threshold": float(threshold),
        "stride": int(stride),
        "windows_scored": int(scored),
        "hard_negatives": int(len(y)),
        "false_alarm_runs": int(len(hits)),
        "class_counts": np.bincount(y, minlength=len(labels)).tolist(),
    }
    return x, y, summary


def _check_mining_arguments(minutes: float, threshold: float, stride: int) -> None:
    """Checks the arguments of :func:`mine_hard_negatives`.

    Raises:
        ValueError: naming the first bad argument.
    """
    if not minutes > 0:
        raise ValueError(f"mine_hard_negatives: minutes must be > 0, got {minutes}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(
            f"mine_hard_negatives: threshold must be in (0, 1), got {threshold}"
        )
    if int(stride) < 1:
        raise ValueError(f"mine_hard_negatives: stride must be >= 1, got {stride}")


def _training_negatives(
    data_dir: str | os.PathLike,
    exclude_engines: Sequence[str],
    labels: Sequence[str],
    keyword_ids: Sequence[int],
) -> list[Utterance]:
    """The training split's non-keyword utterances of the kept voices.

    Raises:
        ValueError: there are none.
    """
    by_split, _ = load_utterances(os.fspath(data_dir), exclude_engines)
    negs = [u for u in by_split["train"] if _label_of(u, labels) not in keyword_ids]
    if not negs:
        raise ValueError(
            f"mine_hard_negatives: no non-keyword training utterances in {data_dir!r}"
        )
    return negs


def _false_alarm_runs(
    predict: Callable[[np.ndarray], np.ndarray],
    feats: np.ndarray,
    lab: np.ndarray,
    keyword_ids: Sequence[int],
    threshold: float,
    stride: int,
    config: StreamConfig,
) -> tuple[list[tuple[np.ndarray, int, float]], int]:
    """The highest-scoring window of each run of false alarms in one stream.

    Returns:
        ``(hits, scored)``: ``(window, label, p_kw)`` per run, and the number of
        windows scored.
    """
    w, tol = config.window, config.tolerance_frames
    ends = np.arange(w - 1, feats.shape[0], int(stride))
    windows = np.lib.stride_tricks.sliding_window_view(feats, w, axis=0)
    x = np.ascontiguousarray(windows[ends - w + 1].transpose(0, 2, 1))
    prob = np.asarray(predict(x))[:, keyword_ids].max(axis=1)
    hot = np.flatnonzero(prob >= threshold)
    hits = []
    # one window per run of hot windows (runs split by a gap > tolerance)
    for run in np.split(hot, np.flatnonzero(np.diff(ends[hot]) > tol) + 1):
        if run.size:
            best = run[np.argmax(prob[run])]
            hits.append((x[best], int(lab[ends[best]]), float(prob[best])))
    return hits, len(ends)


def _strongest_windows(
    hits: Sequence[tuple[np.ndarray, int, float]],
    max_windows: int | None,
    window: int,
    num_features: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of the ``max_windows`` highest-scoring hits, highest first."""
    scores = [score for _, _, score in hits]
    order = np.argsort(scores)[::-1][: max_windows if max_windows else None]
    x = (
        np.stack([hits[j][0] for j in order])
        if len(order)
        else np.zeros((0, window, num_features), np.float32)
    )
    y = np.asarray([hits[j][1] for j in order], np.int64)
    return x, y
