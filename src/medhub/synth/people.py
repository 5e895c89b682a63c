"""Korean-style synthetic people, and the same person as another hospital recorded them.

Owns the identity model of the synthetic hospitals: `make_people(n, seed)` draws a
population with realistic surname frequencies, given names by sex and birth era (see
below), birth dates 1930-2020, fake resident-registration-number-SHAPED ids, mobile
numbers and road addresses weighted by regional population. `hospital_record(person,
rng)` returns the same person with the discrepancies real registration data has
(typos, a move, a new phone, a swapped day/month, a mistyped or missing RRN).

Given names: real Korean given names are diverse. The most common name of a birth year is
about 1-3% of that year's births of its sex: in 2008 민준 was given to 2,641 boys and 서연 to
3,270 girls (Supreme Court of Korea birth-registration statistics, reported by Yonhap News,
25 January 2009; Statistics Korea counted 465,892 births in 2008, so ~1.1% and ~1.4%), in
1975 미영 to 9,129 girls (~2% of ~420,000) and in 1945 영자 to 9,298. So each era's list
of popular names below is the head only (HEAD_SHARE of the era's people, weights falling
as 1/sqrt(rank): the top name ~1.4% for the 1995+ cohorts, ~1.8% for 1965-94, ~2.8%
before), and everyone else gets a two-syllable name composed from the syllables of that
era's names, in either place, never doubled (400-1,200 distinct names per sex and era). Until 2026-12-03 every
person drew one of ~35 names per sex and era uniformly (~3% each, the whole cohort in 35
names), which made namesakes born the same day about ten times too common.

Pure functions, no I/O; fast enough for 200k people in a few seconds; deterministic for
a seed. Every identity here is fake; RRN-shaped ids carry a valid-looking check digit
but identify no one.
"""

from __future__ import annotations

import bisect
import datetime
import itertools
import random
from dataclasses import dataclass, replace

from medhub import hangul


@dataclass(frozen=True)
class Person:
    person_id: str  # true identity, for answer keys only
    family_name: str  # Hangul, e.g. "김"
    given_name: str  # Hangul, e.g. "민준"
    family_name_roman: str  # e.g. "Kim"
    given_name_roman: str  # e.g. "Minjun"
    sex: str  # "M" | "F"
    birth_date: datetime.date
    rrn: str  # "YYMMDD-SNNNNNN", fake, resident-registration-number shaped
    phone: str  # "010-NNNN-NNNN"
    address: str  # "서울특별시 강남구 테헤란로 152"
    postcode: str  # 5 digits

    @property
    def full_name(self) -> str:
        """The name as Koreans write it: family name then given name, no space."""
        return self.family_name + self.given_name

    @property
    def dicom_name(self) -> str:
        """Romanized DICOM person name, e.g. "KIM^MINJUN"."""
        return f"{self.family_name_roman.upper()}^{self.given_name_roman.upper()}"


