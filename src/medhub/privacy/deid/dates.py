"""Date shifting that keeps each value's precision and time zone (DICOM DA/DT, FHIR date/dateTime/instant,
free-text dates), plus age grouping over 89.

Shifts are whole days, so times of day and offsets never change; a partial date (year, or year and
month) is shifted as its first day and written back at the same precision.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Final

from medhub.privacy.deid.cache import remember
from medhub.privacy.deid.common import AGE_TOP


def _shift(y: int, m: int, d: int, days: int) -> date:
    return date(y, m, d) + timedelta(days)  # timedelta's first argument is days


def _ascii_digits(value: str) -> bool:
    """Whether `value` is one or more of the ASCII digits 0-9 (str.isdigit alone admits other scripts')."""
    return value.isascii() and value.isdigit()


_DA: Final = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")
_DA_LEGACY: Final = re.compile(r"^\s*(\d{4})\.(\d{2})\.(\d{2})\s*$")


@lru_cache(maxsize=65536)
def shift_da(value: str, days: int) -> str | None:
    """DICOM DA 'YYYYMMDD' shifted; None when the value is not a date (the caller empties it)."""
    m = _DA.match(value) or _DA_LEGACY.match(value)
    if not m:
        return None
    try:
        return _shift(int(m[1]), int(m[2]), int(m[3]), days).strftime("%Y%m%d")
    except ValueError:
        return None


_DT: Final = re.compile(r"^\s*(\d{4})(\d{2})?(\d{2})?(\d{0,6}(?:\.\d{1,6})?)([+-]\d{4})?\s*$")


@lru_cache(maxsize=65536)
def shift_dt(value: str, days: int) -> str | None:
    """DICOM DT 'YYYY[MM[DD[HH[MM[SS[.F]]]]]][&ZZXX]' shifted, same precision."""
    m = _DT.match(value)
    if not m:
        return None
    y, mo, d, rest, tz = m[1], m[2], m[3], m[4] or "", m[5] or ""
    if rest and not d:
        return None
    try:
        new = _shift(int(y), int(mo or 1), int(d or 1), days)
    except ValueError:
        return None
    head = f"{new.year:04d}" + (f"{new.month:02d}" if mo else "") + (f"{new.day:02d}" if d else "")
    return head + rest + tz


_FHIR: Final = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(T.*)?$")


@lru_cache(maxsize=65536)
def shift_fhir(value: str, days: int) -> str | None:
    """FHIR date, dateTime or instant shifted; precision, time and time zone kept verbatim."""
    if (
        len(value) == 10
        and value[4] == "-"
        and value[7] == "-"
        and _ascii_digits(value[:4] + value[5:7] + value[8:])
    ):
        try:  # the commonest shape, a full date (as the walk asks for a dateTime's day), without the regex
            new = _shift(int(value[:4]), int(value[5:7]), int(value[8:]), days)
        except ValueError:
            return None
        return new.isoformat()  # YYYY-MM-DD, the year in four digits
    m = _FHIR.match(value)
    if not m:
        return None
    y, mo, d, rest = m[1], m[2], m[3], m[4] or ""
    try:
        new = _shift(int(y), int(mo or 1), int(d or 1), days)
    except ValueError:
        return None
    out = f"{new.year:04d}" + (f"-{new.month:02d}" if mo else "") + (f"-{new.day:02d}" if d else "")
    return out + rest


def shift_datetime(value: datetime | None, days: int) -> datetime | None:
    return None if value is None else value + timedelta(days=days)


def age_years(born: date, at: date) -> int:
    return at.year - born.year - ((at.month, at.day) < (born.month, born.day))


_AS: Final = re.compile(r"^\s*(\d{3})([DWMY])\s*$")


def group_as(value: str) -> str | None:
    """DICOM AS age ('nnnY') with ages over 89 years written as '090Y'."""
    m = _AS.match(value)
    if not m:
        return None
    n, unit = int(m[1]), m[2]
    if unit == "Y" and n > AGE_TOP:
        n = AGE_TOP + 1
    return f"{n:03d}{unit}"


# Dates inside free text (headers, comments, annotations): 2024-03-01, 2024.03.01, 2024/3/1,
# 01/10/1990 (day first, as in PhysioNet headers), 20240301, 01-MAR-2024.
_MONTHS: Final = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_TEXT_DATES: Final = [
    (re.compile(r"(?<!\d)(\d{4})([-./])(\d{1,2})\2(\d{1,2})(?!\d)"), "ymd"),
    (re.compile(r"(?<!\d)(\d{1,2})([-./])(\d{1,2})\2(\d{4})(?!\d)"), "dmy"),
    (re.compile(r"(?<!\d)(\d{1,2})([- ])(" + "|".join(_MONTHS) + r")\2(\d{4})(?!\d)", re.I), "dMy"),
    (re.compile(r"(?<!\d)((?:19|20)\d{2})(\d{2})(\d{2})(?!\d)"), "compact"),
    (re.compile(r"(?<![\d\w])(\d{1,2})-(" + "|".join(_MONTHS) + r")-(\d{2})(?![\d\w])", re.I), "dMyy"),
]


_TWO_DIGITS: Final = re.compile(r"\d\d")
_DATED_CHARS: Final = 512  # texts up to this long have their "holds a date" answer kept
_DATED: Final[dict[str, bool]] = {}


def _holds_text_date(text: str) -> bool:
    """Whether one of the free-text date patterns occurs in `text`. Short texts recur (code displays,
    descriptions) for every patient and most hold none: their answer is kept (bounded), so that such a
    text costs one lookup, not five searches, per patient and shift."""
    if len(text) > _DATED_CHARS:
        return any(rx.search(text) is not None for rx, _kind in _TEXT_DATES)
    dated = _DATED.get(text)
    if dated is None:
        dated = remember(_DATED, text, any(rx.search(text) is not None for rx, _kind in _TEXT_DATES))
    return dated


def clear_text_date_cache() -> None:
    """Forget which short texts hold a date (benchmarks and tests start cold)."""
    _DATED.clear()


def shift_text_dates(text: str, days: int) -> str:
    """Every recognisable calendar date inside `text` shifted by `days`, in its own format."""
    if not _TWO_DIGITS.search(text) or not _holds_text_date(text):  # most free text holds none
        return text

    def ymd(m: re.Match) -> str:
        try:
            new = _shift(int(m[1]), int(m[3]), int(m[4]), days)
        except ValueError:
            return m[0]
        w3, w4 = len(m[3]), len(m[4])
        return f"{new.year:04d}{m[2]}{new.month:0{w3}d}{m[2]}{new.day:0{w4}d}"

    def dmy(m: re.Match) -> str:
        try:
            new = _shift(int(m[4]), int(m[3]), int(m[1]), days)
        except ValueError:
            return m[0]
        return f"{new.day:0{len(m[1])}d}{m[2]}{new.month:0{len(m[3])}d}{m[2]}{new.year:04d}"

    def dmy_name(m: re.Match) -> str:
        try:
            new = _shift(int(m[4]), _MONTHS.index(m[3].upper()) + 1, int(m[1]), days)
        except ValueError:
            return m[0]
        mon = _MONTHS[new.month - 1]
        mon = mon if m[3].isupper() else mon.capitalize() if m[3][0].isupper() else mon.lower()
        return f"{new.day:0{len(m[1])}d}{m[2]}{mon}{m[2]}{new.year:04d}"

    def compact(m: re.Match) -> str:
        try:
            return _shift(int(m[1]), int(m[2]), int(m[3]), days).strftime("%Y%m%d")
        except ValueError:
            return m[0]

    def dmy_short(m: re.Match) -> str:  # 29-Sep-90: two-digit years read as 19xx above this year's
        yy = int(m[3])
        year = 2000 + yy if 2000 + yy <= date.today().year else 1900 + yy
        try:
            new = _shift(year, _MONTHS.index(m[2].upper()) + 1, int(m[1]), days)
        except ValueError:
            return m[0]
        mon = _MONTHS[new.month - 1]
        mon = mon if m[2].isupper() else mon.capitalize() if m[2][0].isupper() else mon.lower()
        return f"{new.day:0{len(m[1])}d}-{mon}-{new.year % 100:02d}"

    subs = {"ymd": ymd, "dmy": dmy, "dMy": dmy_name, "compact": compact, "dMyy": dmy_short}
    for rx, kind in _TEXT_DATES:
        text = rx.sub(subs[kind], text)
    return text
