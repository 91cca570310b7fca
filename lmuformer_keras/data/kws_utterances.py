"""The utterances of a synthetic keyword set, by split, with engines held out.

:func:`lmuformer_keras.data.synthetic_kws.generate_synthetic_kws` stores every
utterance a voice spoke in ``_utterances_/<speaker>.npz`` (speech only, before gain
and noise). :func:`load_utterances` reads them back for the stream and clip builders
(:mod:`lmuformer_keras.data.kws_streams`, :mod:`lmuformer_keras.data.kws_mining`).

Engines and speakers can be held out (``exclude_engines``): every voice of an excluded
engine, and every voice of another engine with the same *speaker* (flite's and
festival's ``kal`` and ``slt`` are the same recorded people), is dropped from every
split, so a held-out engine is never heard in training or model selection.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmuformer_keras.data.speech_commands_layout import COMMAND_WORDS, UNKNOWN_LABEL

SPLITS: tuple[str, ...] = ("train", "val", "test")


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
    from lmuformer_keras.data.synthetic_kws_files import MANIFEST

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


def utterance_label(utt: Utterance, labels: Sequence[str]) -> int:
    """Index in ``labels`` of a keyword word, else of ``_unknown_``."""
    if utt.kind == "word" and utt.text in COMMAND_WORDS and utt.text in labels:
        return labels.index(utt.text)
    return labels.index(UNKNOWN_LABEL)


def babble_audio(negs: Sequence[Utterance]) -> list[np.ndarray]:
    """Audio for babble noise: the sentences among ``negs``, else all of them."""
    return [u.audio for u in negs if u.kind == "sentence"] or [u.audio for u in negs]