# --- surnames: share of the population (2015 census, per cent) and usual romanization ---------
_SURNAMES: tuple[tuple[str, str, float], ...] = (
    ("김", "Kim", 21.5),
    ("이", "Lee", 14.7),
    ("박", "Park", 8.4),
    ("최", "Choi", 4.7),
    ("정", "Jung", 4.3),
    ("강", "Kang", 2.4),
    ("조", "Cho", 2.1),
    ("윤", "Yoon", 2.0),
    ("장", "Jang", 2.0),
    ("임", "Lim", 1.7),
    ("한", "Han", 1.5),
    ("오", "Oh", 1.5),
    ("서", "Seo", 1.5),
    ("신", "Shin", 1.4),
    ("권", "Kwon", 1.4),
    ("황", "Hwang", 1.4),
    ("안", "Ahn", 1.4),
    ("송", "Song", 1.3),
    ("전", "Jeon", 1.1),
    ("홍", "Hong", 1.1),
    ("유", "Yoo", 1.9),
    ("고", "Ko", 0.9),
    ("문", "Moon", 0.9),
    ("양", "Yang", 0.8),
    ("손", "Son", 0.9),
    ("배", "Bae", 0.8),
    ("백", "Baek", 0.7),
    ("허", "Heo", 0.6),
    ("노", "Noh", 0.6),
    ("남", "Nam", 0.5),
    ("심", "Shim", 0.5),
    ("하", "Ha", 0.5),
    ("곽", "Kwak", 0.4),
    ("성", "Sung", 0.4),
    ("차", "Cha", 0.4),
    ("주", "Joo", 0.4),
    ("우", "Woo", 0.4),
    ("구", "Koo", 0.4),
    ("민", "Min", 0.3),
    ("류", "Ryu", 0.3),
    ("나", "Na", 0.3),
    ("진", "Jin", 0.3),
    ("지", "Ji", 0.3),
    ("엄", "Eom", 0.3),
    ("채", "Chae", 0.3),
    ("원", "Won", 0.3),
    ("천", "Cheon", 0.2),
    ("방", "Bang", 0.2),
    ("공", "Kong", 0.2),
    ("현", "Hyun", 0.2),
    ("함", "Ham", 0.2),
    ("변", "Byun", 0.2),
    ("염", "Yeom", 0.1),
    ("여", "Yeo", 0.1),
    ("추", "Choo", 0.1),
    ("도", "Do", 0.1),
    ("소", "So", 0.1),
    ("석", "Seok", 0.1),
    ("선", "Sun", 0.1),
    ("설", "Seol", 0.1),
    ("마", "Ma", 0.1),
    ("길", "Gil", 0.1),
    ("연", "Yeon", 0.1),
    ("위", "Wi", 0.1),
    ("표", "Pyo", 0.1),
    ("명", "Myung", 0.1),
    ("기", "Ki", 0.1),
    ("반", "Ban", 0.1),
    ("왕", "Wang", 0.1),
    ("금", "Geum", 0.1),
    ("옥", "Ok", 0.1),
    ("육", "Yook", 0.1),
    ("인", "In", 0.1),
    ("맹", "Maeng", 0.05),
    ("제", "Je", 0.05),
    ("모", "Mo", 0.05),
    ("탁", "Tak", 0.05),
    ("국", "Kook", 0.05),
    ("어", "Eo", 0.03),
    ("은", "Eun", 0.03),
    ("편", "Pyeon", 0.03),
    ("용", "Yong", 0.03),
    ("예", "Ye", 0.03),
    ("경", "Kyung", 0.03),
    ("봉", "Bong", 0.03),
    ("사", "Sa", 0.02),
    ("부", "Boo", 0.02),
    ("황보", "Hwangbo", 0.02),
    ("남궁", "Namgung", 0.02),
    ("제갈", "Jegal", 0.01),
    ("선우", "Sunwoo", 0.01),
)


