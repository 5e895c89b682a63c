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
from typing import Final

# Korean name normalization is shared with the linkage unit (one romanization, one set of folds).
from medhub.privacy.deid.cache import remember
from medhub.privacy.deid.dates import clear_text_date_cache, shift_text_dates
from medhub.privacy.linkage import normalize as kn

MASK: Final = "***"

# Korean resident registration numbers, phone numbers, e-mail addresses: never legitimate in free text.
GENERIC: Final = re.compile(
    r"(?<!\d)\d{6}[- ]?[1-8]\d{6}(?!\d)"  # RRN-shaped
    r"|(?<!\d)0(?:1[016789]|2|[3-6][1-5]|70)[- .)]?\d{3,4}[- .]?\d{4}(?!\d)"  # Korean phones
    r"|\+82[- ]?\d{1,2}[- ]?\d{3,4}[- ]?\d{4}"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
)
_HANGUL: Final = re.compile(r"[\uac00-\ud7a3]")
_SEPARATORS: Final = str.maketrans("", "", " \t\r\n\f\v\xa0\u3000^,_")


def _norm(text: str) -> str:
    """`text` without separators, case folded: what the prefilter searches for a patient's terms.
    The same short texts recur for every patient: their forms are kept (bounded, as the others)."""
    if len(text) > CACHED_TEXT_CHARS:
        return text.translate(_SEPARATORS).casefold()
    out = _NORMALIZED.get(text)
    if out is None:
        out = remember(_NORMALIZED, text, text.translate(_SEPARATORS).casefold())
    return out


_NORMALIZED: Final[dict[str, str]] = {}


_SPLIT: Final = re.compile(r"[\^=,_\s]+")


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

    _korean: tuple[tuple[str, str], ...]

    def __init__(
        self, names: Iterable[str] = (), ids: Iterable[str] = (), others: Iterable[str] = ()
    ) -> None:
        terms = name_forms(names) | id_forms(ids) | {o.strip() for o in others if o and len(o.strip()) >= 3}
        self._set_terms(terms)
        self._korean = _korean_names(names)

    def _set_terms(self, terms: set[str]) -> None:
        self.terms = terms
        self._korean = ()
        # Prefilter: every match contains the term's normalized form (case and separators gone); only
        # the terms found that way go into a (small, cached) regex that decides and masks.
        self._keys = tuple((k, t) for t in sorted(terms, key=len, reverse=True) if (k := _norm(t)))

    def __or__(self, other: Matcher) -> Matcher:
        """A matcher for the identifiers of both (one patient as seen in two modalities)."""
        both = Matcher()
        both._set_terms(self.terms | other.terms)
        both._korean = tuple(sorted(set(self._korean) | set(other._korean)))
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
        if self._korean:
            text = _mask_romanized(text, self._korean)
        return _generic_masked(text)

    def found(self, text: str, generic: bool = True) -> bool:
        """Whether `text` holds one of the identifiers (with `generic`, or an identifier-shaped string)."""
        if not text:
            return False
        terms = self._candidates(text) if self._keys else ()
        if terms and any(rx.search(text) is not None for rx in _patterns(terms)):
            return True
        if self._korean and _mask_romanized(text, self._korean) != text:
            return True
        return generic and GENERIC.search(text) is not None


@lru_cache(maxsize=8192)
def _patterns(terms: tuple[str, ...]) -> list[re.Pattern]:
    """Regexes for these terms (longest first): Latin and other scripts as whole words, Hangul anywhere
    (Korean attaches particles to names); ASCII case folding for Latin, none needed for Hangul. Separate
    small patterns compile an order of magnitude faster than one Unicode case-insensitive one."""
    ascii_alts: list[str] = []
    hangul_alts: list[str] = []
    other_alts: list[str] = []
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


def _generic_masked(text: str) -> str:
    """`text` with identifier-shaped strings (GENERIC) masked. The same short texts (code displays,
    descriptions) recur for every patient, and this regex is the dearest step of cleaning one: its
    results are kept for short texts, bounded (a full cache is emptied)."""
    if len(text) > CACHED_TEXT_CHARS:
        return GENERIC.sub(MASK, text)
    out = _GENERIC_MASKED.get(text)
    if out is None:
        out = remember(_GENERIC_MASKED, text, GENERIC.sub(MASK, text))
    return out


