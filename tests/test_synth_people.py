"""Synthetic people: determinism, realistic distributions, RRN/phone/address shapes, and the
discrepancies hospital_record introduces."""

from __future__ import annotations

import dataclasses
import random
import re
from collections import Counter

import pytest

from medhub.synth.people import Person, hospital_record, make_people, romanize

RRN = re.compile(r"^(\d{2})(\d{2})(\d{2})-([1-4])\d{6}$")
PHONE = re.compile(r"^010-\d{4}-\d{4}$")
SIDO = (
    "서울특별시",
    "부산광역시",
    "대구광역시",
    "인천광역시",
    "광주광역시",
    "대전광역시",
    "울산광역시",
    "세종특별자치시",
    "경기도",
    "강원특별자치도",
    "충청북도",
    "충청남도",
    "전북특별자치도",
    "전라남도",
    "경상북도",
    "경상남도",
    "제주특별자치도",
)


@pytest.fixture(scope="module")
def people() -> list[Person]:
    return make_people(20_000, seed=11)


def _check_digit(rrn: str) -> int:
    digits = [int(c) for c in rrn.replace("-", "")[:12]]
    total = sum(d * w for d, w in zip(digits, (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5), strict=True))
    return (11 - total % 11) % 10


def test_deterministic_for_a_seed() -> None:
    assert make_people(500, 3) == make_people(500, 3)
    assert make_people(500, 3) != make_people(500, 4)


def test_surname_frequencies_are_korean(people: list[Person]) -> None:
    share = {k: v / len(people) for k, v in Counter(p.family_name for p in people).items()}
    assert 0.19 < share["김"] < 0.245
    assert 0.125 < share["이"] < 0.17
    assert 0.07 < share["박"] < 0.10
    assert 0.035 < share["최"] < 0.06
    assert len(share) > 60  # a long tail of rarer surnames
    assert {p.family_name_roman for p in people if p.family_name == "이"} == {"Lee"}


def test_shapes_of_identity_fields(people: list[Person]) -> None:
    for p in people:
        m = RRN.match(p.rrn)
        assert m, p.rrn
        yy, mm, dd, s = m.groups()
        assert (yy, mm, dd) == (
            f"{p.birth_date.year % 100:02d}",
            f"{p.birth_date.month:02d}",
            f"{p.birth_date.day:02d}",
        )
        century_2000 = p.birth_date.year >= 2000
        assert int(s) == (1 if p.sex == "M" else 2) + (2 if century_2000 else 0)
        assert int(p.rrn[-1]) == _check_digit(p.rrn)
        assert PHONE.match(p.phone)
        assert re.fullmatch(r"\d{5}", p.postcode)
        assert p.address.split(" ")[0] in SIDO
        assert re.search(r"\d+(-\d+)?$", p.address)
        assert 1930 <= p.birth_date.year <= 2020
        assert p.sex in ("M", "F")
        assert all("가" <= ch <= "힣" for ch in p.given_name) and len(p.given_name) == 2
        assert p.given_name_roman == romanize(p.given_name)
    assert len({p.person_id for p in people}) == len(people)
    assert len({p.rrn for p in people}) == len(people)


def test_regions_and_ages_are_weighted(people: list[Person]) -> None:
    sido = Counter(p.address.split(" ")[0] for p in people)
    # Gyeonggi and Seoul are the most populous; Sejong the least
    assert sido.most_common(2)[0][0] == "경기도"
    assert sido["서울특별시"] > sido["부산광역시"] > sido["세종특별자치시"]
    decades = Counter(p.birth_date.year // 10 * 10 for p in people)
    assert decades[1970] > decades[1930]
    sexes = Counter(p.sex for p in people)
    assert abs(sexes["M"] - sexes["F"]) < 0.05 * len(people)


def test_romanization() -> None:
    assert romanize("민준") == "Minjun"
    assert romanize("서연") == "Seoyeon"
    assert romanize("지훈") == "Jihun"


def test_hospital_record_keeps_identity_without_errors(people: list[Person]) -> None:
    rng = random.Random(1)
    assert all(hospital_record(p, rng, error_rate=0.0) == p for p in people[:500])


def test_hospital_record_is_deterministic(people: list[Person]) -> None:
    a = [hospital_record(p, random.Random(5)) for p in people[:300]]
    b = [hospital_record(p, random.Random(5)) for p in people[:300]]
    assert a == b


def test_hospital_record_discrepancies(people: list[Person]) -> None:
    rng = random.Random(2)
    n = 10_000
    changed: Counter[str] = Counter()
    for p in people[:n]:
        q = hospital_record(p, rng, error_rate=0.15)
        assert q.person_id == p.person_id
        for f in dataclasses.fields(Person):
            if getattr(p, f.name) != getattr(q, f.name):
                changed[f.name] += 1
        if q.rrn and q.rrn != p.rrn:
            assert sum(a != b for a, b in zip(q.rrn, p.rrn, strict=True)) == 1  # one-digit typo
        if q.given_name != p.given_name:
            assert len(q.given_name) == len(p.given_name)
    share = {k: v / n for k, v in changed.items()}
    assert 0.10 < share["address"] < 0.20
    assert 0.10 < share["phone"] < 0.20
    assert 0.10 < share["birth_date"] < 0.20
    assert 0.05 < share["given_name"] < 0.12  # half of the name errors are in Hangul
    assert 0.10 < share["given_name_roman"] < 0.20
    assert 0.03 < share["rrn"] < 0.09  # usually right
    missing = sum(1 for p in people[:n] if hospital_record(p, random.Random(p.person_id)).rrn == "")
    assert 0.01 < missing / n < 0.06
    assert "family_name" not in share and "sex" not in share


def test_hospital_record_always_errs_at_rate_one(people: list[Person]) -> None:
    rng = random.Random(3)
    for p in people[:200]:
        q = hospital_record(p, rng, error_rate=1.0)
        assert q.phone != p.phone or q.address != p.address
        assert q.birth_date != p.birth_date
        assert (q.given_name, q.given_name_roman) != (p.given_name, p.given_name_roman)


def test_hospital_record_of_a_record(people: list[Person]) -> None:
    """Records of records (a missing RRN, a short name) still work."""
    rng = random.Random(4)
    for p in people[:300]:
        q = dataclasses.replace(p, rrn="")
        for _ in range(3):
            q = hospital_record(q, rng, error_rate=1.0)
        assert q.rrn == "" and q.person_id == p.person_id


def test_given_names_are_diverse_like_real_cohorts(people: list[Person]) -> None:
    # the most common name of a birth cohort is ~1-3% of its sex (Supreme Court birth registrations)
    by_cohort: dict[tuple[str, str], Counter] = {}
    for p in people:
        era = "old" if p.birth_date.year < 1965 else "mid" if p.birth_date.year < 1995 else "new"
        by_cohort.setdefault((p.sex, era), Counter())[p.given_name] += 1
    for cohort, names in by_cohort.items():
        total = sum(names.values())
        assert names.most_common(1)[0][1] / total < 0.045, cohort
        assert len(names) > 200, cohort  # a long tail, not a few dozen names
        assert all(g[0] != g[1] for g in names), cohort