# --- given names by sex and era (popular names of their birth cohorts) -------------------------
def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_GIVEN_OLD_M = _words(
    "영수 영호 영철 성수 성호 상철 정호 정수 동훈 성진 상훈 광수 철수 종수 병철 용호 경수 성철 "
    "영식 재호 정남 춘식 만수 기순 병호 영길 순철 재석 태식 영근 종호 명수 정식 상호 광호 용수"
)
_GIVEN_MID_M = _words(
    "성민 성훈 상현 재현 재훈 준호 종현 민수 진호 동현 지훈 현우 정민 준영 승현 성현 민호 "
    "태현 상우 영민 재원 민석 현석 동욱 진우 경민 승민 준석 용준 대현 석진 형준 지원 우진"
)
_GIVEN_NEW_M = _words(
    "민준 서준 도윤 예준 시우 하준 주원 지호 지후 준서 준우 현우 도현 건우 우진 선우 서진 "
    "민재 현준 연우 유준 정우 승우 시윤 준혁 은우 지환 유찬 윤우 시후 수호 재윤 시현 태윤 "
    "민우 한결 이준 은호 로운 지안"
)
_GIVEN_OLD_F = _words(
    "영숙 정숙 영희 순자 명숙 경숙 영자 미숙 정희 춘자 옥순 말순 순이 정자 영순 순옥 명자 "
    "숙자 현숙 영애 정순 옥자 순희 금순 복순 점순 경자 혜숙 인숙 선자"
)
_GIVEN_MID_F = _words(
    "미경 미영 은영 은정 현정 지영 수진 지현 혜진 은주 미정 선영 정은 유진 민지 수연 지은 "
    "혜원 소연 예진 나연 미선 경희 은희 선희 현주 윤정 지혜 은경 혜영 주희 수정 민정 아름"
)
_GIVEN_NEW_F = _words(
    "서연 서윤 지우 서현 민서 하은 하윤 윤서 지유 지민 채원 수아 지아 지윤 은서 다은 예은 "
    "수빈 소율 예린 하린 시은 유나 가은 채은 다인 소윤 아윤 서아 연우 예서 지안 하율 나은"
)


# share of an era's people named from its list of popular names (the rest: composed names)
HEAD_SHARE = {"old": 0.28, "mid": 0.18, "new": 0.14}


@dataclass(frozen=True)
class _NameModel:
    head: tuple[str, ...]
    head_cum: list[float]  # 1/sqrt(rank) weights, cumulative
    head_share: float
    syllables: tuple[str, ...]  # the syllables of the era's names (either place: 민준 and 준민)


def _name_model(pool: tuple[str, ...], head_share: float) -> _NameModel:
    return _NameModel(
        head=pool,
        head_cum=list(itertools.accumulate(1 / (r + 1) ** 0.5 for r in range(len(pool)))),
        head_share=head_share,
        syllables=tuple(sorted({ch for g in pool for ch in g})),
    )


_POPULAR = {
    ("M", "old"): _GIVEN_OLD_M,  # born before 1965
    ("M", "mid"): _GIVEN_MID_M,  # 1965-1994
    ("M", "new"): _GIVEN_NEW_M,  # 1995 on
    ("F", "old"): _GIVEN_OLD_F,
    ("F", "mid"): _GIVEN_MID_F,
    ("F", "new"): _GIVEN_NEW_F,
}
_NAME_MODELS = {(sex, era): _name_model(pool, HEAD_SHARE[era]) for (sex, era), pool in _POPULAR.items()}


def _given_name(sex: str, year: int, rng: random.Random) -> str:
    """A given name for someone of this sex born this year (see the module docstring)."""
    model = _NAME_MODELS[(sex, "old" if year < 1965 else "mid" if year < 1995 else "new")]
    if rng.random() < model.head_share:
        return model.head[_pick(model.head_cum, rng)]
    syl = model.syllables
    i = _below(rng, len(syl))
    j = _below(rng, len(syl) - 1)  # another syllable: doubled ones (영영) are rare in real names
    return syl[i] + syl[j + (j >= i)]


# --- Revised Romanization, syllable by syllable (as given names are usually written) ----------
_decompose = hangul.decompose
_compose = hangul.compose


def romanize(name: str) -> str:
    """Revised Romanization of a Hangul given name, syllable by syllable, capitalized ("Minjun")."""
    return hangul.romanize(name).capitalize()


_ROMAN_GIVEN_CACHE: dict[str, str] = {}


def _roman_given(hangul: str) -> str:
    r = _ROMAN_GIVEN_CACHE.get(hangul)
    if r is None:
        r = _ROMAN_GIVEN_CACHE[hangul] = romanize(hangul)
    return r


