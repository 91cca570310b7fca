"""The files of a synthetic keyword set besides the rendered clips: manifest, lists.

A generation marks the set incomplete first (:func:`prepare_out_dir`, which also
removes what an older generation wrote and writes the background noise files), then
writes the validation and testing lists (:func:`write_split_lists`) and the complete
manifest (:func:`complete_manifest`, :func:`write_manifest`) once every worker is
done, so an interrupted run is detected (:func:`previous_manifest`) and redone.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmuformer_keras.data import tts
from lmuformer_keras.data.espeak import get_espeak, variant_has_breath
from lmuformer_keras.data.kws_render import (
    NOISE_TYPES,
    UTTERANCE_DIR,
    noise_bank,
    speaker_id,
    voice_key,
)
from lmuformer_keras.data.speech_commands_layout import (
    BACKGROUND_NOISE_DIR,
    TESTING_LIST,
    VALIDATION_LIST,
)
from lmuformer_keras.data.wav import write_wav_int16

MANIFEST = "synthetic_kws_manifest.json"


def previous_manifest(out_dir: str, overwrite: bool) -> dict[str, Any] | None:
    """The manifest a previous generation left in ``out_dir``, or None.

    Raises:
        ValueError: ``out_dir`` is not empty and has no manifest (without
            ``overwrite``).
    """
    manifest_path = os.path.join(out_dir, MANIFEST)
    if os.path.isfile(manifest_path):
        with open(manifest_path, encoding="utf-8") as fh:
            return json.load(fh)
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not overwrite:
        raise ValueError(
            f"generate_synthetic_kws: {out_dir!r} is not empty and has no {MANIFEST}; "
            "choose an empty folder or pass overwrite=True"
        )
    return None


def prepare_out_dir(
    out_dir: str, params: dict[str, Any], old: dict[str, Any] | None
) -> None:
    """Removes ``old``'s files, marks the set incomplete, writes the noise files."""
    os.makedirs(out_dir, exist_ok=True)
    if old is not None:
        _remove_generated(out_dir, old)
    write_manifest(out_dir, {"complete": False, "params": params})
    for word in params["words"]:
        os.makedirs(os.path.join(out_dir, word), exist_ok=True)
    os.makedirs(os.path.join(out_dir, UTTERANCE_DIR), exist_ok=True)
    noise_dir = os.path.join(out_dir, BACKGROUND_NOISE_DIR)
    os.makedirs(noise_dir, exist_ok=True)
    for kind, x in noise_bank(params["seed"], params["noise_seconds"]).items():
        samples = np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
        write_wav_int16(os.path.join(noise_dir, f"{kind}_noise.wav"), samples)


def _remove_generated(out_dir: str, manifest: dict[str, Any]) -> None:
    """Deletes what a previous generation wrote (only those paths)."""
    for word in manifest.get("params", {}).get("words", []):
        shutil.rmtree(os.path.join(out_dir, word), ignore_errors=True)
    shutil.rmtree(os.path.join(out_dir, BACKGROUND_NOISE_DIR), ignore_errors=True)
    shutil.rmtree(os.path.join(out_dir, UTTERANCE_DIR), ignore_errors=True)
    for name in (VALIDATION_LIST, TESTING_LIST, MANIFEST):
        path = os.path.join(out_dir, name)
        if os.path.exists(path):
            os.remove(path)


def write_split_lists(
    out_dir: str, results: dict[str, dict[str, Any]]
) -> dict[str, list[str]]:
    """Writes the validation and testing lists; ``{split: sorted clip paths}``."""
    split_files: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for result in results.values():
        for rel, split in result["files"]:
            split_files[split].append(rel)
    for files in split_files.values():
        files.sort()
    _write_lines(os.path.join(out_dir, VALIDATION_LIST), split_files["val"])
    _write_lines(os.path.join(out_dir, TESTING_LIST), split_files["test"])
    return split_files


def complete_manifest(
    params: dict[str, Any],
    results: dict[str, dict[str, Any]],
    split_files: dict[str, list[str]],
    start: float,
    worker_processes: int,
) -> dict[str, Any]:
    """The manifest of a finished generation that started at time ``start``."""
    used = params["engines"]
    voice_info = _voice_records(params, results)
    not_reproducible = _not_reproducible_voices(params)
    return {
        "complete": True,
        "params": params,
        "engines": {
            e: {
                "version": tts.get_engine(e).version(),
                "reproducible": tts.get_engine(e).reproducible,
                "voices": params["engine_voices"][e],
            }
            for e in used
        },
        "engines_not_installed": [e for e in tts.ENGINE_NAMES if e not in used],
        "espeak_ng_version": get_espeak().version if "espeak" in used else None,
        "counts": {s: len(f) for s, f in split_files.items()},
        "total_clips": sum(len(f) for f in split_files.values()),
        "cropped_words": sum(r["cropped"] for r in results.values()),
        "noise_files": [f"{BACKGROUND_NOISE_DIR}/{k}_noise.wav" for k in NOISE_TYPES],
        "speakers": {k: info["speaker_id"] for k, info in voice_info.items()},
        "voices": voice_info,
        "not_reproducible_voices": not_reproducible,
        "seconds": round(time.time() - start, 2),
        "worker_processes": worker_processes,
    }


def _voice_records(
    params: dict[str, Any], results: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``{voice key: engine, voice, speaker and utterances}`` for the manifest."""
    voice_info = {}
    for e in params["engines"]:
        engine = tts.get_engine(e)
        for v in params["engine_voices"][e]:
            key = voice_key(e, v)
            voice_info[key] = {
                "engine": e,
                "voice": v,
                "speaker": engine.speaker(v),
                "speaker_id": speaker_id(key),
                "utterances": results[key]["utterances"],
                "utterance_count": results[key]["utterance_count"],
            }
    return voice_info


def _not_reproducible_voices(params: dict[str, Any]) -> list[str]:
    """Voice keys whose output is not the same on every run (Piper, breath)."""
    return [
        voice_key(e, v)
        for e in params["engines"]
        for v in params["engine_voices"][e]
        if not tts.get_engine(e).reproducible
        or (e == "espeak" and variant_has_breath(v, get_espeak().data_path))
    ]


def write_manifest(out_dir: str, manifest: dict[str, Any]) -> None:
    """Writes ``manifest`` to ``out_dir`` atomically (a temporary file, renamed)."""
    path = os.path.join(out_dir, MANIFEST)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _write_lines(path: str, lines: Sequence[str]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(line + "\n" for line in lines)
