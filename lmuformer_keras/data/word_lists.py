"""Negative speech for keyword spotting: non-keyword words, near-misses, sentences.

A keyword spotter must stay quiet on ordinary speech, so the synthetic set renders
thousands of words that are *not* keywords, from a word list that a pip package ships
(``wordfreq``'s frequency-ranked English list; Debian's ``/usr/share/dict/words`` is
the fallback when wordfreq is missing), plus:

- near-misses of each command word (:data:`NEAR_MISSES`: ``upon, gone, nobody, often,
  bright, stopped, downtown, yet, lefty, ...``), which sound like a keyword or contain
  one;
- the digits and other number words (:data:`NUMBER_WORDS`);
- short pseudo-sentences: 3-9 words drawn from the list with Zipf-like weights, so
  function words are common, as in speech.

What is never a negative: a keyword itself and its homophones (:data:`HOMOPHONES`:
"know" sounds exactly like "no", "write" / "rite" like "right"), whose audio cannot
be told apart from the keyword.

Every negative belongs to one *vocabulary split* by a hash of its text
(:func:`vocabulary_split`): about 20 % of the words are ``"eval"`` words that the
generator never renders for training, so evaluation sentences are made of words the
model never heard as negatives.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence

import numpy as np

#: Words that sound like (or contain) a command word; never labelled as the keyword.
NEAR_MISSES: dict[str, tuple[str, ...]] = {
    "yes": ("yet", "yeah", "yep", "yesterday", "guess", "mess", "chess", "less",
            "yeast", "yellow", "dress", "bless"),
    "no": ("nobody", "noon", "nose", "note", "now", "nope", "snow", "slow", "toe",
           "known", "nomad", "nothing"),
    "up": ("upon", "cup", "pup", "hop", "upper", "supper", "pop", "hope", "update",
           "uphill", "puppy", "ugh"),
    "down": ("downtown", "town", "brown", "gown", "sound", "crown", "drown", "dawn",
             "downstairs", "noun", "clown", "doubt"),
    "left": ("lefty", "lift", "leftover", "theft", "loft", "deaf", "lest", "lent",
             "lever", "elf", "laughed", "lead"),
    "right": ("bright", "light", "fright", "ride", "rice", "wrote", "ripe", "fight",
              "brighter", "righteous", "rights", "tonight"),
    "on": ("own", "gone", "john", "honest", "onion", "online", "an", "in", "odd",
           "ongoing", "bond", "donor"),
    "off": ("often", "cough", "offer", "awful", "office", "of", "soft", "coffee",
            "offset", "offspring", "loft", "boff"),
    "stop": ("stopped", "shop", "top", "stomp", "step", "spot", "stock", "stoplight",
             "strap", "stuff", "stopwatch", "drop"),
    "go": ("gold", "goal", "goat", "going", "ago", "ghost", "glow", "grow", "sew",
           "dough", "gopher", "cargo"),
}  # fmt: skip
#: Digits and number words (the Speech Commands digits are also non-keywords).
NUMBER_WORDS: tuple[str, ...] = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "twenty", "thirty", "hundred", "thousand",
)  # fmt: skip
#: Words that sound exactly like a keyword: excluded from every negative list.
HOMOPHONES: dict[str, tuple[str, ...]] = {
    "no": ("know", "noh"),
    "right": ("write", "rite", "wright"),
}
DICT_WORDS = "/usr/share/dict/words"
EVAL_PERCENT = 20
_WORD = re.compile(r"^[a-z]+$")


class WordListError(RuntimeError):
    """No word list is installed (names the packages that provide one)."""


def excluded_words(keywords: Sequence[str]) -> frozenset[str]:
    """The keywords and their homophones: never used as negative speech."""
    out = {k.lower() for k in keywords}
    for k in keywords:
        out.update(HOMOPHONES.get(k.lower(), ()))
    return frozenset(out)


def vocabulary_split(text: str) -> str:
    """``"eval"`` for about :data:`EVAL_PERCENT` % of texts (by hash), else ``"train"``.

    For a sentence, the split of each word decides: a sentence is ``"eval"`` only when
    all its words are eval words (the generator builds sentences from one split).
    """
    words = text.lower().split()
    if not words:
        raise ValueError(f"vocabulary_split: empty text {text!r}")
    splits = {_word_split(w) for w in words}
    return "eval" if splits == {"eval"} else "train"


def _word_split(word: str) -> str:
    digest = hashlib.sha1(word.encode()).digest()
    return "eval" if digest[0] * 100 // 256 < EVAL_PERCENT else "train"


def common_words(count: int = 5000) -> list[str]:
    """The ``count`` most frequent English words (lower-case letters only).

    From ``wordfreq`` (frequency order), else :data:`DICT_WORDS` (alphabetical order,
    Debian's ``wamerican``).

    Raises:
        WordListError: neither is installed.
    """
    if count < 1:
        raise ValueError(f"common_words: count must be >= 1, got count={count}")
    try:
        import wordfreq

        raw = wordfreq.top_n_list("en", count * 2)
    except ImportError:
        if not os.path.isfile(DICT_WORDS):
            raise WordListError(
                "negative speech needs a word list: pip install wordfreq (a "
                f"dependency of lmuformer-keras) or apt-get install wamerican "
                f"({DICT_WORDS})"
            ) from None
        with open(DICT_WORDS, encoding="utf-8", errors="replace") as fh:
            raw = [line.strip() for line in fh]
    words: list[str] = []
    seen: set[str] = set()
    for w in raw:
        w = w.lower()
        if (len(w) >= 2 or w in ("a", "i")) and _WORD.match(w) and w not in seen:
            seen.add(w)
            words.append(w)
        if len(words) == count:
            break
    return words


def negative_words(
    keywords: Sequence[str],
    count: int = 2000,
    split: str = "train",
    extra: Sequence[str] = (),
) -> list[str]:
    """Non-keyword words of one vocabulary split, near-misses and numbers first.

    Args:
        keywords: the command words (excluded with their homophones).
        count: how many words in all.
        split: ``"train"`` or ``"eval"`` (:func:`vocabulary_split`).
        extra: further words to exclude (e.g. the Speech Commands words, which are
            rendered anyway).

    Returns:
        Unique words: the split's near-misses of every keyword, its number words,
        then common words in frequency order.
    """
    if split not in ("train", "eval"):
        raise ValueError(f"negative_words: split must be train or eval, got {split!r}")
    banned = excluded_words(keywords) | {w.lower() for w in extra}
    ordered = [w for k in keywords for w in NEAR_MISSES.get(k.lower(), ())]
    ordered += list(NUMBER_WORDS)
    ordered += common_words(max(4 * count, 1000))
    out: list[str] = []
    seen: set[str] = set()
    for w in ordered:
        if w in banned or w in seen or _word_split(w) != split:
            continue
        seen.add(w)
        out.append(w)
        if len(out) == count:
            break
    return out


def negative_sentences(
    keywords: Sequence[str],
    count: int,
    rng: np.random.Generator,
    split: str = "train",
    length: tuple[int, int] = (3, 9),
    vocabulary: int = 3000,
) -> list[str]:
    """``count`` pseudo-sentences of ``length`` words, none a keyword or homophone.

    Word ``i`` of the frequency list is drawn with probability ``~ 1 / (i + 10)``
    (Zipf-like), from the words of vocabulary ``split`` only.
    """
    lo, hi = length
    if not 1 <= lo <= hi:
        raise ValueError(f"negative_sentences: bad length range {length}")
    banned = excluded_words(keywords)
    words = [
        w
        for w in common_words(vocabulary)
        if w not in banned and _word_split(w) == split
    ]
    weights = 1.0 / (np.arange(len(words)) + 10.0)
    weights /= weights.sum()
    sentences = []
    for _ in range(int(count)):
        n = int(rng.integers(lo, hi + 1))
        sentences.append(
            " ".join(words[i] for i in rng.choice(len(words), n, p=weights))
        )
    return sentences
