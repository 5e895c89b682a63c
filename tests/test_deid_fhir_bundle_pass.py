"""The gate's native Bundle pass (privacy/deid/_fhir_bundle.c) gives, entry by entry, exactly what the
Python path gives: the reader's items put through the gate one by one, each resource's row as
`lake.fhir_rows.fhir_row` makes it (the stored JSON byte for byte, the key columns), the same
rejections and the same failures, in the same order, under every policy.

Each comparison runs two gates with the same keys (separate patient indexes and linkage stores):
one through the reader and the gate item by item, the other through the gate's Bundle pass.
Tests also check that the pass really took the entries it should (a row tuple, not a fallback),
so that a pass that handed everything back to Python could not pass them, and that each row's
digest (where the pass hashes its rows, built with OpenSSL) is the sha256 of its JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from conftest import IN_CI, need, shared_sub
from medhub.config import Settings
from medhub.ingest.fhir import read_json
from medhub.ingest.records import GateFailure, Rejected, gate_bundle_pass
from medhub.lake.fhir_rows import fhir_row
from medhub.privacy.deid.common import Policy
from medhub.privacy.deid.fhir_bundle import native_available, row_digests
from medhub.privacy.gate import gate_with_policy

POLICIES = (Policy(), Policy(fhir_notes="clean"), Policy(shift_dates=False))


@pytest.fixture(autouse=True)
def _native_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDHUB_PURE_PYTHON", raising=False)
    if not native_available():
        if IN_CI:
            pytest.fail("the C Bundle pass is not built (make native), required under CI=true")
        pytest.skip("the C Bundle pass is not built here (no C compiler at install)")


def _outcome(o: Any) -> tuple:
    if type(o) is tuple:  # the pass's row: its digest is the JSON's sha256 (where it hashes rows)
        rtype, rid, text, pref, last, digest = o
        assert digest == (hashlib.sha256(text).digest() if row_digests() else None)
        return ("row", (rtype, rid, text, pref, last))
    if isinstance(o, Rejected):
        return ("rejected", o.reason, o.line)
    if isinstance(o, GateFailure):
        return ("failed", type(o.error).__name__, str(o.error))
    rtype, text, _digest, rid, pref, last = fhir_row(o.resource)
    return ("row", (rtype, rid, text, pref, last))


def _python_path(gate: Any, data: bytes) -> list[tuple]:
    out: list[tuple] = []
    for item in read_json(Path("b.json"), data=data, resolve=False):
        if isinstance(item, Rejected):
            out.append(_outcome(item))
            continue
        try:
            out.append(_outcome(gate(item)))
        except Exception as exc:  # noqa: BLE001 - compared with the pass's GateFailure
            out.append(("failed", type(exc).__name__, str(exc)))
    return out


def _gates(settings: Settings, policy: Policy) -> tuple[Any, Any]:
    other = dataclasses.replace(settings, linkage_dir=settings.linkage_dir.parent / "linkage-2")
    return gate_with_policy(settings, "h1", policy), gate_with_policy(other, "h1", policy)


def _compare(settings: Settings, docs: list[bytes], policy: Policy = Policy()) -> tuple[int, int]:
    """Both paths over `docs` (in order, one pair of gates); returns (entries, taken natively)."""
    python_gate, pass_gate = _gates(settings, policy)
    run = gate_bundle_pass(pass_gate)
    assert run is not None
    entries = native = 0
    for data in docs:
        expected = _python_path(python_gate, data)
        got = run("b.json", data)
        if got is None:  # the whole document is the Python path's: the pipeline reads it item by item
            got_outcomes = _python_path(pass_gate, data)
        else:
            got_outcomes = [_outcome(o) for o in got]
            native += sum(1 for o in got if type(o) is tuple)
        assert got_outcomes == expected
        entries += len(expected)
    return entries, native


def _bundle(*resources: dict, full_urls: bool = True) -> bytes:
    entries = []
    for r in resources:
        e: dict[str, Any] = {"resource": r}
        if full_urls and isinstance(r, dict) and "id" in r:
            e["fullUrl"] = f"urn:uuid:{r['id']}"
        entries.append(e)
    return json.dumps(
        {"resourceType": "Bundle", "type": "transaction", "entry": entries}, ensure_ascii=False
    ).encode()


PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [{"family": "김", "given": ["민준"], "text": "김민준"}],
    "identifier": [{"system": "urn:oid:1.2.410.100", "value": "900101-1234567"}],
    "telecom": [{"system": "phone", "value": "010-1234-5678"}],
    "birthDate": "1990-01-01",
    "address": [{"text": "서울특별시 강남구 테헤란로 1", "postalCode": "06234"}],
}


def _obs(i: int, **extra: Any) -> dict:
    r = {
        "resourceType": "Observation",
        "id": f"o{i}",
        "meta": {"lastUpdated": "2020-03-04T05:06:07.123+09:00", "tag": [{"system": "s", "code": "c"}]},
        "status": "final",
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}],
            "text": "HR",
        },
        "subject": {"reference": "urn:uuid:p1", "display": "김민준"},
        "effectiveDateTime": "2020-03-04T05:06:07+09:00",
        "valueQuantity": {
            "value": 72.5,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }
    r.update(extra)
    return r


def test_handmade_resources_native_and_identical(settings: Settings) -> None:
    docs = [
        _bundle(PATIENT, _obs(1), _obs(2, valueString="김민준 환자, 연락처 010-1234-5678, 2020-03-01 내원")),
        _bundle(
            PATIENT,
            _obs(3, note=[{"text": "called 010-1234-5678", "time": "2020-03-04"}]),
            _obs(4, identifier=[{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.4"}, {"value": "A-1"}]),
            _obs(5, contained=[{"resourceType": "Practitioner", "id": "x", "name": [{"family": "Lee"}]}]),
            _obs(  # a contained resource's type that is not a string names no type (no person to strip)
                9,
                contained=[
                    {"resourceType": ["Person"], "name": [{"family": "Lee"}], "text": {"div": "x"}},
                    {"resourceType": {"Patient": 1}, "birthDate": "1990-01-01", "reference": []},
                ],
            ),
            _obs(6, effectivePeriod={"start": "2020", "end": "2020-02"}, issued="2020-02-30T00:00:00Z"),
            _obs(7, valueAttachment={"contentType": "text/plain", "data": "aGk=", "url": "http://x"}),
            _obs(
                8,
                focus=[{"reference": "Patient/p1"}],
                derivedFrom=[{"reference": "urn:uuid:o1", "display": "o"}],
            ),
            {"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Park"}], "gender": "male"},
            {"resourceType": "Organization", "id": "org", "name": "서울병원", "alias": ["2020-01-01"]},
            {
                "resourceType": "Claim",
                "id": "c1",
                "patient": {"reference": "urn:uuid:p1"},
                "total": {"value": 12.30, "currency": "KRW"},
                "item": [
                    {
                        "adjudication": [
                            {"category": {"text": "x"}, "amount": {"value": 1.0, "currency": "KRW"}}
                        ]
                    }
                ],
                "billablePeriod": {"start": "2020-01-01T00:00:00Z", "end": "2020-01-02"},
            },
        ),
    ]
    for policy in POLICIES:
        entries, native = _compare(settings, docs, policy)
        assert entries == 14 and native == 12  # all but the two Patients


def test_repeated_identifiers_pseudonymized_as_each_alone(settings: Settings) -> None:
    """The pass remembers identifier values within a document by (accession or not, system, value):
    the same value under another system, or as an accession number, is another pseudonym."""
    acsn = {"coding": [{"code": "ACSN"}]}
    ids = [
        {"system": "urn:a", "value": "V-1"},
        {"system": "urn:b", "value": "V-1"},
        {"value": "V-1"},
        {"system": "urn:a", "value": "V-1", "type": acsn},
        {"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"},
        {"system": "urn:dicom:uid", "value": "1.2.3"},
    ]
    docs = [_bundle(PATIENT, *(_obs(i, identifier=ids[i % 3 :] + ids[: i % 3]) for i in range(6)))]
    for policy in POLICIES:
        entries, native = _compare(settings, docs, policy)
        assert (entries, native) == (7, 6)
    rows = gate_bundle_pass(_gates(settings, Policy())[1])("b.json", docs[0])
    assert rows is not None
    values = [[i.get("value") for i in json.loads(r[2])["identifier"]] for r in rows if type(r) is tuple]
    first = values[0]
    assert len(set(first[:4])) == 4  # another system, no system, an accession number: four pseudonyms
    assert all(sorted(v) == sorted(first) for v in values)  # the same set in every resource


def test_strings_escaped_as_orjson_escapes_them(settings: Settings) -> None:
    """Strings the pass writes from its own decoded copy (a resource with escapes in it): quotes,
    backslashes and control bytes escaped at any place in short and long strings (the scan takes
    sixteen bytes at a time), bytes beyond ASCII and DEL written as they are."""
    rng = random.Random(7)
    alphabet = ['"', "\\", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "한", "a", "0", "-", " ", "/"]
    values = [
        "a" * k + c + "b" * m
        for c in ('"', "\\", "\x01", "\n")
        for k in (0, 15, 16, 17, 31)
        for m in (0, 1, 16)
    ]
    values += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 60))) for _ in range(200)]
    docs = [
        _bundle(
            PATIENT,
            *(_obs(i, status="final\n", valueString=v, code={"text": v}) for i, v in enumerate(chunk)),
        )
        for chunk in (values[i : i + 40] for i in range(0, len(values), 40))
    ]
    for policy in POLICIES:
        entries, native = _compare(settings, docs, policy)
        assert native == len(values)  # all but the Patients, each through the pass's decoded strings


def test_the_pass_hashes_the_rows_it_writes(settings: Settings) -> None:
    """Built with OpenSSL (as on every machine with its headers, CI's included), the pass gives each
    row the sha256 digest of its JSON, which the lake stores as the row's content hash."""
    if not row_digests():
        if IN_CI:
            pytest.fail("the Bundle pass was built without OpenSSL (libssl-dev): required under CI=true")
        pytest.skip("the Bundle pass was built without OpenSSL's headers here: the lake hashes the rows")
    rows = gate_bundle_pass(_gates(settings, Policy())[1])("b.json", _bundle(PATIENT, _obs(1), _obs(2)))
    assert rows is not None
    native = [r for r in rows if type(r) is tuple]
    assert len(native) == 2
    for row in native:
        assert row[5] == hashlib.sha256(row[2]).digest()


@pytest.mark.parametrize(
    "raw",
    [
        "1.50",
        "100.0",
        "-0",
        "-0.0",
        "0.00001",
        "0.000001",
        "1e2",
        "1E-400",
        "123456789012345.6",
        "1234567890123456.7",
        "12345678901234567890",
        "0.30000000000000004",
        "5",
    ],
)
def test_numbers_written_as_orjson_writes_them(settings: Settings, raw: str) -> None:
    doc = _bundle(PATIENT, _obs(1)).replace(b'"value": 72.5', b'"value": ' + raw.encode())
    assert raw.encode() in doc
    entries, native = _compare(settings, [doc])
    assert (entries, native) == (2, 1)


B = b'{"resourceType": "Bundle", "entry": '


@pytest.mark.parametrize(
    "doc",
    [
        B + b'[{"resource": {"resourceType": "Observation", "id": "o"}}]',  # cut
        B + b'[{"resource": {"resourceType": "Observation", "id": "\xff"}}]}',  # not UTF-8
        B + b'[{"resource": {"resourceType": "Observation", "id": "\\ud800"}}]}',  # a lone surrogate
        B + b'[{"resource": {"resourceType": "Observation", "value": 1e400}}]}',  # infinite
        B + b'[{"resource": {"id": "a\tb"}}]}',  # a raw tab in a string
        b'{"resourceType": "Bundle", "entry": [], "entry": [{"resource": {"id": "o"}}]}',  # the key twice
        b'{"resourceType": "Bundle", "entry": {"resource": {}}}',
        b'{"resourceType": "Bundle"}',
        b'{"resourceType": "Observation", "id": "o"}',
        b"[]",
        b"",
        B + b"[" + b"[" * 1000 + b"]" * 1000 + b"]}",  # deeper than the pass goes
        B + b'[{"fullUrl": "urn:uuid:x", "resource": {"resourceType": "Observation"}}]}',  # the reader's id
    ],
)
def test_documents_left_to_the_python_path(settings: Settings, doc: bytes) -> None:
    """Not JSON as orjson reads it, not a Bundle with entries, or a Bundle-level question (an id the
    reader would assign): the whole document goes to the reader, which says what is wrong."""
    _python_gate, pass_gate = _gates(settings, Policy())
    run = gate_bundle_pass(pass_gate)
    assert run is not None
    assert run("b.json", doc) is None


P1 = {"reference": "Patient/p1"}  # without fullUrls, the Patient by its id: dates shift


def test_entries_handed_back_give_the_python_outcome(settings: Settings) -> None:
    """Entries the pass does not take (a Patient, a duplicate key, no id, a bad type name or id, no
    resource, a Unicode-digit date, a date shifted out of range) get the Python path's outcome."""
    escaped = _obs(2, valueString='said "hello"\nthen left')
    doc = _bundle(
        PATIENT,
        _obs(1),
        escaped,
        {"resourceType": "Observation"},  # no id
        {"resourceType": "observation", "id": "x"},  # not a type name
        {"resourceType": "Observation", "id": "bad id"},
        "a string",
        _obs(9, effectiveDateTime="２０２０-03-04", subject=P1),  # a Unicode digit date: Python's \d says yes
        _obs(10, effectiveDateTime="0001-01-02", subject=P1),  # shifted before year 1: the gate fails
        full_urls=False,
    )
    doc = doc.replace(b'{"resource": "a string"}', b'{"request": {"method": "DELETE", "url": "Patient/1"}}')
    doc = doc.replace(b'"status": "final"', b'"status": "final", "status": "amended"', 1)  # a duplicate key
    entries, native = _compare(settings, [doc])
    assert entries == 9
    assert (
        native == 1
    )  # the escaped strings are decoded and written again; every other entry is odd on purpose


def test_patient_sent_after_its_resources(settings: Settings) -> None:
    """Free text of a resource whose Patient this source has not sent yet is dropped, and the
    Patient's later arrival is seen by the next resources: the pass keeps the entry order."""
    doc = _bundle(_obs(1, valueString="x"), PATIENT, _obs(2, valueString="y"))
    assert _compare(settings, [doc]) == (3, 2)


def test_synth_bundles_identical(settings: Settings, tmp_path: Path) -> None:
    from medhub.synth import generate

    out = tmp_path / "synth"
    generate(out, hospitals=3, patients=40, seed=7)
    docs = [p.read_bytes() for p in sorted(out.rglob("*.json")) if b'"Bundle"' in p.read_bytes()[:200]]
    assert docs, "the synthetic hospitals include one that sends Bundles"
    for policy in POLICIES:
        entries, native = _compare(settings, docs, policy)
        assert native > entries // 2


def test_synthea_bundles_identical(settings: Settings, tmp_path: Path) -> None:
    tgz = shared_sub("data", "synthea", "synthea-r4-250-patients-bundles.tar.gz")
    with tarfile.open(tgz) as tar:
        members = sorted((m for m in tar.getmembers() if m.name.endswith(".json")), key=lambda m: m.name)
        docs = [tar.extractfile(m).read() for m in members]  # type: ignore[union-attr]
    if len(docs) < 250:
        need(f"the Synthea sample holds {len(docs)} bundles, not 250")
    entries, native = _compare(settings, docs)
    assert entries == 76536
    assert native > 0.95 * entries
    for policy in POLICIES[1:]:
        _compare(settings, docs[:30], policy)


# --- property: random resources of FHIR's shapes ------------------------------------------------

KEYS = [
    "reference", "display", "code", "system", "coding", "text", "valueString", "start", "end",
    "effectiveDateTime", "issued", "identifier", "note", "photo", "presentedForm", "uid", "valueCoding",
    "contained", "meta", "lastUpdated", "tag", "security", "value", "unit", "currency", "category",
    "reason", "amount", "contentType", "data", "url", "subject", "patient", "entity", "comparator",
    "version", "userSelected", "extension", "status", "period", "onsetPeriod", "description", "target",
    "member", "for", "focus", "profile", "source", "title",
]  # fmt: skip
STRINGS = [
    "Patient/p1", "urn:uuid:p1", "urn:uuid:o1", "urn:uuid:nowhere", "x Patient/p1 y", "aPatient/p1",
    "2019-01-01", "2019-02-30", "2019", "2019-13", "2019-01-01T10:00:00+09:00", "2019-01-01T10:00:00.5Z",
    "2019-01-01T10:00", "0001-01-01", "abcd-ef-ghij", "9999-12-31", "홍길동", "김민준 010-1234-5678",
    "２０１９-01-01", "2019-01-0１", "ab\"c", "line\nbreak", "1.2.840.10008", "", "Patient/", "é-é-é-é-é",
]  # fmt: skip
NUMBERS = ["0", "-0", "1", "-17", "1.50", "0.1", "1e3", "2.5E-7", "123456789012345678901", "0.000010", "3.0"]


def _scalar() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(STRINGS).map(lambda s: json.dumps(s, ensure_ascii=False)),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=12).map(
            lambda s: json.dumps(s, ensure_ascii=False)
        ),
        st.sampled_from(NUMBERS),
        st.sampled_from(["true", "false", "null"]),
    )


