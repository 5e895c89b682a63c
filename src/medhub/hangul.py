"""Hangul syllables: composition, decomposition and Revised Romanization, syllable by syllable
(a small shared helper: the synthetic generator writes romanized names with it, and the linkage
tokenizer brings Hangul and romanized names to one form with it)."""

from __future__ import annotations

CHO = ("g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t", "p", "h")
JUNG = (
    "a",
    "ae",
    "ya",
    "yae",
    "eo",
    "e",
    "yeo",
    "ye",
    "o",
    "wa",
    "wae",
    "oe",
    "yo",
    "u",
    "wo",
    "we",
    "wi",
    "yu",
    "eu",
    "ui",
    "i",
)
JONG = (
    "",
    "k",
    "k",
    "k",
    "n",
    "n",
    "n",
    "t",
    "l",
    "k",
    "m",
    "l",
    "l",
    "l",
    "p",
    "l",
    "m",
    "p",
    "p",
    "t",
    "t",
    "ng",
    "t",
    "t",
    "k",
    "t",
    "p",
    "t",
)

_FIRST, _LAST = 0xAC00, 0xD7A3


def is_syllable(ch: str) -> bool:
    return _FIRST <= ord(ch) <= _LAST


def decompose(syllable: str) -> tuple[int, int, int]:
    """(initial, medial, final) indexes of one precomposed Hangul syllable."""
    code = ord(syllable) - _FIRST
    return code // 588, (code % 588) // 28, code % 28


def compose(cho: int, jung: int, jong: int) -> str:
    return chr(_FIRST + cho * 588 + jung * 28 + jong)


def romanize(hangul: str) -> str:
    """Revised Romanization, syllable by syllable (as given names are written), lower case;
    characters that are not Hangul syllables pass through."""
    out = []
    for ch in hangul:
        if is_syllable(ch):
            cho, jung, jong = decompose(ch)
            out.append(CHO[cho] + JUNG[jung] + JONG[jong])
        else:
            out.append(ch)
    return "".join(out)
