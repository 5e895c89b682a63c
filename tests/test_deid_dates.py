"""Date shifting and age grouping: precision, time zones and intervals kept, bad values never passed raw."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from medhub.privacy.deid.dates import group_as, shift_da, shift_dt, shift_fhir, shift_text_dates

DAYS = st.integers(min_value=-3650, max_value=-1)
DATES = st.dates(min_value=date(1900, 1, 1), max_value=date(2090, 12, 31))


@given(DATES, DAYS)
def test_da_shift_moves_by_exactly_the_shift(d: date, days: int) -> None:
    out = shift_da(d.strftime("%Y%m%d"), days)
    assert out is not None and datetime.strptime(out, "%Y%m%d").date() == d + timedelta(days=days)


@given(DATES, DAYS, st.sampled_from(["", "T10:00:00+09:00", "T23:59:59.123Z", "T00:00:00-05:00"]))
def test_fhir_shift_keeps_precision_and_zone(d: date, days: int, tail: str) -> None:
    value = d.isoformat() + tail
    out = shift_fhir(value, days)
    assert out is not None and out.endswith(tail) and len(out) == len(value)
    assert date.fromisoformat(out[:10]) == d + timedelta(days=days)
    assert len(shift_fhir(value[:7], days) or "") == 7 and len(shift_fhir(value[:4], days) or "") == 4


def test_dt_and_bad_values() -> None:
    assert shift_dt("20240301101010.123456+0900", -1) == "20240229101010.123456+0900"
    assert shift_dt("202403", -40) == "202401"
    assert shift_da("20241345", -1) is None and shift_da("garbage", -1) is None
    assert shift_dt("2024x", -1) is None
    assert shift_fhir("not a date", -1) is None


def test_text_dates_all_formats_move_together() -> None:
    text = "seen 2024-03-01, 01/03/2024, 01-MAR-2024, 1 mar 2024, 20240301, 01-Mar-24"
    out = shift_text_dates(text, -1)
    assert out == "seen 2024-02-29, 29/02/2024, 29-FEB-2024, 29 feb 2024, 20240229, 29-Feb-24"
    assert shift_text_dates("2024-02-30 is no date", -1) == "2024-02-30 is no date"


def test_age_strings() -> None:
    assert group_as("095Y") == "090Y" and group_as("089Y") == "089Y" and group_as("011M") == "011M"
    assert group_as("old") is None


@given(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)), DAYS)
def test_full_date_fast_path_is_date_arithmetic(d: date, days: int) -> None:
    """A full date ('YYYY-MM-DD', ASCII digits) is shifted without the regex: the answer is plain
    date arithmetic, the year in four digits, and a shift past year 1 raises as before."""
    try:
        want = (d + timedelta(days=days)).isoformat()
    except OverflowError:
        want = None
    if want is None:
        try:
            shift_fhir(d.isoformat(), days)
        except OverflowError:
            return
        raise AssertionError("a shift before year 1 must raise")
    assert shift_fhir(d.isoformat(), days) == want


def test_full_date_fast_path_leaves_odd_shapes_to_the_regex() -> None:
    assert shift_fhir("2024-02-30", -1) is None  # not a calendar day
    assert shift_fhir("2024-13-01", -1) is None
    assert shift_fhir("２０２４-03-01", -1) is not None  # other scripts' digits: the regex path, as before
    assert shift_fhir("2024-03-01", -1) == "2024-02-29"
    assert shift_fhir("2024-3-011", -1) is None


def test_text_date_check_is_shared_across_shifts() -> None:
    """Whether a text holds a date is kept per text (the same for every patient): texts with and
    without dates, asked in turn under different shifts, get what a cold cache gives."""
    from medhub.privacy.deid.dates import clear_text_date_cache

    texts = ["BMI 30+ - obesity", "seen 2024-03-01", "code 12345", "20240301 and 01-MAR-2024", "no digits"]
    cold = {}
    for days in (-1, -30):
        for t in texts:
            clear_text_date_cache()
            cold[(t, days)] = shift_text_dates(t, days)
    clear_text_date_cache()
    for _ in range(2):
        for days in (-1, -30):
            for t in texts:
                assert shift_text_dates(t, days) == cold[(t, days)]
    assert cold[("seen 2024-03-01", -1)] == "seen 2024-02-29"
