"""The linkage unit wired into the gate: synthetic hospitals ingested through the real gate deposit
tokens; the unit links them into master IDs; projects get unlinkable pseudonyms; the linkage
store holds no plaintext identifier and no token key; re-ingest deposits nothing new."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from medhub.config import Settings, load_settings
from medhub.lake.intake import ingest_paths
from medhub.lake.scan import Matcher
from medhub.privacy.deid.common import source_secrets
from medhub.privacy.linkage import intake
from medhub.privacy.linkage.registry import project_pseudonym_rows, run_linkage, write_pseudonyms_csv
from medhub.privacy.linkage.unit import LinkageError
from medhub.synth import generate, read_identifiers

SOURCES = ("hospital-a", "hospital-b", "hospital-c")


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path, list[dict]]:
    root = tmp_path_factory.mktemp("linkage-intake")
    settings = load_settings(
        {
            "MEDHUB_HOME": str(root / "hub"),
            "MEDHUB_KEY_DIR": str(root / "keys"),
            "MEDHUB_LINKAGE_DIR": str(root / "linkage"),
        }
    )
    settings.ensure_dirs()
    synth = root / "synth"
    generate(synth, hospitals=3, patients=60, seed=23)
    for s in SOURCES:
        ingest_paths(settings, s, [synth / s], gate=None, progress=False)
    truth = [orjson.loads(x) for x in (synth / "truth" / "identities.jsonl").read_bytes().splitlines() if x]
    return settings, synth, truth


def _by_record(settings: Settings, truth: list[dict], project: str) -> dict[tuple[str, str], str]:
    rows = {(s, p): q for s, p, q in project_pseudonym_rows(settings, project)}
    out = {}
    for t in truth:
        src = t["source_id"]
        out[(src, t["mrn"])] = rows[(src, source_secrets(settings, src).patient(t["mrn"]))]
    return out


def test_every_patient_is_deposited_under_its_source_pseudonym(linked) -> None:
    settings, _, truth = linked
    for src in SOURCES:
        got = set(
            intake.deposited_tokens(settings.linkage_dir, intake.current_round(settings), src)["record_id"]
        )
        want = {source_secrets(settings, src).patient(t["mrn"]) for t in truth if t["source_id"] == src}
        assert got == want


def test_one_person_seen_at_several_hospitals_gets_one_master_id(linked) -> None:
    settings, _, truth = linked
    res = run_linkage(settings)
    persons = defaultdict(set)
    for t in truth:
        persons[t["person_id"]].add(t["source_id"])
    assert res.records == len(truth)
    assert res.sources == 3
    multi = [p for p, s in persons.items() if len(s) >= 2]
    assert multi, "the generator should put some people in several hospitals"
    pseud = _by_record(settings, truth, "study-1")
    person_of = {(t["source_id"], t["mrn"]): t["person_id"] for t in truth}
    # true pairs found / pairs claimed (pairwise, across records)
    by_pseud = defaultdict(set)
    for rec, p in pseud.items():
        by_pseud[p].add(rec)
    claimed = {(a, b) for g in by_pseud.values() for a in g for b in g if a < b}
    by_person = defaultdict(set)
    for rec, p in person_of.items():
        by_person[p].add(rec)
    true = {(a, b) for g in by_person.values() for a in g for b in g if a < b}
    assert len(true) > 5
    precision = len(claimed & true) / len(claimed)
    recall = len(claimed & true) / len(true)
    assert precision >= 0.95 and recall >= 0.9, (precision, recall)
    # at least one person seen at all of their hospitals maps to exactly one pseudonym
    whole = [p for p in multi if len({pseud[r] for r in by_person[p]}) == 1]
    assert whole
    assert res.multi_source >= len(whole) * 0.9


def test_two_projects_get_different_pseudonyms_for_the_same_patient(linked, tmp_path: Path) -> None:
    settings, _, truth = linked
    run_linkage(settings)
    a = _by_record(settings, truth, "study-a")
    b = _by_record(settings, truth, "study-b")
    assert a.keys() == b.keys()
    assert all(a[k] != b[k] for k in a)
    assert not set(a.values()) & set(b.values())
    # same project twice: stable
    assert _by_record(settings, truth, "study-a") == a
    out = write_pseudonyms_csv(project_pseudonym_rows(settings, "study-a"), tmp_path / "p.csv")
    lines = out.read_text().splitlines()
    assert lines[0] == "source,source_pseudonym,project_pseudonym" and len(lines) == len(truth) + 1


def test_linkage_dir_holds_no_plaintext_identifier_and_no_token_key(linked) -> None:
    settings, synth, _ = linked
    run_linkage(settings)
    project_pseudonym_rows(settings, "study-x")
    identifiers = sorted(read_identifiers(synth))
    assert len(identifiers) > 100
    # every key of the source side's key store (token round keys, pseudonym keys), raw and as hex
    keys = [p.read_bytes() for p in Path(settings.key_dir).rglob("*.key")]
    round_key = intake.round_key(settings, intake.current_round(settings))
    assert round_key in keys
    needles = identifiers + [k.hex() for k in keys]
    m = Matcher(needles)
    files = [p for p in Path(settings.linkage_dir).rglob("*") if p.is_file()]
    assert any(p.name == "deposits.sqlite3" for p in files)
    for p in files:
        data = p.read_bytes()
        assert not m.find(data), f"{p} holds {sorted(m.find(data))[:3]}"
        for k in keys:
            assert k not in data, f"{p} holds a key of the source side's key store"
    assert not any(Path(settings.linkage_dir).rglob("round-*.key"))


def test_reingest_deposits_nothing_new(linked) -> None:
    settings, synth, _ = linked
    rid = intake.current_round(settings)
    before = intake.deposit_count(settings.linkage_dir, rid)
    with intake.open_inbox(settings.linkage_dir) as con:
        stamps = con.execute("select record_id, deposited_at from deposits order by 1").fetchall()
    for s in SOURCES:
        ingest_paths(settings, s, [synth / s], gate=None, progress=False)
    # and a forced re-read of the Patients through a fresh depositor (same identities, new padding)
    src = "hospital-a"
    dep = intake.linkage_depositor(settings, src, source_secrets(settings, src).patient)
    patients = synth / src / "fhir" / "Patient.ndjson"
    for line in patients.read_bytes().splitlines():
        dep(orjson.loads(line))
    assert dep.flush() == 0
    assert intake.deposit_count(settings.linkage_dir, rid) == before
    with intake.open_inbox(settings.linkage_dir) as con:
        assert con.execute("select record_id, deposited_at from deposits order by 1").fetchall() == stamps


def test_changed_identity_replaces_the_deposit(settings: Settings) -> None:
    dep = intake.linkage_depositor(settings, "h1", lambda x: "p-" + x)
    pat = {
        "resourceType": "Patient",
        "id": "m1",
        "name": [{"family": "김", "given": ["민준"]}],
        "birthDate": "1980-01-02",
    }
    dep(pat)
    assert dep.flush() == 1
    dep(dict(pat, birthDate="1980-01-03"))
    assert dep.flush() == 1
    assert intake.deposit_count(settings.linkage_dir) == 1


def test_patient_identity_fields() -> None:
    pat = {
        "resourceType": "Patient",
        "id": "x",
        "identifier": [
            {"system": "urn:mrn", "value": "A123"},
            {"system": "urn:other", "value": "800102-1234567"},
        ],
        "name": [
            {"text": "Minjun Kim", "family": "Kim", "given": ["Minjun"]},
            {"text": "김민준"},
        ],
        "gender": "male",
        "birthDate": "1980-01-02",
        "telecom": [{"system": "email", "value": "a@b"}, {"system": "phone", "value": "010-1234-5678"}],
        "address": [
            {"state": "서울특별시", "city": "강남구", "line": ["테헤란로 12"], "postalCode": "06234"}
        ],
    }
    got = intake.patient_identity(pat)
    assert got["family_name"] == "김" and got["given_name"] == "민준"
    assert got["family_name_roman"] == "Kim" and got["given_name_roman"] == "Minjun"
    assert got["rrn"] == "800102-1234567"  # RRN-shaped value under another system
    assert got["phone"] == "010-1234-5678" and got["postcode"] == "06234"
    assert got["address"] == "서울특별시 강남구 테헤란로 12"
    assert intake.patient_identity({"resourceType": "Patient", "name": "bad", "telecom": [3]})["sex"] is None


def test_linkage_without_deposits_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(LinkageError, match="no token deposits"):
        run_linkage(settings)
    with pytest.raises(LinkageError, match="linked yet"):
        project_pseudonym_rows(settings, "p")


def test_rotated_round_uses_a_new_key(settings: Settings) -> None:
    r1 = intake.current_round(settings)
    k1 = intake.round_key(settings, r1)
    r2 = intake.rotate_round(settings)
    assert intake.current_round(settings) == r2 != r1
    assert intake.round_key(settings, r2) != k1
    with pytest.raises(ValueError):
        intake.rotate_round(settings, "../evil")


def test_a_round_keeps_one_token_layout(settings: Settings) -> None:
    dep = intake.linkage_depositor(settings, "h1", lambda x: "p-" + x)
    dep({"resourceType": "Patient", "id": "m1", "birthDate": "1980-01-02"})
    assert dep.flush() == 1
    with intake.open_inbox(settings.linkage_dir) as con, con:
        con.execute("update token_layout set names = 'dob'")
    dep({"resourceType": "Patient", "id": "m2", "birthDate": "1980-01-03"})
    with pytest.raises(intake.InboxError, match="another layout"):
        dep.flush()
    with pytest.raises(intake.InboxError, match="damaged"):
        intake.deposited_tokens(settings.linkage_dir, dep.round_id, "h1")


def test_cli_run_and_pseudonyms(linked, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from medhub.cli import app

    settings, _, truth = linked
    env = {
        "COLUMNS": "400",
        "MEDHUB_HOME": str(settings.home),
        "MEDHUB_KEY_DIR": str(settings.key_dir),
        "MEDHUB_LINKAGE_DIR": str(settings.linkage_dir),
    }
    res = CliRunner().invoke(app, ["linkage", "run"], env=env)
    assert res.exit_code == 0, res.output
    assert f"{len(truth)} records from 3 sources" in res.output
    out = tmp_path / "p.csv"
    res = CliRunner().invoke(app, ["linkage", "pseudonyms", "--project", "cli-p", "--out", str(out)], env=env)
    assert res.exit_code == 0, res.output
    assert len(out.read_text().splitlines()) == len(truth) + 1
    res = CliRunner().invoke(app, ["linkage", "pseudonyms", "--project", "../x"], env=env)
    assert res.exit_code != 0 and "invalid project" in res.output
    empty = dict(env, MEDHUB_LINKAGE_DIR=str(tmp_path / "none"))
    res = CliRunner().invoke(app, ["linkage", "run"], env=empty)
    assert res.exit_code != 0 and "no token deposits" in res.output


def test_an_old_buffer_is_deposited_on_the_next_item(settings: Settings, monkeypatch) -> None:
    dep = intake.linkage_depositor(settings, "h1", lambda x: "p-" + x)
    dep({"resourceType": "Patient", "id": "m1", "birthDate": "1980-01-02"})
    assert intake.deposit_count(settings.linkage_dir) == 0  # buffered
    monkeypatch.setattr(intake, "MAX_AGE_S", 0.0)
    dep({"resourceType": "Observation", "id": "o1"})
    assert intake.deposit_count(settings.linkage_dir) == 1


def test_the_gate_deposits_when_it_is_dropped(settings: Settings) -> None:
    import gc

    from medhub.ingest.records import FhirItem
    from medhub.privacy.gate import make_gate

    gate = make_gate(settings, "h2")
    out = gate(FhirItem("f", {"resourceType": "Patient", "id": "m9", "name": [{"family": "Kim"}]}))
    assert out.resource["id"] == source_secrets(settings, "h2").patient("m9")
    assert intake.deposit_count(settings.linkage_dir) == 0
    del gate
    gc.collect()
    got = intake.deposited_tokens(settings.linkage_dir, intake.current_round(settings), "h2")
    assert got["record_id"].tolist() == [out.resource["id"]]


def test_the_unit_links_the_latest_deposited_round_without_the_key_store(settings: Settings) -> None:
    pat = {"resourceType": "Patient", "id": "m1", "name": [{"family": "김", "given": ["민준"]}]}
    dep = intake.linkage_depositor(settings, "h1", lambda x: "p-" + x)
    dep(dict(pat, birthDate="1980-01-02"))
    dep.flush()
    r2 = intake.rotate_round(settings, "round-2")
    dep2 = intake.linkage_depositor(settings, "h1", lambda x: "p-" + x)
    dep2(dict(pat, id="m2", birthDate="1990-01-02"))
    dep2(dict(pat, id="m3", birthDate="1991-01-02"))
    dep2.flush()
    # the unit sees only settings.linkage_dir: point the key store elsewhere
    blind = load_settings(
        {
            "MEDHUB_HOME": str(settings.home),
            "MEDHUB_KEY_DIR": str(settings.home.parent / "elsewhere"),
            "MEDHUB_LINKAGE_DIR": str(settings.linkage_dir),
        }
    )
    res = run_linkage(blind)
    assert (res.round_id, res.records) == (r2, 2)
    assert {r[1] for r in project_pseudonym_rows(blind, "p")} == {"p-m2", "p-m3"}
    assert run_linkage(blind, round_id=intake.DEFAULT_ROUND).records == 1
    assert not (settings.home.parent / "elsewhere").exists()
