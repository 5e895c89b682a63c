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

MASK = "***"

# Korean resident registration numbers, phone numbers, e-mail addresses: never legitimate in free text.
GENERIC = re.compile(
    r"(?<!\d)\d{6}[- ]?[1-8]\d{6}(?!\d)"  # RRN-shaped
    r"|(?<!\d)0(?:1[016789]|2|[3-6][1-5]|70)[- .)]?\d{3,4}[- .]?\d{4}(?!\d)"  # Korean phones
    r"|\+82[- ]?\d{1,2}[- ]?\d{3,4}[- ]?\d{4}"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
)
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_SEPARATORS = str.maketrans("", "", " \t\r\n^,_")


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
        ascii_alts, hangul_alts, other_alts = [], [], []
        for t in sorted(terms, key=len, reverse=True):
            if t.isascii():
                esc = re.escape(t).replace(r"\ ", r"[ \t^,_]*")
                ascii_alts.append(rf"(?<![A-Za-z0-9]){esc}(?![A-Za-z0-9])")
            else:
                esc = re.escape(t).replace(r"\ ", r"[\s^,_]*")
                if _HANGUL.search(t):
                    hangul_alts.append(esc)
                else:
                    other_alts.append(rf"(?<!\w){esc}(?!\w)")
        self.terms = terms
        self._alts = ((ascii_alts, re.I | re.ASCII), (hangul_alts, 0), (other_alts, re.I))
        self._compiled: list[re.Pattern] | None = None
        # A cheap prefilter: every regex match contains one of these, once case and separators go.
        self._keys = tuple({k for k in (_norm(t) for t in terms) if k})

    @property
    def _rxs(self) -> list[re.Pattern]:
        # Compiled on first need (most text holds no identifier). Separate patterns compile an order of
        # magnitude faster than one Unicode case-insensitive one (ASCII case folding for Latin names and
        # ids; Hangul has no case).
        if self._compiled is None:
            self._compiled = [re.compile("|".join(alts), flags) for alts, flags in self._alts if alts]
        return self._compiled

    def _maybe(self, text: str) -> bool:
        norm = _norm(text)
        return any(k in norm for k in self._keys)

    def clean(self, text: str) -> str:
        """`text` with identifiers masked."""
        if not text:
            return text
        if self._keys and self._maybe(text):
            for rx in self._rxs:
                text = rx.sub(MASK, text)
        return GENERIC.sub(MASK, text)

    def found(self, text: str, generic: bool = True) -> bool:
        """Whether `text` holds one of the identifiers (with `generic`, or an identifier-shaped string)."""
        if not text:
            return False
        if self._keys and self._maybe(text) and any(rx.search(text) is not None for rx in self._rxs):
            return True
        return generic and GENERIC.search(text) is not None