# --- regions: population (10k, 2023), postcode prefixes, districts with a few real roads -----
_Region = tuple[str, float, tuple[tuple[str, str, tuple[str, ...]], ...]]
_REGIONS: tuple[_Region, ...] = (
    (
        "서울특별시",
        940,
        (
            ("강남구", "061", ("테헤란로", "강남대로", "도산대로", "역삼로", "선릉로")),
            ("송파구", "055", ("올림픽로", "송파대로", "백제고분로", "오금로")),
            ("노원구", "018", ("동일로", "노원로", "상계로", "한글비석로")),
            ("마포구", "040", ("월드컵로", "마포대로", "양화로", "독막로")),
            ("관악구", "088", ("관악로", "남부순환로", "신림로", "봉천로")),
            ("강서구", "077", ("공항대로", "화곡로", "강서로", "양천로")),
            ("은평구", "034", ("통일로", "연서로", "은평로", "진관2로")),
            ("종로구", "031", ("종로", "세종대로", "율곡로", "창경궁로")),
        ),
    ),
    (
        "부산광역시",
        330,
        (
            ("해운대구", "480", ("해운대로", "센텀중앙로", "좌동로", "달맞이길")),
            ("부산진구", "472", ("중앙대로", "서면로", "가야대로", "전포대로")),
            ("사하구", "493", ("낙동대로", "다대로", "하신중앙로")),
            ("동래구", "478", ("충렬대로", "명륜로", "온천장로")),
        ),
    ),
    (
        "대구광역시",
        237,
        (
            ("수성구", "421", ("달구벌대로", "동대구로", "수성로", "범어로")),
            ("달서구", "426", ("월배로", "성서공단로", "달서대로")),
            ("북구", "415", ("칠곡중앙대로", "침산로", "대학로")),
        ),
    ),
    (
        "인천광역시",
        300,
        (
            ("남동구", "215", ("인주대로", "구월로", "예술로", "논현로")),
            ("부평구", "213", ("부평대로", "경원대로", "마장로")),
            ("연수구", "219", ("컨벤시아대로", "송도과학로", "청량로")),
        ),
    ),
    (
        "광주광역시",
        142,
        (
            ("북구", "611", ("설죽로", "용봉로", "하서로")),
            ("서구", "619", ("상무대로", "시청로", "운천로")),
        ),
    ),
    (
        "대전광역시",
        144,
        (
            ("유성구", "341", ("대학로", "유성대로", "계룡로")),
            ("서구", "352", ("둔산로", "한밭대로", "계룡로")),
        ),
    ),
    (
        "울산광역시",
        110,
        (
            ("남구", "446", ("삼산로", "번영로", "문수로")),
            ("중구", "444", ("종가로", "학성로", "태화로")),
        ),
    ),
    ("세종특별자치시", 39, (("", "301", ("한누리대로", "도움로", "갈매로", "보듬로")),)),
    (
        "경기도",
        1363,
        (
            ("수원시 영통구", "166", ("광교중앙로", "봉영로", "영통로", "매영로")),
            ("성남시 분당구", "135", ("판교역로", "분당로", "황새울로", "정자일로")),
            ("고양시 일산동구", "104", ("중앙로", "정발산로", "일산로")),
            ("용인시 수지구", "168", ("포은대로", "수지로", "신봉2로")),
            ("부천시", "145", ("길주로", "부일로", "소사로")),
            ("화성시", "183", ("동탄대로", "병점중앙로", "향남로")),
            ("안산시 단원구", "153", ("중앙대로", "광덕대로", "고잔로")),
            ("남양주시", "121", ("경춘로", "다산중앙로", "진접로")),
        ),
    ),
    (
        "강원특별자치도",
        153,
        (
            ("춘천시", "243", ("중앙로", "후석로", "퇴계로")),
            ("원주시", "264", ("원일로", "단구로", "북원로")),
            ("강릉시", "254", ("경강로", "율곡로", "하슬라로")),
        ),
    ),
    (
        "충청북도",
        159,
        (
            ("청주시 흥덕구", "285", ("가경로", "직지대로", "복대로")),
            ("충주시", "274", ("충원대로", "국원대로", "중앙로")),
        ),
    ),
    (
        "충청남도",
        213,
        (
            ("천안시 서북구", "311", ("불당대로", "번영로", "쌍용대로")),
            ("아산시", "315", ("번영로", "온천대로", "배방로")),
            ("공주시", "325", ("웅진로", "봉황로", "금벽로")),
        ),
    ),
    (
        "전북특별자치도",
        175,
        (
            ("전주시 완산구", "549", ("팔달로", "효자로", "홍산로")),
            ("익산시", "545", ("인북로", "무왕로", "익산대로")),
            ("군산시", "541", ("대학로", "수송로", "조촌로")),
        ),
    ),
    (
        "전라남도",
        181,
        (
            ("순천시", "579", ("중앙로", "연향번영길", "장명로")),
            ("여수시", "596", ("시청로", "여서로", "좌수영로")),
            ("목포시", "586", ("영산로", "백년대로", "삼향천로")),
        ),
    ),
    (
        "경상북도",
        255,
        (
            ("포항시 남구", "377", ("포스코대로", "대송로", "희망대로")),
            ("구미시", "392", ("송정대로", "박정희로", "구미중앙로")),
            ("경주시", "381", ("태종로", "원화로", "알천북로")),
        ),
    ),
    (
        "경상남도",
        325,
        (
            ("창원시 성산구", "515", ("중앙대로", "원이대로", "창이대로")),
            ("김해시", "509", ("김해대로", "가야로", "분성로")),
            ("진주시", "527", ("진주대로", "동진로", "남강로")),
        ),
    ),
    (
        "제주특별자치도",
        67,
        (
            ("제주시", "632", ("연북로", "노형로", "중앙로", "연삼로")),
            ("서귀포시", "635", ("중정로", "일주동로", "신중로")),
        ),
    ),
)

