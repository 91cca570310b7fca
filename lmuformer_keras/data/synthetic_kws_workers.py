"""The rendering work of a synthetic keyword set, run in fresh worker processes.

:func:`negative_texts` spreads each engine's negative speech over its voices,
:func:`worker_tasks` groups the voices into one task per process (espeak-ng voices in
chunks of ``params["voices_per_process"]``, other engines one voice each) and
:func:`run_workers` runs one ``kws_render.py`` process per task (see
:mod:`lmuformer_keras.data.kws_render`), a few at a time.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lmuformer_keras.data import kws_render, word_lists
from lmuformer_keras.data.kws_render import voice_key
from lmuformer_keras.data.speech_commands_layout import COMMAND_WORDS
from lmuformer_keras.features.progress import Progress


def negative_texts(
    engines: Sequence[str],
    engine_voices: Mapping[str, Sequence[str]],
    words: Sequence[str],
    num_words: int,
    num_sentences: int,
    seed: int,
) -> dict[str, dict[str, list[list[str]]]]:
    """``{engine: {voice: [[kind, text], ...]}}``: negative speech, round-robin."""
    keywords = sorted({*COMMAND_WORDS, *words})
    vocab = word_lists.negative_words(keywords, num_words, "train") if num_words else []
    near = {w for ws in word_lists.NEAR_MISSES.values() for w in ws}
    out: dict[str, dict[str, list[list[str]]]] = {}
    for e_index, engine in enumerate(engines):
        rng = np.random.default_rng([seed, 11, e_index])
        sentences = word_lists.negative_sentences(
            keywords, num_sentences, rng, split="train"
        )
        items = [
            [
                "near_miss"
                if w in near
                else "number"
                if w in word_lists.NUMBER_WORDS
                else "negative_word",
                w,
            ]
            for w in vocab
        ] + [["sentence", t] for t in sentences]
        voices = list(engine_voices[engine])
        order = rng.permutation(len(voices))
        per_voice: dict[str, list[list[str]]] = {v: [] for v in voices}
        for i, item in enumerate(items):
            per_voice[voices[order[i % len(voices)]]].append(item)
        out[engine] = per_voice
    return out


def worker_tasks(
    params: dict[str, Any], negatives: dict[str, dict[str, list[list[str]]]]
) -> list[dict[str, Any]]:
    """One task per worker process: espeak-ng voices in chunks, others one each."""
    tasks = []
    for engine in params["engines"]:
        voices = params["engine_voices"][engine]
        size = params["voices_per_process"] if engine == "espeak" else 1
        for i in range(0, len(voices), size):
            chunk = voices[i : i + size]
            tasks.append(
                {
                    "engine": engine,
                    "voices": chunk,
                    "negatives": {v: negatives[engine][v] for v in chunk},
                }
            )
    return tasks


def work_units(
    params: dict[str, Any], negatives: dict[str, dict[str, list[list[str]]]]
) -> dict[str, int]:
    """``{voice key: utterances to render}`` (the progress bar's units)."""
    return {
        voice_key(e, v): len(params["words"]) * params["engine_clips_per_word"][e]
        + len(negatives[e][v])
        for e in params["engines"]
        for v in params["engine_voices"][e]
    }


def run_workers(
    tasks: list[dict[str, Any]],
    params: dict[str, Any],
    out_dir: str,
    workers: int,
    bar: Progress | None,
    units: dict[str, int],
) -> dict[str, dict[str, Any]]:
    """Runs one fresh ``kws_render.py`` process per task, ``workers`` at a time."""
    script = os.path.abspath(kws_render.__file__)
    events: queue.Queue = queue.Queue()
    pending = list(tasks)
    lock = threading.Lock()

    def run_one() -> None:
        while True:
            with lock:
                if not pending:
                    return
                task = pending.pop(0)
            text = json.dumps(dict(task, params=params, out_dir=out_dir))
            with tempfile.TemporaryFile(mode="w+") as err:
                proc = subprocess.Popen(
                    [sys.executable, script],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                )
                proc.stdin.write(text)
                proc.stdin.close()
                for line in proc.stdout:
                    if line.startswith(kws_render.RESULT_PREFIX):
                        result = json.loads(line[len(kws_render.RESULT_PREFIX) :])
                        events.put(("ok", result))
                rc = proc.wait()
                if rc != 0:
                    err.seek(0)
                    tail = err.read()[-2000:]
                    msg = (
                        f"{task['engine']} worker for voices {task['voices']} failed "
                        f"(exit {rc}): {tail}"
                    )
                    events.put(("error", msg))
                    return

    threads = [
        threading.Thread(target=run_one, daemon=True)
        for _ in range(max(1, min(workers, len(tasks))))
    ]
    for t in threads:
        t.start()
    results: dict[str, dict[str, Any]] = {}
    expected = sum(len(t["voices"]) for t in tasks)
    while len(results) < expected:
        try:
            kind, payload = events.get(timeout=1.0)
        except queue.Empty:
            if not any(t.is_alive() for t in threads) and events.empty():
                raise RuntimeError(
                    "generate_synthetic_kws: workers stopped before finishing"
                ) from None
            continue
        if kind == "error":
            with lock:
                pending.clear()
            raise RuntimeError(f"generate_synthetic_kws: {payload}")
        results[payload["key"]] = payload
        if bar is not None:
            bar.update(sum(units[k] for k in results))
    for t in threads:
        t.join()
    return results