_GENERIC_MASKED: Final[dict[str, str]] = {}


# --- Hangul names written in Latin letters ------------------------------------------------------
# A header may hold a name only in Hangul ("김^민준") while free text spells it in Latin letters
# ("Pt KIM MINJUN", "Min-jun Kim"). Latin words are compared with the Hangul name the way the linkage
# unit compares names: the given name by its folded Revised Romanization, the surname through the
# usual romanizations ("Kim", "Lee", "Park"...). A surname alone is masked only next to the given name.

_LATIN_WORD: Final = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")


def _korean_names(names: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """(canonical surname, canonical given name) of every name written in Hangul."""
    out: set[tuple[str, str]] = set()
    for raw in names:
        for group in str(raw or "").split("="):
            parts = [p for p in _SPLIT.split(group) if p]
            if len(parts) >= 2 and kn.is_hangul(parts[0]) and kn.is_hangul(parts[1]):
                out.add((kn.surname(hangul=parts[0]), kn.given_name(hangul="".join(parts[1:]))))
            elif len(parts) == 1 and kn.is_hangul(parts[0]) and len(parts[0]) >= 3:
                out.add((kn.surname(hangul=parts[0][0]), kn.given_name(hangul=parts[0][1:])))
    return tuple(sorted(o for o in out if len(o[1]) >= 3))


@lru_cache(maxsize=65536)
def _given_key(word: str) -> str:
    return kn.given_name(roman=word)


@lru_cache(maxsize=65536)
def _surname_key(word: str) -> str:
    return kn.surname(roman=word)


def _mask_romanized(text: str, korean: tuple[tuple[str, str], ...]) -> str:
    words = list(_LATIN_WORD.finditer(text))
    if not words:
        return text
    spans: list[tuple[int, int]] = []
    given_at: set[int] = set()
    for i, m in enumerate(words):
        for _family, given in korean:
            if _given_key(m.group()) == given:
                spans.append(m.span())
                given_at.add(i)
            elif i + 1 < len(words) and not text[m.end() : words[i + 1].start()].strip():
                nxt = words[i + 1]
                if _given_key(m.group() + nxt.group()) == given:  # "MIN JUN"
                    spans.append((m.start(), nxt.end()))
                    given_at.update((i, i + 1))
    if not spans:
        return text
    for i, m in enumerate(words):
        if i in given_at or not ({i - 1, i + 1, i - 2, i + 2} & given_at) or len(m.group()) < 2:
            continue
        if any(_surname_key(m.group()) == family for family, _given in korean):
            spans.append(m.span())
    out = text
    for start, end in sorted(set(spans), reverse=True):
        out = out[:start] + MASK + out[end:]
    return out


# Longer texts (notes, reports) seldom recur; caching them would let memory grow with them.
CACHED_TEXT_CHARS: Final = 512


def cleaned_text(matcher: Matcher, shift: int | None, value: str) -> str:
    """`value` with the patient's identifiers masked and, with a shift, dates in it shifted. Cached
    for short texts (FHIR and DICOM alike): a patient's texts recur across resources and across the
    instances of a series (codes, descriptions, device names). The cache is a plain bounded dict
    (emptied when full): an lru_cache call costs more than the lookup on this path."""
    if len(value) > CACHED_TEXT_CHARS:
        return _cleaned(matcher, shift, value)
    key = (matcher, shift, value)
    out = _CLEANED.get(key)
    if out is None:
        out = remember(_CLEANED, key, _cleaned(matcher, shift, value))
    return out


def _cleaned(matcher: Matcher, shift: int | None, value: str) -> str:
    new = matcher.clean(value)
    return new if shift is None else shift_text_dates(new, shift)


_CLEANED: Final[dict[tuple[Matcher, int | None, str], str]] = {}


def clear_text_cache() -> None:
    """Empty the caches of cleaned short texts (benchmarks and tests start cold with them)."""
    _CLEANED.clear()
    _GENERIC_MASKED.clear()
    _NORMALIZED.clear()
    clear_text_date_cache()
    _patterns.cache_clear()
    _given_key.cache_clear()
    _surname_key.cache_clear()


def text_cache_size() -> int:
    """How many cleaned short texts are cached."""
    return len(_CLEANED)
