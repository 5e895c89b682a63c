"""Normalization of identity fields at the source, before anything is tokenized.

Pure functions from raw strings to canonical strings ("" when a value is absent or
unusable), so that two hospitals that wrote the same fact differently produce the same
canonical form: Hangul and romanized names (NFC, spaces and punctuation removed,
romanization variants folded, common romanized surnames mapped to Hangul), phone digits
(+82 and 0-prefixed forms agree), resident-registration-number digits, postcodes and dates.
"""

from __future__ import annotations

import datetime
import re
import unicodedata

from medhub.hangul import CHO as _CHO
from medhub.hangul import romanize

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_NON_DIGIT = re.compile(r"\D+")
_NON_ALPHA = re.compile(r"[^a-z]+")

# Romanized surnames as people actually write them -> Hangul (the common irregular ones
# first; the revised-romanization forms follow).
_SURNAME_ROMAN: dict[str, str] = {}
for _hangul, _forms in {
    "김": "kim gim ghim kym",
    "이": "lee yi rhee i ri rhie ree lie yee",
    "박": "park pak bak bahk parc",
    "최": "choi choe chwe choy",
    "정": "jung jeong chung joung cheong jeung",
    "강": "kang gang kahng",
    "조": "cho jo joe",
    "윤": "yoon yun youn",
    "장": "jang chang",
    "임": "lim im rim yim",
    "한": "han hahn",
    "오": "oh o",
    "서": "seo suh so",
    "신": "shin sin",
    "권": "kwon gwon kwun",
    "황": "hwang whang",
    "안": "ahn an",
    "송": "song",
    "전": "jeon jun chun cheon",
    "홍": "hong",
    "유": "yoo yu you",
    "류": "ryu ryoo rhyu lyu",
    "고": "ko go koh",
    "문": "moon mun",
    "양": "yang",
    "손": "son sohn",
    "배": "bae bai pae",
    "백": "baek paik baik paek",
    "허": "heo huh her hur",
    "노": "noh no roh",
    "남": "nam",
    "심": "shim sim",
    "하": "ha hah",
    "곽": "kwak gwak",
    "성": "sung seong",
    "차": "cha",
    "주": "joo ju chu choo",
    "우": "woo u",
    "구": "koo gu ku",
    "민": "min",
    "나": "na ra",
    "진": "jin chin",
    "지": "ji chi",
    "엄": "eom um uhm",
    "채": "chae",
    "원": "won",
    "천": "cheon",
    "방": "bang",
    "공": "kong gong",
    "현": "hyun hyeon",
    "함": "ham hahm",
    "변": "byun byeon",
    "염": "yeom yum",
    "여": "yeo yuh",
    "추": "choo chu",
    "도": "do doh",
    "소": "so",
    "석": "seok suk",
    "선": "sun seon",
    "설": "seol sul",
    "마": "ma",
    "길": "gil kil",
    "연": "yeon yun",
    "위": "wi wee",
    "표": "pyo",
    "명": "myung myeong",
    "기": "ki gi",
    "반": "ban",
    "왕": "wang",
    "금": "geum keum",
    "옥": "ok",
    "육": "yook yuk",
    "인": "in",
    "맹": "maeng",
    "제": "je",
    "모": "mo",
    "탁": "tak",
    "국": "kook guk",
    "황보": "hwangbo",
    "남궁": "namgung",
    "제갈": "jegal",
    "선우": "sunwoo seonu",
}.items():
    for _form in _forms.split():
        _SURNAME_ROMAN.setdefault(_form, _hangul)

# Revised Romanization tables, used to bring Hangul and romanized given names to one form.
# Spelling variants folded to one form (applied in order to lower-case letters).
_FOLDS = (
    ("yeong", "yong"),
    ("young", "yong"),
    ("yeo", "yo"),
    ("eo", "o"),
    ("oo", "u"),
    ("eu", "u"),
    ("ee", "i"),
    ("ea", "ae"),
    ("ae", "e"),
    ("wo", "o"),
    ("sh", "s"),
    ("ch", "j"),
    ("kk", "k"),
    ("tt", "t"),
    ("pp", "p"),
    ("ss", "s"),
    ("jj", "j"),
    ("k", "g"),
    ("t", "d"),
    ("p", "b"),
    ("r", "l"),
    ("gy", "g"),
    ("hy", "h"),
)


def text(value: object) -> str:
    """NFC, lower case, every space and punctuation mark removed."""
    if value is None:
        return ""
    s = unicodedata.normalize("NFC", str(value)).strip()
    if s.lower() in ("", "nan", "none", "null", "<na>"):
        return ""
    return _NON_WORD.sub("", s).lower()


def is_hangul(s: str) -> bool:
    return bool(s) and all("가" <= ch <= "힣" for ch in s)


def fold_roman(s: str) -> str:
    """Fold romanization variants (Young/Yeong, Jung/Jeong, Soo/Su, ...) to one spelling."""
    s = _NON_ALPHA.sub("", s.lower())
    for a, b in _FOLDS:
        s = s.replace(a, b)
    return s


def surname(hangul: object = None, roman: object = None) -> str:
    """Canonical surname: Hangul where known (from the Hangul field or a romanized form)."""
    h = text(hangul)
    if h and is_hangul(h):
        return h
    r = _NON_ALPHA.sub("", text(roman) or h)
    if not r:
        return ""
    return _SURNAME_ROMAN.get(r, "r:" + fold_roman(r))


