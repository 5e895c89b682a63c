"""Bundle reference resolution: `urn:uuid:` references become `Type/id`, whatever the layout or escapes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from medhub.ingest import fhir
from medhub.ingest.records import FhirItem


def _walked(raw: bytes) -> list:
    return [
        i.resource if isinstance(i, FhirItem) else i
        for i in fhir._bundle_items("b.json", orjson.loads(raw), None)
    ]


def _read(tmp_path: Path, raw: bytes) -> list:
    p = tmp_path / "b.json"
    p.write_bytes(raw)
    return [i.resource if isinstance(i, FhirItem) else i for i in fhir.read_json(p)]


def _bundle(entries: list) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


PAT = {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1"}}
OBS = {
    "fullUrl": "urn:uuid:o1",
    "resource": {
        "resourceType": "Observation",
        "id": "o1",
        "subject": {"reference": "urn:uuid:p1"},
        "hasMember": [{"reference": "urn:uuid:o1"}, {"reference": "urn:uuid:unknown"}],
        "note": [{"text": 'a note quoting "reference": "urn:uuid:p1" inside text'}],
    },
}


@pytest.mark.parametrize(
    "raw",
    [
        orjson.dumps(_bundle([PAT, OBS]), option=orjson.OPT_INDENT_2),  # the usual layout: fast path
        orjson.dumps(_bundle([PAT, OBS])),
        # resource before fullUrl: the byte map misses entries, the walk must take over
        orjson.dumps(_bundle([{"resource": PAT["resource"], "fullUrl": "urn:uuid:p1"}, OBS])),
        # an entry without id gets its uuid as id (the byte map cannot know): walk
        orjson.dumps(_bundle([{"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient"}}, OBS])),
        # a key spelled with an escape: only the parsed document knows it is "reference"
        orjson.dumps(_bundle([PAT, OBS])).replace(b'"subject":{"reference"', b'"subject":{"r\\u0065ference"'),
        # a uuid spelled with an escape
        orjson.dumps(_bundle([PAT, OBS])).replace(
            b'"reference":"urn:uuid:p1"', b'"reference":"urn:uuid:p\\u0031"'
        ),
    ],
)
def test_references_resolved(tmp_path: Path, raw: bytes) -> None:
    got = _read(tmp_path, raw)
    assert got == _walked(raw)
    obs = next(r for r in got if isinstance(r, dict) and r["resourceType"] == "Observation")
    assert obs["subject"]["reference"] == "Patient/p1"
    assert obs["hasMember"] == [{"reference": "Observation/o1"}, {"reference": "urn:uuid:unknown"}]
    assert "urn:uuid:p1" in obs["note"][0]["text"]  # text is never rewritten


def test_single_resource_with_uuid_reference_is_not_rewritten(tmp_path: Path) -> None:
    # not a Bundle: nothing to resolve against, the resource lands as sent
    res = {"resourceType": "Observation", "id": "o1", "subject": {"reference": "urn:uuid:p1"}}
    assert _read(tmp_path, orjson.dumps(res)) == [res]