# one entry per district, weighted by the region's population shared among its districts
_DISTRICTS: list[tuple[str, str, tuple[str, ...]]] = []
_DISTRICT_WEIGHTS: list[float] = []
for _sido, _pop, _gus in _REGIONS:
    for _gu, _prefix, _roads in _gus:
        _DISTRICTS.append((f"{_sido} {_gu}" if _gu else _sido, _prefix, _roads))
        _DISTRICT_WEIGHTS.append(_pop / len(_gus))
_DISTRICT_CUM = list(itertools.accumulate(_DISTRICT_WEIGHTS))
_SURNAME_CUM = list(itertools.accumulate(w for _, _, w in _SURNAMES))

# birth years 1930-2020 weighted like a population (fewer of the very old; a thinner youngest cohort)
_YEARS = list(range(1930, 2021))
_YEAR_CUM = list(
    itertools.accumulate(
        0.15 + 0.85 * min(1.0, max(0.0, (y - 1930) / 35)) - (0.35 * max(0.0, (y - 2000) / 20)) for y in _YEARS
    )
)


def _pick(cum: list[float], rng: random.Random) -> int:
    return bisect.bisect_right(cum, rng.random() * cum[-1])


def _below(rng: random.Random, n: int) -> int:
    """A uniform integer in [0, n): faster than randrange, and as deterministic."""
    return int(rng.random() * n)


def _rrn_check_digit(first12: str) -> str:
    d = [c - 48 for c in first12.encode()]
    total = (
        2 * d[0]
        + 3 * d[1]
        + 4 * d[2]
        + 5 * d[3]
        + 6 * d[4]
        + 7 * d[5]
        + 8 * d[6]
        + 9 * d[7]
        + 2 * d[8]
        + 3 * d[9]
        + 4 * d[10]
        + 5 * d[11]
    )
    return str((11 - total % 11) % 10)