def given_name(hangul: object = None, roman: object = None) -> str:
    """Canonical given name: the folded romanization of the Hangul name (or of the romanized one)."""
    h = text(hangul)
    if h and is_hangul(h):
        return fold_roman(romanize(h))
    return fold_roman(text(roman) or h)


def latin_only(canonical_surname: str) -> str:
    """The folded Latin spelling of a surname not known as Korean ("" for Hangul or a known Korean one)."""
    return canonical_surname[2:] if canonical_surname.startswith("r:") else ""


def latin_only_pair(hangul: object = None, roman: object = None) -> bool:
    """True where a name is known only in Latin letters (no Hangul form)."""
    h = text(hangul)
    return not (h and is_hangul(h)) and bool(text(roman) or h)


def given_skeleton(hangul: object = None, roman: object = None) -> str:
    """A coarse key that survives vowel slips, final-consonant slips and swapped syllables.

    For Hangul: the sorted initial consonants (silent ㅇ dropped). For romanized names: the
    sorted set of consonants other than n, m, g, l, y, w, h (the ones clerks drop or swap).
    """
    h = text(hangul)
    if h and is_hangul(h):
        initials = sorted(_CHO[(ord(ch) - 0xAC00) // 588] for ch in h)
        return "h:" + "".join(c for c in initials if c)
    r = fold_roman(text(roman) or h)
    if not r:
        return ""
    return "r:" + "".join(sorted(set(r) - set("aeiounmglywh")))


def given_near_keys(hangul: object = None) -> tuple[str, str, str]:
    """Keys a Hangul given name shares with its one-slip variants: each of its first two syllables
    cut to its initial consonant (a vowel or final consonant slipped there), and its syllables in
    sorted order (two syllables transposed). ("", "", "") for other names."""
    h = text(hangul)
    if len(h) < 2 or not is_hangul(h):
        return "", "", ""

    def initial(ch: str) -> str:
        return f"<{(ord(ch) - 0xAC00) // 588}>"

    return initial(h[0]) + h[1:], h[0] + initial(h[1]) + h[2:], "".join(sorted(h))


def sex(value: object) -> str:
    s = text(value)
    if s in ("m", "male", "남", "남자", "1", "3"):
        return "m"
    if s in ("f", "female", "여", "여자", "2", "4"):
        return "f"
    return ""


def digits(value: object) -> str:
    return _NON_DIGIT.sub("", "" if value is None else str(value))


def phone(value: object) -> str:
    """Phone digits in national form: +82 10-1234-5678 and 010-1234-5678 agree. Fewer than 7 digits -> ""."""
    d = digits(value)
    if d.startswith("82") and len(d) >= 11:
        d = "0" + d[2:]
    return d if len(d) >= 7 else ""


def rrn(value: object) -> str:
    """RRN digits (13 for a Korean resident registration number; other national ids kept as digits)."""
    d = digits(value)
    return d if len(d) >= 6 else ""


def postcode(value: object) -> str:
    return digits(value) or text(value)


def address(value: object) -> str:
    return text(value)


_HOUSE = re.compile(r"(?<![\w-])(\d{1,5}(?:-\d{1,4})?)(?![\w-])")


def house_number(value: object) -> str:
    """The first free-standing building number of an address ("152", "153-13"), or ""."""
    if value is None:
        return ""
    m = _HOUSE.search(unicodedata.normalize("NFC", str(value)))
    return m.group(1) if m else ""


def street(value: object) -> str:
    """The address without its first building number (the whole address if it has none), or ""."""
    if value is None:
        return ""
    s = unicodedata.normalize("NFC", str(value))
    m = _HOUSE.search(s)
    return text(s[: m.start()] + " " + s[m.end() :]) if m else text(s)


def birth_date(value: object) -> str:
    """ISO date (YYYY-MM-DD) from a date, datetime, "YYYY-MM-DD", "YYYY/MM/DD", "YYYY.MM.DD" or "YYYYMMDD"."""
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        value = value.date()
    if isinstance(value, datetime.date):
        return value.isoformat()
    s = str(value).strip()
    d = digits(s)
    if len(d) == 8 and (len(s) == 8 or not s[:8].isdigit()):
        y, m, dd = int(d[:4]), int(d[4:6]), int(d[6:])
    else:
        parts = [p for p in re.split(r"\D+", s) if p]
        if len(parts) < 3 or len(parts[0]) != 4:
            return ""
        y, m, dd = int(parts[0]), int(parts[1]), int(parts[2])
    try:
        return datetime.date(y, m, dd).isoformat()
    except ValueError:
        return f"{y:04d}-{m:02d}-{dd:02d}" if 1 <= m <= 12 and 1 <= dd <= 31 and y > 1800 else ""


def next_day(iso: str) -> str:
    """The day after an ISO date ("" for an absent or impossible date)."""
    try:
        return (datetime.date.fromisoformat(iso) + datetime.timedelta(days=1)).isoformat() if iso else ""
    except ValueError:
        return ""


def date_unordered(iso: str) -> str:
    """Year plus the unordered pair (month, day): a swapped day and month agree."""
    if not iso:
        return ""
    y, m, d = iso.split("-")
    return f"{y}:{min(m, d)}:{max(m, d)}"


def name_fold(canonical: str) -> str:
    """One Latin spelling for a canonical surname or given name, so that the two can be compared."""
    if canonical.startswith("r:"):
        return canonical[2:]
    if is_hangul(canonical):
        return fold_roman(romanize(canonical))
    return canonical
