"""Text-to-speech engines: every engine .ci/run installs renders through one API."""

import subprocess
import sys

import numpy as np
import pytest

from lmuformer_keras.data import tts
from lmuformer_keras.data.speech_commands_layout import COMMAND_WORDS


def _speech_seconds(x):
    loud = np.flatnonzero(np.abs(x) >= 0.02 * np.abs(x).max())
    return (loud[-1] - loud[0]) / tts.SAMPLE_RATE


@pytest.mark.parametrize("name", tts.ENGINE_NAMES)
def test_engine_renders_words(name):
    engine = tts.get_engine(name)  # .ci/run installs all five: never skipped
    voice = engine.voices()[0]
    slow, fast, odd = engine.synth(
        [
            tts.Utterance("stop the music", voice, tempo=0.8),
            tts.Utterance("stop the music", voice, tempo=1.25),
            tts.Utterance('go "left" \\ now', voice),
        ]
    )
    for x in (slow, fast, odd):
        assert x.dtype == np.float64 and x.ndim == 1
        assert 0.15 < x.size / tts.SAMPLE_RATE < 4.0
        assert 0.01 < np.abs(x).max() <= 1.0
    assert _speech_seconds(fast) < 0.9 * _speech_seconds(slow)
    if engine.reproducible:
        again = engine.synth([tts.Utterance("stop the music", voice, tempo=0.8)])[0]
        np.testing.assert_array_equal(again, slow)
    assert engine.speaker(voice)
    with pytest.raises(ValueError, match="nosuchvoice"):
        engine.synth([tts.Utterance("stop", "nosuchvoice")])


def test_speakers_shared_across_engines():
    flite, festival = tts.get_engine("flite"), tts.get_engine("festival")
    assert flite.speaker("kal16") == festival.speaker("kal_diphone") == "cmu_kal"
    assert flite.speaker("slt") == festival.speaker("cmu_us_slt_arctic_hts")
    assert tts.get_engine("piper").reproducible is False


def test_accented_voices_are_new_speakers():
    accented = tts.get_engine("festival_accented")
    voices = accented.voices()  # .ci/run installs the nine
    assert len(voices) == 9 and "czech_dita" in voices and "upc_ca_ona_hts" in voices
    assert not set(voices) & set(tts.get_engine("festival").voices())
    others = {
        tts.get_engine(e).speaker(v)
        for e in ("flite", "festival", "piper")
        for v in tts.get_engine(e).voices()
    }
    speakers = {accented.speaker(v) for v in voices}
    assert len(speakers) == 9 and not speakers & others
    # the keywords, and only they, in each language's spelling
    for table in accented.RESPELLINGS.values():
        assert sorted(table) == sorted(COMMAND_WORDS)
    assert accented.respell("Go right, don't STOP", "czech_dita") == (
        "gou rajt, don't stop"
    )
    assert accented.respell("upon the rightful goat", "lp_diphone") == (
        "upon the rightful goat"
    )
    # each language's own letter-to-sound rules read the English text: speech of
    # a word's length, as from the English voices
    for x in accented.synth([tts.Utterance("stop", v) for v in voices]):
        assert 0.2 < _speech_seconds(x) < 1.5


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown text-to-speech engine 'nope'"):
        tts.get_engine("nope")
    with pytest.raises(ValueError, match="Utterance.tempo"):
        tts.Utterance("stop", "kal", tempo=3.0)
    with pytest.raises(ValueError, match="Utterance.pitch"):
        tts.Utterance("stop", "kal", pitch=float("nan"))
    with pytest.raises(ValueError, match="Utterance.text"):
        tts.Utterance("  ", "kal")
    assert tts.available_engines()[0] == "espeak"


def test_imports_as_a_sibling_without_keras():
    import os

    here = os.path.dirname(tts.__file__)
    code = (
        f"import sys; sys.path.insert(0, {here!r}); import tts, kws_render; "
        "print(tts.available_engines(), 'keras' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == (
        "['espeak', 'flite', 'festival', 'festival_accented', 'piper'] False"
    )


def test_engine_output_read_or_failure_named(tmp_path):
    from lmuformer_keras.data import tts_engine
    from lmuformer_keras.data.wav import write_wav_int16

    u = tts.Utterance("go left", "kal")
    log = "x" * 600 + "voice not found"
    with pytest.raises(
        RuntimeError,
        match=r"^festival failed for 'go left' with voice 'kal': x+voice not found$",
    ) as e:
        tts_engine.read_output(str(tmp_path / "missing.wav"), "festival", u, log)
    assert len(str(e.value).split(": ", 1)[1]) == 500  # the log's last 500 characters
    wav = tmp_path / "out.wav"
    write_wav_int16(wav, (np.sin(np.arange(8000) / 5.0) * 8000).astype(np.int16), 8000)
    with pytest.raises(RuntimeError, match="^flite failed for 'go left'"):
        tts_engine.read_output(str(wav), "flite", u, "", ok=False)  # file, bad exit
    x = tts_engine.read_output(str(wav), "flite", u, "")
    assert x.dtype == np.float64 and x.shape == (16000,)  # 8 kHz read, resampled