def make_rrn(birth_date: datetime.date, sex: str, rng: random.Random) -> str:
    """A fake RRN-shaped string: YYMMDD-S + 4 region digits + a serial digit + a check digit."""
    s = (1 if sex == "M" else 2) + (2 if birth_date.year >= 2000 else 0)
    yymmdd = f"{birth_date.year % 100:02d}{birth_date.month:02d}{birth_date.day:02d}"
    body = f"{yymmdd}{s}{_below(rng, 9600):04d}{_below(rng, 10)}"
    return f"{body[:6]}-{body[6:]}{_rrn_check_digit(body)}"


def make_phone(rng: random.Random) -> str:
    return f"010-{2000 + _below(rng, 8000):04d}-{_below(rng, 10000):04d}"


def make_address(rng: random.Random) -> tuple[str, str]:
    """A road address in Hangul and its 5-digit postcode, the district weighted by population."""
    district, prefix, roads = _DISTRICTS[_pick(_DISTRICT_CUM, rng)]
    road = roads[_below(rng, len(roads))]
    number = 1 + _below(rng, 399)
    number_s = f"{number}-{1 + _below(rng, 29)}" if rng.random() < 0.25 else str(number)
    return f"{district} {road} {number_s}", f"{prefix}{_below(rng, 100):02d}"


def make_people(n: int, seed: int) -> list[Person]:
    """`n` distinct fake people, deterministic for `seed`. RRNs are unique within the list."""
    rng = random.Random(seed)
    seen_rrn: set[str] = set()
    people: list[Person] = []
    jan1 = {y: datetime.date(y, 1, 1).toordinal() for y in _YEARS}
    days_in_year = {y: datetime.date(y + 1, 1, 1).toordinal() - jan1[y] for y in _YEARS}
    for i in range(n):
        family, family_roman, _ = _SURNAMES[_pick(_SURNAME_CUM, rng)]
        sex = "M" if rng.random() < 0.495 else "F"
        year = _YEARS[_pick(_YEAR_CUM, rng)]
        birth = datetime.date.fromordinal(jan1[year] + _below(rng, days_in_year[year]))
        given = _given_name(sex, year, rng)
        rrn = make_rrn(birth, sex, rng)
        while rrn in seen_rrn:
            rrn = make_rrn(birth, sex, rng)
        seen_rrn.add(rrn)
        address, postcode = make_address(rng)
        people.append(
            Person(
                person_id=f"P{seed}-{i:07d}",
                family_name=family,
                given_name=given,
                family_name_roman=family_roman,
                given_name_roman=_roman_given(given),
                sex=sex,
                birth_date=birth,
                rrn=rrn,
                phone=make_phone(rng),
                address=address,
                postcode=postcode,
            )
        )
    return people


# --- discrepancies ------------------------------------------------------------------------------
# vowels a clerk confuses (ㅓ/ㅗ, ㅐ/ㅔ, ㅕ/ㅛ, ㅜ/ㅡ, ㅚ/ㅙ/ㅞ) and finals (ㄴ/ㅇ/ㅁ, none)
_VOWEL_SWAP = {4: 8, 8: 4, 1: 5, 5: 1, 6: 12, 12: 6, 13: 18, 18: 13, 11: 10, 10: 15, 15: 11, 20: 19, 19: 20}
_FINAL_SWAP = {4: 21, 21: 4, 16: 4, 0: 4}
# common alternative spellings of romanized syllables
_ROMAN_VARIANTS = (
    ("eo", "u"),
    ("yeong", "young"),
    ("jeong", "jung"),
    ("hyeon", "hyun"),
    ("seok", "suk"),
    ("u", "oo"),
    ("i", "ee"),
    ("eun", "un"),
    ("gyeong", "kyung"),
    ("ae", "ea"),
    ("sh", "s"),
)


