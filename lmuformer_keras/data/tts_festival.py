"""Festival's voices: the US-English ones and, for accents, the non-English ones.

- ``festival``: Debian's ``festival`` (2.5) with festvox voices kal_diphone,
  ked_diphone, cmu_us_slt_arctic_hts (16 / 32 kHz).
- ``festival_accented``: festival's Czech, Finnish, Italian and Catalan voices reading
  the English text with their own language's letter-to-sound rules, the keywords
  respelled in that language's spelling: English words with an accent, from speakers
  no English engine has.

All utterances of one call run in one ``festival -b`` process; tempo ->
``Duration_Stretch = 1 / tempo``; pitch is not controlled (speaker variety comes from
``channel``). Standard library and NumPy only, as a package module or as a sibling of
``kws_render.py`` run as a script.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
from typing import ClassVar

import numpy as np

if __package__:
    from .tts_engine import Engine, Utterance, read_output
else:  # pragma: no cover - run as a script
    from tts_engine import Engine, Utterance, read_output  # type: ignore


class FestivalEngine(Engine):
    name = "festival"
    VOICE_DIR = "/usr/share/festival/voices"
    #: The folders of ``VOICE_DIR`` the voices are looked for in.
    LANGUAGES: ClassVar[tuple[str, ...]] = ("us", "english")
    SPEAKERS: ClassVar[dict[str, str]] = {
        "kal_diphone": "cmu_kal", "ked_diphone": "cmu_ked",
        "cmu_us_slt_arctic_hts": "cmu_slt",
    }  # fmt: skip

    @classmethod
    def available(cls) -> bool:
        return shutil.which("festival") is not None and bool(cls._installed())

    @classmethod
    def _installed(cls) -> tuple[str, ...]:
        found = set()
        for lang in cls.LANGUAGES:
            d = os.path.join(cls.VOICE_DIR, lang)
            if os.path.isdir(d):
                found.update(os.listdir(d))
        return tuple(v for v in cls.SPEAKERS if v in found)

    def voices(self) -> tuple[str, ...]:
        return self._installed()

    def speaker(self, voice: str) -> str:
        return self.SPEAKERS.get(voice, f"festival:{voice}")

    def version(self) -> str:
        r = subprocess.run(["festival", "--version"], capture_output=True, text=True)
        return r.stdout.strip()

    @staticmethod
    def _scheme_string(text: str) -> str:
        """Letters, digits, spaces and ``.,?!'-`` kept; the rest becomes a space."""
        kept = "".join(c if c.isalnum() or c in " .,?!'-" else " " for c in text)
        return '"' + " ".join(kept.split()) + '"'

    def _synth(self, utterances: list[Utterance]) -> list[np.ndarray]:
        with tempfile.TemporaryDirectory() as tmp:
            lines = []
            for i, u in enumerate(utterances):
                path = os.path.join(tmp, f"{i}.wav")
                lines += [
                    f"(voice_{u.voice})",
                    f"(Parameter.set 'Duration_Stretch {1.0 / u.tempo:.4f})",
                    f"(set! u (Utterance Text {self._scheme_string(u.text)}))",
                    "(utt.synth u)",
                    f'(utt.save.wave u "{path}" \'riff)',
                ]
            script = os.path.join(tmp, "render.scm")
            with open(script, "w", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
            r = subprocess.run(
                ["festival", "-b", script], capture_output=True, text=True, check=False
            )
            return [
                read_output(
                    os.path.join(tmp, f"{i}.wav"), "festival", u, r.stderr or r.stdout
                )
                for i, u in enumerate(utterances)
            ]


#: The ten keywords as a Romance-language spelling gives their English sounds.
_KEYWORD_SOUNDS = {"yes": "ies", "no": "nou", "up": "ap", "down": "daun",
                   "left": "left", "right": "rait", "on": "on", "off": "of",
                   "stop": "stop", "go": "gou"}  # fmt: skip


class FestivalAccentedEngine(FestivalEngine):
    """Festival's Czech, Finnish, Italian and Catalan voices reading English.

    Each language's letter-to-sound rules read the English text, except the ten
    keywords, which are respelled in that language's spelling as its speakers say them
    (:data:`RESPELLINGS`: "right" is "rajt" in Czech, "rait" in Italian), so that a
    keyword clip sounds like the keyword with an accent, not like a spelling
    pronunciation ("rixt").
    """

    name = "festival_accented"
    LANGUAGES = ("czech", "finnish", "italian", "catalan")
    SPEAKERS = {
        "czech_dita": "festival:czech_dita", "czech_krb": "festival:czech_krb",
        "czech_machac": "festival:czech_machac", "czech_ph": "festival:czech_ph",
        "hy_fi_mv_diphone": "festival:fi_mv", "suo_fi_lj_diphone": "festival:fi_lj",
        "lp_diphone": "festival:it_lp", "pc_diphone": "festival:it_pc",
        "upc_ca_ona_hts": "festival:ca_ona",
    }  # fmt: skip
    LANGUAGE_OF: ClassVar[dict[str, str]] = {
        "czech_dita": "czech", "czech_krb": "czech", "czech_machac": "czech",
        "czech_ph": "czech", "hy_fi_mv_diphone": "finnish",
        "suo_fi_lj_diphone": "finnish", "lp_diphone": "italian",
        "pc_diphone": "italian", "upc_ca_ona_hts": "catalan",
    }  # fmt: skip
    #: The keywords in each language's spelling (the other words are read as written).
    RESPELLINGS: ClassVar[dict[str, dict[str, str]]] = {
        "czech": {**_KEYWORD_SOUNDS, "yes": "jes", "right": "rajt"},
        "finnish": {**_KEYWORD_SOUNDS, "yes": "jes"},
        "italian": {**_KEYWORD_SOUNDS, "off": "off"},
        "catalan": dict(_KEYWORD_SOUNDS),
    }

    def respell(self, text: str, voice: str) -> str:
        """``text`` with each keyword in the spelling of ``voice``'s language."""
        table = self.RESPELLINGS[self.LANGUAGE_OF[voice]]
        return _WORD.sub(lambda m: table.get(m.group(0).lower(), m.group(0)), text)

    def _synth(self, utterances: list[Utterance]) -> list[np.ndarray]:
        return super()._synth(
            [
                dataclasses.replace(u, text=self.respell(u.text, u.voice))
                for u in utterances
            ]  # fmt: skip
        )


_WORD = re.compile(r"[A-Za-z']+")
