"""Negative speech: word lists, near-misses, homophones, vocabulary split."""

import numpy as np
import pytest

from lmuformer_keras.data import word_lists as wl
from lmuformer_keras.data.speech_commands import COMMAND_WORDS


def test_negative_words_exclude_keywords_and_homophones():
    words = wl.negative_words(COMMAND_WORDS, 1500)
    assert len(words) == len(set(words)) == 1500
    banned = set(COMMAND_WORDS) | {"know", "write", "rite", "wright"}
    assert not banned & set(words)
    assert all(w.isalpha() and w.islower() for w in words)
    # near-misses first (the train half of them), then numbers, then common words
    near = [w for k in COMMAND_WORDS for w in wl.NEAR_MISSES[k]]
    train_near = [w for w in dict.fromkeys(near) if wl.vocabulary_split(w) == "train"]
    assert words[: len(train_near)] == train_near
    for w in ("upon", "gone", "nobody", "often", "bright", "stopped", "downtown",
              "yet", "lefty"):  # fmt: skip
        assert w in near


def test_vocabulary_split_is_disjoint_and_about_a_fifth():
    train = set(wl.negative_words(COMMAND_WORDS, 1000, split="train"))
    evals = set(wl.negative_words(COMMAND_WORDS, 250, split="eval"))
    assert not train & evals
    common = wl.common_words(3000)
    share = np.mean([wl.vocabulary_split(w) == "eval" for w in common])
    assert 0.15 < share < 0.25
    assert wl.vocabulary_split("the") == wl.vocabulary_split("THE")
    with pytest.raises(ValueError, match="empty text"):
        wl.vocabulary_split("  ")


def test_sentences_use_one_split_and_no_keyword():
    rng = np.random.default_rng(0)
    sentences = wl.negative_sentences(COMMAND_WORDS, 200, rng, split="eval")
    assert len(sentences) == 200
    for s in sentences:
        words = s.split()
        assert 3 <= len(words) <= 9
        assert not set(words) & (set(COMMAND_WORDS) | {"know", "write"})
        assert wl.vocabulary_split(s) == "eval"
    again = wl.negative_sentences(
        COMMAND_WORDS, 200, np.random.default_rng(0), split="eval"
    )
    assert again == sentences
    with pytest.raises(ValueError, match="split must be train or eval"):
        wl.negative_words(COMMAND_WORDS, 5, split="test")