def _hangul_typo(given: str, rng: random.Random) -> str:
    """The given name with two syllables transposed, or one vowel or final consonant confused."""
    if len(given) >= 2 and given[0] != given[1] and rng.random() < 0.3:
        return given[1] + given[0] + given[2:]  # syllables transposed
    idx = rng.randrange(len(given))
    ch = given[idx]
    if not "가" <= ch <= "힣":
        return given
    cho, jung, jong = _decompose(ch)
    if jung in _VOWEL_SWAP and (jong not in _FINAL_SWAP or rng.random() < 0.5):
        jung = _VOWEL_SWAP[jung]
    elif jong in _FINAL_SWAP:
        jong = _FINAL_SWAP[jong]
    else:
        jong = 0 if jong else 4
    return given[:idx] + _compose(cho, jung, jong) + given[idx + 1 :]


def _roman_typo_once(roman: str, rng: random.Random) -> str:
    r = rng.random()
    low = roman.lower()
    if r < 0.4:
        options = [(a, b) for a, b in _ROMAN_VARIANTS if a in low]
        if options:
            a, b = options[rng.randrange(len(options))]
            return low.replace(a, b, 1).capitalize()
    if r < 0.6 and len(roman) > 3:
        # hyphen or space between syllables, as some clerks type it
        from_hangul = roman
        cut = max(1, len(from_hangul) // 2)
        return f"{from_hangul[:cut]}-{from_hangul[cut:].lower()}"
    if len(low) >= 3:
        i = rng.randrange(1, len(low) - 1)
        if rng.random() < 0.5:  # adjacent letters transposed
            low = low[:i] + low[i + 1] + low[i] + low[i + 2 :]
        else:  # one letter mistyped
            letter = "aeiounghkjmsy"[rng.randrange(13)]
            low = low[:i] + letter + low[i + 1 :]
    return low.capitalize()


def _roman_typo(roman: str, rng: random.Random) -> str:
    """A different spelling of the romanized name (a variant, a hyphen, a transposition, a slip)."""
    for _ in range(8):
        out = _roman_typo_once(roman, rng)
        if out != roman:
            return out
    return f"{roman[:1]}-{roman[1:].lower()}"


def _digit_typo(rrn: str, rng: random.Random) -> str:
    positions = [i for i, c in enumerate(rrn) if c.isdigit()]
    i = positions[rng.randrange(len(positions))]
    new = str((int(rrn[i]) + rng.randrange(1, 10)) % 10)
    return rrn[:i] + new + rrn[i + 1 :]


def hospital_record(person: Person, rng: random.Random, error_rate: float = 0.15) -> Person:
    """The same person as another hospital recorded them.

    Each discrepancy happens with probability ~`error_rate`, independently: a typo or
    transposition in the given name (Hangul syllable, the romanization following it,
    or the romanization alone); a move (new address and postcode); a new phone; a
    swapped birth day/month (a day or digit slip when the swap would be no date). The
    RRN is usually right but with probability error_rate/5 has a one-digit typo and
    with probability error_rate/5 is missing (""). `person_id` is kept (answer key).
    """
    changes: dict[str, object] = {}
    if rng.random() < error_rate:
        if rng.random() < 0.5:
            given = _hangul_typo(person.given_name, rng)
            changes["given_name"] = given
            keep_roman = rng.random() >= 0.7
            changes["given_name_roman"] = person.given_name_roman if keep_roman else _roman_given(given)
        else:
            changes["given_name_roman"] = _roman_typo(person.given_name_roman, rng)
    if rng.random() < error_rate:
        address, postcode = make_address(rng)
        changes["address"], changes["postcode"] = address, postcode
    if rng.random() < error_rate:
        changes["phone"] = make_phone(rng)
    if rng.random() < error_rate:
        b = person.birth_date
        if b.day <= 12 and b.day != b.month:
            changes["birth_date"] = b.replace(month=b.day, day=b.month)
        else:
            delta = 1 if b.day < 28 else -1
            changes["birth_date"] = b.replace(day=b.day + delta)
    r = rng.random()
    if r < error_rate / 5 and person.rrn:
        changes["rrn"] = _digit_typo(person.rrn, rng)
    elif r < 2 * error_rate / 5:
        changes["rrn"] = ""
    return replace(person, **changes) if changes else person