def _value(depth: int) -> st.SearchStrategy[str]:
    if depth <= 0:
        return _scalar()
    return st.one_of(
        _scalar(),
        st.lists(_value(depth - 1), max_size=3).map(lambda xs: "[" + ",".join(xs) + "]"),
        _object(depth - 1),
    )


def _object(depth: int) -> st.SearchStrategy[str]:
    member = st.tuples(st.sampled_from(KEYS), _value(depth))
    return st.lists(member, max_size=4, unique_by=lambda m: m[0]).map(
        lambda ms: "{" + ",".join(json.dumps(k) + ":" + v for k, v in ms) + "}"
    )


def _resource(i: int) -> st.SearchStrategy[str]:
    rtype = st.sampled_from(["Observation", "Encounter", "Practitioner", "Claim", "Patient"])
    body = st.lists(st.tuples(st.sampled_from(KEYS), _value(3)), max_size=6, unique_by=lambda m: m[0])
    return st.tuples(rtype, body).map(
        lambda t: (
            "{"
            + f'"resourceType":"{t[0]}","id":"r{i}"'
            + "".join("," + json.dumps(k) + ":" + v for k, v in t[1] if k not in ("id", "resourceType"))
            + "}"
        )
    )


@st.composite
def _bundles(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(1, 4))
    entries = [f'{{"fullUrl":"urn:uuid:p1","resource":{json.dumps(PATIENT, ensure_ascii=False)}}}']
    for i in range(n):
        entries.append(f'{{"fullUrl":"urn:uuid:o{i}","resource":{draw(_resource(i))}}}')
    return ('{"resourceType":"Bundle","entry":[' + ",".join(entries) + "]}").encode()


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_bundles(), policy=st.sampled_from(POLICIES))
def test_random_resources_identical(settings: Settings, doc: bytes, policy: Policy) -> None:
    _compare(settings, [doc], policy)


