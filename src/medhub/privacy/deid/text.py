"""Free text checked against a patient's own identifiers (names, ids, resident numbers, phones)
and against identifier-shaped patterns; matches are replaced by '***'.

Names are matched in every written form a header uses (DICOM 'FAMILY^GIVEN', 'GIVEN FAMILY',
Korean '홍길동' with or without a space); Latin tokens only as whole words, Hangul anywhere (Korean
attaches particles to names). One-letter tokens and one-syllable family names alone are not matched
(they would erase ordinary words); the full name is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

MASK = "***"

# Korean resident registration numbers, phone numbers, e-mail addresses: never legitimate in free text.
GENERIC = re.compile(
    r"(?<!\d)\d{6}[- ]?[1-8]\d{6}(?!\d)"  # RRN-shaped
    r"|(?<!\d)0(?:1[016789]|2|[3-6][1-5]|70)[- .)]?\d{3,4}[- .]?\d{4}(?!\d)"  # Korean phones
    r"|\+82[- ]?\d{1,2}[- ]?\d{3,4}[- ]?\d{4}"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
)
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_SEPARATORS = str.maketrans("", "", " \t\r\n\f\v\xa0\u3000^,_")


def _norm(text: str) -> str:
    return text.translate(_SEPARATORS).casefold()


_SPLIT = re.compile(r"[\^=,_\s]+")


def name_forms(names: Iterable[str]) -> set[str]:
    """Every form of each name worth searching for: whole name, swapped order, single tokens."""
    forms: set[str] = set()
    for raw in names:
        if not raw:
            continue
        for group in str(raw).split("="):  # DICOM PN: alphabetic=ideographic=phonetic
            parts = [p for p in _SPLIT.split(group) if p]
            if not parts:
                continue
            forms.add(" ".join(parts))
            forms.add("".join(parts))
            if len(parts) >= 2:
                forms.add(" ".join([*parts[1:], parts[0]]))
                forms.add("".join(parts[:2]))
                forms.add("".join([*parts[1:2], parts[0]]))
            for p in parts:
                if (_HANGUL.search(p) and len(p) >= 2) or (not _HANGUL.search(p) and len(p) >= 3):
                    forms.add(p)
    return {f for f in forms if len(f) >= 2}


def id_forms(ids: Iterable[str]) -> set[str]:
    """Ids as written and with separators removed (900101-1234567 and 9001011234567)."""
    forms: set[str] = set()
    for raw in ids:
        s = str(raw or "").strip()
        if len(s) < 3:
            continue
        forms.add(s)
        compact = re.sub(r"[-\s./]", "", s)
        if len(compact) >= 3:
            forms.add(compact)
    return forms


class Matcher:
    """Finds a patient's identifiers (and identifier-shaped strings) in free text."""

    def __init__(
        self, names: Iterable[str] = (), ids: Iterable[str] = (), others: Iterable[str] = ()
    ) -> None:
        terms = name_forms(names) | id_forms(ids) | {o.strip() for o in others if o and len(o.strip()) >= 3}
        self._set_terms(terms)

    def _set_terms(self, terms: set[str]) -> None:
        self.terms = terms
        # Prefilter: every match contains the term's normalized form (case and separators gone); only
        # the terms found that way go into a (small, cached) regex that decides and masks.
        self._keys = tuple((k, t) for t in sorted(terms, key=len, reverse=True) if (k := _norm(t)))

    def __or__(self, other: Matcher) -> Matcher:
        """A matcher for the identifiers of both (one patient as seen in two modalities)."""
        both = Matcher()
        both._set_terms(self.terms | other.terms)
        return both

    def _candidates(self, text: str) -> tuple[str, ...]:
        norm = _norm(text)
        return tuple(t for k, t in self._keys if k in norm)

    def clean(self, text: str) -> str:
        """`text` with identifiers masked."""
        if not text:
            return text
        terms = self._candidates(text) if self._keys else ()
        if terms:
            for rx in _patterns(terms):
                text = rx.sub(MASK, text)
        return GENERIC.sub(MASK, text)

    def found(self, text: str, generic: bool = True) -> bool:
        """Whether `text` holds one of the identifiers (with `generic`, or an identifier-shaped string)."""
        if not text:
            return False
        terms = self._candidates(text) if self._keys else ()
        if terms and any(rx.search(text) is not None for rx in _patterns(terms)):
            return True
        return generic and GENERIC.search(text) is not None


@lru_cache(maxsize=8192)
def _patterns(terms: tuple[str, ...]) -> list[re.Pattern]:
    """Regexes for these terms (longest first): Latin and other scripts as whole words, Hangul anywhere
    (Korean attaches particles to names); ASCII case folding for Latin, none needed for Hangul. Separate
    small patterns compile an order of magnitude faster than one Unicode case-insensitive one."""
    ascii_alts, hangul_alts, other_alts = [], [], []
    for t in terms:
        if t.isascii():
            ascii_alts.append(re.escape(t).replace(r"\ ", r"[ \t^,_]*"))
        else:
            esc = re.escape(t).replace(r"\ ", r"[\s^,_]*")
            (hangul_alts if _HANGUL.search(t) else other_alts).append(esc)
    out = []
    if ascii_alts:
        out.append(
            re.compile(r"(?<![A-Za-z0-9])(?:{})(?![A-Za-z0-9])".format("|".join(ascii_alts)), re.I | re.ASCII)
        )
    if hangul_alts:
        out.append(re.compile("|".join(hangul_alts)))
    if other_alts:
        out.append(re.compile(r"(?<!\w)(?:{})(?!\w)".format("|".join(other_alts)), re.I))
    return out
