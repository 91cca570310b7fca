"""Rendering of synthetic keyword clips; also a worker script for fresh processes.

espeak-ng keeps state between utterances that is not reset by any API (its pitch
"flutter" phase advances with every sample it makes), so the same call gives slightly
different audio depending on what was spoken before in that process. To make
``synthetic_kws`` deterministic, every fixed chunk of voices is rendered in a fresh
process running this file as a script (``python kws_render.py`` with a JSON task on
stdin, one ``KWS_RESULT {json}`` line per voice on stdout). This file imports only
NumPy and the standalone siblings ``tts.py`` (with ``tts_engine.py`` and
``tts_festival.py``), ``wav.py`` and the ``channel/`` package
(by path when run as a script; SciPy, the engines' own packages and pyroomacoustics
are imported when first used), so a worker starts in well under a second.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from typing import Any

import numpy as np

if __package__:
    from . import channel, tts
    from .channel import NOISE_TYPES, make_noise
    from .wav import write_wav_int16
else:  # run as a script: sibling modules are importable from sys.path[0]
    import channel  # type: ignore[no-redef]
    import tts  # type: ignore[no-redef]
    from channel import NOISE_TYPES, make_noise  # type: ignore[no-redef]
    from wav import write_wav_int16  # type: ignore[no-redef]

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
RESULT_PREFIX = "KWS_RESULT "
UTTERANCE_DIR = "_utterances_"


def speaker_id(voice: str) -> str:
    """8 hex characters standing for a voice in file names (like SC's speaker hash)."""
    return hashlib.sha1(voice.encode()).hexdigest()[:8]


def clip_rng(seed: int, voice: str, word: str, k: int) -> np.random.Generator:
    """The RNG of one clip, from ``(seed, voice, word, k)`` only."""
    digest = hashlib.sha256(f"{seed}|{voice}|{word}|{k}".encode()).digest()
    return np.random.default_rng(list(np.frombuffer(digest[:16], dtype=np.uint32)))


@functools.lru_cache(maxsize=2)
def noise_bank(seed: int, seconds: float) -> dict[str, np.ndarray]:
    """The background noises (cached per process; callers must not modify them)."""
    return {
        kind: make_noise(kind, seconds, np.random.default_rng([seed, 7919, i]))
        for i, kind in enumerate(NOISE_TYPES)
    }


def trim(x: np.ndarray, sample_rate: int, rel_threshold: float = 0.02) -> np.ndarray:
    """Cuts leading / trailing samples below ``rel_threshold`` x peak (10 ms kept)."""
    if x.size == 0:
        return x
    loud = np.flatnonzero(np.abs(x) >= rel_threshold * np.abs(x).max())
    if loud.size == 0:
        return x[:0]
    margin = int(0.01 * sample_rate)
    return x[max(loud[0] - margin, 0) : loud[-1] + margin + 1]


def voice_key(engine: str, voice: str) -> str:
    """The name a voice goes by in seeds and speaker ids (espeak-ng: the voice)."""
    return voice if engine == "espeak" else f"{engine}:{voice}"


def utterance_split(engine: str, voice: str, text: str, k: int, params: dict) -> str:
    """``train`` / ``val`` / ``test`` of one utterance (see ``synthetic_kws``)."""
    if engine == "espeak":
        for split in ("val", "test"):
            if voice in params[f"{split}_voices"]:
                return split
        return "train"
    digest = hashlib.sha256(f"split|{voice_key(engine, voice)}|{text}|{k}".encode())
    fraction = int.from_bytes(digest.digest()[:4], "little") / 2**32
    return "val" if fraction < params["other_engine_val_fraction"] else "train"


def _draw_utterance(
    engine, voice: str, text: str, rng: np.random.Generator, params: dict
) -> tuple[Any, dict[str, Any]]:
    """Step 1 of ``synthetic_kws``: the engine's tempo, pitch and options."""
    tempo = round(float(rng.uniform(*params["tempo_range"])), 4)
    pitch = round(float(rng.uniform(*params["pitch_range"])), 3)
    options: tuple[tuple[str, float], ...] = ()
    if engine.name == "espeak":
        lo, hi = params["intonation_range"]
        options = (("pitch_range", float(rng.integers(lo, hi + 1))),)
    elif engine.name == "piper":
        options = (
            ("noise_scale", round(float(rng.uniform(0.4, 0.9)), 3)),
            ("noise_w_scale", round(float(rng.uniform(0.5, 1.0)), 3)),
        )
    seed = int(rng.integers(0, 2**31))
    utt = tts.Utterance(text, voice, tempo, pitch, seed, options)
    return utt, {"tempo": tempo, "pitch": pitch if engine.supports_pitch else None}


def render_utterances(
    engine_name: str,
    voice: str,
    jobs: list[tuple[str, int]],
    params: dict[str, Any],
) -> list[tuple[np.ndarray, dict[str, Any], np.random.Generator]]:
    """Steps 1-3 of ``synthetic_kws`` for ``(text, k)`` jobs of one voice.

    Returns:
        Per job: the trimmed speech after speaker / channel variety (float64 at 16
        kHz, peak -1 dBFS), what was drawn, and the job's RNG (for step 4).
    """
    engine = tts.get_engine(engine_name)
    key = voice_key(engine_name, voice)
    drawn = []
    for text, k in jobs:
        rng = clip_rng(params["seed"], key, text, k)
        utt, info = _draw_utterance(engine, voice, text, rng, params)
        ch = channel.draw_channel(rng) if params["channel"] else channel.NO_CHANNEL
        drawn.append((utt, info, ch, rng))
    audio = engine.synth([d[0] for d in drawn]) if drawn else []
    out = []
    for (utt, info, ch, rng), x in zip(drawn, audio, strict=True):
        speech = trim(np.asarray(x, np.float64), SAMPLE_RATE)
        if speech.size == 0:
            raise RuntimeError(
                f"{engine_name} produced no audio for {utt.text!r} with {voice!r}"
            )
        speech = trim(channel.apply_channel(speech, ch, SAMPLE_RATE), SAMPLE_RATE)
        speech = channel.peak_normalize(speech, -1.0)
        info = dict(
            info,
            speed=ch["speed"],
            vtlp_alpha=ch["vtlp_alpha"],
            band=ch["band"],
            reverb_rt60=None if not ch["reverb"] else ch["reverb"]["rt60"],
        )
        out.append((speech, info, rng))
    return out


def place_clip(
    speech: np.ndarray, rng: np.random.Generator, params: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Step 4 of ``synthetic_kws``: a 1 s int16 clip holding ``speech``."""
    cropped = speech.size > CLIP_SAMPLES
    if cropped:
        start = (speech.size - CLIP_SAMPLES) // 2
        speech = speech[start : start + CLIP_SAMPLES]
    peak_db = rng.uniform(*params["peak_dbfs"])
    speech = speech * 10.0 ** (peak_db / 20.0) / max(np.abs(speech).max(), 1e-9)
    offset = int(rng.integers(0, CLIP_SAMPLES - speech.size + 1))
    clip = np.zeros(CLIP_SAMPLES)
    clip[offset : offset + speech.size] = speech
    info: dict[str, Any] = {"cropped": cropped, "offset": offset, "length": speech.size}
    if rng.uniform() < params["noise_probability"]:
        noise = noise_bank(params["seed"], params["noise_seconds"])
        kind = NOISE_TYPES[int(rng.integers(len(NOISE_TYPES)))]
        src = noise[kind]
        start = int(rng.integers(0, src.size - CLIP_SAMPLES + 1))
        seg = src[start : start + CLIP_SAMPLES]
        snr = rng.uniform(*params["snr_db"])
        gain = np.sqrt(np.mean(speech**2) / (np.mean(seg**2) * 10.0 ** (snr / 10.0)))
        clip += gain * seg
        info.update(noise=kind, snr_db=round(float(snr), 2))
    return to_int16(clip), info


def to_int16(x: np.ndarray) -> np.ndarray:
    """float in [-1, 1] -> int16 (rounded, clipped)."""
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def render_clip(
    word: str, voice: str, k: int, params: dict[str, Any], engine: str = "espeak"
) -> tuple[np.ndarray, dict[str, Any]]:
    """One 1 s int16 word clip (steps 1-4 of ``synthetic_kws``) and what was drawn."""
    ((speech, info, rng),) = render_utterances(engine, voice, [(word, k)], params)
    clip, placed = place_clip(speech, rng, params)
    return clip, dict(info, **placed)


def render_voice(
    engine: str,
    voice: str,
    params: dict[str, Any],
    out_dir: str,
    negatives: list[list[str]],
) -> dict[str, Any]:
    """Every word clip and utterance of one voice, written to ``out_dir``.

    Word clips go to ``<word>/<speaker>_nohash_<k>.wav``; every utterance (words and
    ``negatives``, ``[kind, text]`` pairs) to ``_utterances_/<speaker>.npz`` (``audio``
    int16 end to end, ``bounds`` ``(N, 2)``, ``records`` JSON).
    """
    key = voice_key(engine, voice)
    spk = speaker_id(key)
    k_max = params["engine_clips_per_word"][engine]
    jobs = [(w, k) for w in params["words"] for k in range(k_max)]
    kinds = ["word"] * len(jobs)
    jobs += [(text, i) for i, (_, text) in enumerate(negatives)]
    kinds += [kind for kind, _ in negatives]
    rendered = render_utterances(engine, voice, jobs, params)
    files, cropped = [], 0
    pieces, bounds, records = [], [], []
    pos = 0
    for (text, k), kind, (speech, info, rng) in zip(jobs, kinds, rendered, strict=True):
        split = utterance_split(engine, voice, text, k, params)
        if kind == "word":
            clip, placed = place_clip(speech, rng, params)
            cropped += int(placed["cropped"])
            rel = f"{text}/{spk}_nohash_{k}.wav"
            write_wav_int16(os.path.join(out_dir, rel), clip, SAMPLE_RATE)
            files.append([rel, split])
        q = to_int16(speech)
        pieces.append(q)
        bounds.append((pos, pos + q.size))
        pos += q.size
        records.append(dict(info, kind=kind, text=text, k=k, split=split))
    rel_utt = f"{UTTERANCE_DIR}/{spk}.npz"
    np.savez(
        os.path.join(out_dir, rel_utt),
        audio=np.concatenate(pieces) if pieces else np.zeros(0, np.int16),
        bounds=np.asarray(bounds, np.int64).reshape(-1, 2),
        records=json.dumps(records),
    )
    return {
        "key": key,
        "engine": engine,
        "voice": voice,
        "files": files,
        "cropped": cropped,
        "utterances": rel_utt,
        "utterance_count": len(records),
    }


def render_speech_task(task: dict[str, Any]) -> None:
    """Worker mode ``--speech``: ``{"engine", "items": [[voice, text, k]], "params",
    "out"}``; saves the trimmed speech of every item (steps 1-3) to ``out`` (.npz,
    ``arr_0``...), float64 at 16 kHz."""
    by_voice: dict[str, list[int]] = {}
    for i, (voice, _, _) in enumerate(task["items"]):
        by_voice.setdefault(voice, []).append(i)
    speech: list[np.ndarray | None] = [None] * len(task["items"])
    for voice, idx in by_voice.items():
        jobs = [(task["items"][i][1], int(task["items"][i][2])) for i in idx]
        rendered = render_utterances(task["engine"], voice, jobs, task["params"])
        for i, (x, _, _) in zip(idx, rendered, strict=True):
            speech[i] = x
    np.savez(task["out"], *speech)


def main() -> None:
    """Worker: task ``{"engine", "voices", "negatives", "params", "out_dir"}`` on
    stdin, one result line per voice on stdout (``--speech``: see
    :func:`render_speech_task`)."""
    task = json.load(sys.stdin)
    if sys.argv[1:] == ["--speech"]:
        render_speech_task(task)
        return
    for voice in task["voices"]:
        result = render_voice(
            task["engine"],
            voice,
            task["params"],
            task["out_dir"],
            task["negatives"][voice],
        )
        sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
