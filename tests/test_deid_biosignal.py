"""Biosignal de-identification: WFDB headers and EDF+ fields lose identity, keep age/sex, shift dates."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from conftest import shared_sub
from medhub.config import Settings
from medhub.ingest.biosignal import read_edf, read_wfdb
from medhub.ingest.records import BiosignalItem
from medhub.privacy.deid.common import source_secrets
from medhub.privacy.gate import make_gate
from medhub.synth.ecg import EcgRecording, write_edf, write_wfdb

WHEN = dt.datetime(2024, 3, 1, 10, 5, 0)


def recording(name: str = "KIM^MINJUN", mrn: str = "MRN0042", age: int = 63) -> EcgRecording:
    return EcgRecording(
        record_name=f"ecg_{mrn}_20240301",
        when=WHEN,
        rhythm="sinus",
        heart_rate=72,
        patient_name=name,
        mrn=mrn,
        age=age,
        sex="M",
        birth_date=dt.date(1960, 5, 17),
        technician="Lee Sujin",
        device="CardioMax 3000",
        institution="Seoul Example Hospital",
        seed=7,
    )


def one(items: list) -> BiosignalItem:
    got = [i for i in items if isinstance(i, BiosignalItem)]
    assert len(got) == 1, items
    return got[0]


def fields_text(item: BiosignalItem) -> str:
    return " | ".join(
        [
            item.record_name,
            *item.comments,
            *item.patient.values(),
            *item.recording.values(),
            *(a.text for a in item.annotations),
        ]
    )


def leaked(ident: str, text: str) -> bool:
    """Whether ident appears in text (an all-digit ident only as a whole number, not inside hex)."""
    if ident.isdigit():
        return re.search(rf"(?<![0-9a-fA-F]){ident}(?![0-9a-fA-F])", text) is not None
    return ident in text


def test_wfdb_header_deidentified(settings: Settings, tmp_path: Path) -> None:
    write_wfdb(tmp_path, recording())
    item = one(list(read_wfdb(tmp_path / "ecg_MRN0042_20240301.hea")))
    out = make_gate(settings, "hosp-a")(item)
    text = fields_text(out)
    for ident in (
        "KIM",
        "MINJUN",
        "MRN0042",
        "Lee Sujin",
        "Sujin",
        "Seoul Example Hospital",
        "2024-03-01",
        "20240301",
    ):
        assert not leaked(ident, text), ident
    secrets = source_secrets(settings, "hosp-a")
    assert out.comments[0] == f"patient: {secrets.patient('MRN0042')}"
    assert "Age: 63" in out.comments and "Sex: M" in out.comments and "Device: CardioMax 3000" in out.comments
    shift = secrets.shift_days("MRN0042")
    assert out.start == item.start + dt.timedelta(days=shift)
    assert f"Date: {(WHEN + dt.timedelta(days=shift)):%Y-%m-%d}" in out.comments
    assert out.samples[0] is item.samples[0]  # samples untouched, not copied


def test_wfdb_age_over_89_grouped(settings: Settings, tmp_path: Path) -> None:
    write_wfdb(tmp_path, recording(age=94))
    out = make_gate(settings, "hosp-a")(one(list(read_wfdb(tmp_path / "ecg_MRN0042_20240301.hea"))))
    assert "Age: 90+" in out.comments


def test_edf_fields_deidentified(settings: Settings, tmp_path: Path) -> None:
    path = write_edf(tmp_path / "ecg.edf", recording())
    item = one(list(read_edf(path)))
    assert "KIM" in fields_text(item)  # planted
    out = make_gate(settings, "hosp-a")(item)
    text = fields_text(out)
    for ident in ("KIM", "MINJUN", "MRN0042", "Lee", "Sujin", "17 may 1960", "1960"):
        assert not leaked(ident, text), ident
    secrets = source_secrets(settings, "hosp-a")
    assert out.patient["code"] == secrets.patient("MRN0042")
    assert out.patient["name"] == "X" and out.recording["technician"] == "X"
    shift = secrets.shift_days("MRN0042")
    born = dt.datetime.strptime(out.patient["birthdate"], "%d %b %Y").date()
    assert (born - dt.date(1960, 5, 17)).days == shift
    assert out.start == item.start + dt.timedelta(days=shift)
    assert out.annotations[0].text.startswith("Resting 12-lead ECG of ***")
    assert out.annotations[1].text == item.annotations[1].text  # clinical text kept


@pytest.mark.slow
def test_shared_wfdb_headers(settings: Settings) -> None:
    root = shared_sub("data", "biosignals", "wfdb-python")
    gate = make_gate(settings, "pub")
    ptb = gate(one(list(read_wfdb(root / "s0010_re.hea"))))
    text = " | ".join(ptb.comments)
    assert "age: 81" in ptb.comments and "sex: female" in ptb.comments
    for original in ("01/10/1990", "29-Sep-90", "16-Oct-90"):
        assert original not in text, original
    assert ptb.record_name != "s0010_re"
    mit = gate(one(list(read_wfdb(root / "100.hea"))))
    assert any(c.startswith("69 M") for c in mit.comments)
    assert "Aldomet, Inderal" in mit.comments


@pytest.mark.slow
def test_shared_edf(settings: Settings) -> None:
    root = shared_sub("data", "biosignals", "pyedflib")
    gate = make_gate(settings, "pub")
    for name, birth in (("test_generator.edf", "30 jun 1969"), ("test_utf8.edf", "20 jan 1998")):
        item = one(list(read_edf(root / name)))
        out = gate(item)
        assert out.patient["birthdate"] not in (birth, "")
        assert out.patient["name"] == "X"
        assert out.start != item.start
        # one record without a patient code is keyed by its record name: its own dates move together
        shift = (out.start - item.start).days
        born = dt.datetime.strptime(out.patient["birthdate"], "%d %b %Y").date()
        assert (born - dt.datetime.strptime(birth, "%d %b %Y").date()).days == shift