def test_ingest_with_and_without_the_pass_gives_the_same_lake(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through `ingest_paths`: the same rows (content hashes and key columns), the same counts and
    the same quarantine with the pass as with the Python gate alone (MEDHUB_PURE_PYTHON=1)."""
    import duckdb

    from medhub.lake.intake import ingest_paths
    from medhub.synth import generate

    generate(tmp_path / "synth", hospitals=2, patients=30, seed=11)
    bundles = sorted((tmp_path / "synth").glob("*/fhir/bundles"))
    assert bundles, "the second synthetic hospital sends Bundles"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "cut.json").write_bytes(_bundle(PATIENT, _obs(1))[:-20])
    (bad / "odd.json").write_bytes(_bundle(PATIENT, _obs(1), {"resourceType": "Observation"}))

    def run(tag: str, pure: bool) -> tuple[dict, list, list]:
        if pure:
            monkeypatch.setenv("MEDHUB_PURE_PYTHON", "1")
        else:
            monkeypatch.delenv("MEDHUB_PURE_PYTHON", raising=False)
        hub = dataclasses.replace(
            settings, home=tmp_path / tag, database_url=f"sqlite:///{tmp_path / tag}.sqlite3"
        )  # the same keys: the same pseudonyms
        hub.ensure_dirs()
        summary = ingest_paths(hub, "h2", [*bundles, bad], progress=False)
        rows = duckdb.sql(
            f"select resource_type, id, patient_ref, last_updated, content_hash from "
            f"read_parquet('{hub.lake_dir}/**/*.parquet', hive_partitioning=false) order by content_hash"
        ).fetchall()
        problems = sorted((p.source_file.rsplit("/", 1)[-1], p.line, p.reason) for p in summary.problems)
        return summary.as_dict()["counts"], rows, problems

    from medhub.privacy.deid import fhir_bundle

    taken: list[int] = []
    native = fhir_bundle._fhir_bundle

    class Counting:
        @staticmethod
        def deid_bundle(data: bytes, hooks: Any) -> Any:
            out = native.deid_bundle(data, hooks)
            taken.append(out is not None)
            return out

    monkeypatch.setattr(fhir_bundle, "_fhir_bundle", Counting)
    with_pass = run("with-pass", pure=False)
    assert sum(taken) == len(list(bundles[0].glob("*.json"))) + 1  # every Bundle but the cut one
    without = run("without-pass", pure=True)
    assert with_pass == without
    counts, rows, problems = with_pass
    assert len(rows) > 100 and len(problems) == 2  # the cut document, the entry without an id


def test_a_pass_built_from_another_source_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medhub.privacy.deid import fhir_bundle

    edited = tmp_path / "_fhir_bundle.c"
    edited.write_text("/* not what was built */\n")
    monkeypatch.setattr(fhir_bundle, "_SOURCE", edited)
    with pytest.warns(RuntimeWarning, match="another version"):
        assert not fhir_bundle._built_from_this_source()
    monkeypatch.setattr(fhir_bundle, "_SOURCE", Path(fhir_bundle.__file__).with_name("_fhir_bundle.c"))
    assert fhir_bundle._built_from_this_source()


def test_the_gate_is_freed_without_the_cycle_collector(settings: Settings) -> None:
    """The linkage depositor flushes when its gate is freed: the Bundle pass the gate carries must
    not hold the gate (a cycle would leave the deposits until the collector happens to run)."""
    import gc
    import weakref

    gate = gate_with_policy(settings, "h1", Policy())
    assert gate_bundle_pass(gate) is not None
    alive = weakref.ref(gate)
    gc.disable()
    try:
        del gate
        assert alive() is None
    finally:
        gc.enable()


# --- hostile bytes: a valid Bundle cut, spliced and overwritten at random -------------------------

SEED_DOC = _bundle(
    PATIENT,
    _obs(1, valueString='a "quoted" 김민준\\n', note=[{"text": "x"}]),
    _obs(2, identifier=[{"system": "s", "value": "v"}], valueQuantity={"value": 1.50, "unit": "mg"}),
)


JUNK = [
    b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"\x00", b"\xff", b"\xed\xa0\x80", b"\\u", b"1e999",
    b"-", b" ", b"\xea\xb9",  # breaking
    b"x", b"0", b"7.", b"\xea\xb0\x80", b"\\n", b"\\u0041", b"\\ud834\\udd1e", b"-01", b"T", b"Patient/",
]  # fmt: skip


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    doc = bytearray(SEED_DOC)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(doc)))
        what = draw(st.sampled_from(["cut", "delete", "insert", "overwrite"]))
        if what == "cut":
            del doc[at:]
        elif what == "delete":
            del doc[at : at + draw(st.integers(1, 8))]
        else:
            junk = draw(st.sampled_from(JUNK))
            if what == "insert":
                doc[at:at] = junk
            else:
                doc[at : at + len(junk)] = junk
    return bytes(doc)


@hsettings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_mutated())
def test_hostile_bytes_are_left_to_the_python_path_or_give_its_outcome(
    settings: Settings, doc: bytes
) -> None:
    _compare(settings, [doc])
