"""Bundle references resolved in the gate's own walk: the reader leaves a Bundle entry's
`urn:uuid:` references as sent (with the fullUrl map on the item) for the hub gate, whose
de-identifying walk resolves each one before it de-identifies it. The result must be that of
resolving first, whatever the resource holds, and no reference may reach the lake unresolved."""

from __future__ import annotations

import copy
import itertools
import json
import tarfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from tests.conftest import need
from tests.test_deid_fhir_plans import POLICIES, TODAY

from medhub.config import Settings
from medhub.ingest import fhir
from medhub.ingest.records import FhirItem, gate_resolves_refs
from medhub.lake.intake import ingest_paths
from medhub.privacy.deid.common import Policy, source_secrets
from medhub.privacy.deid.fhir import PatientIndex, deid_resource
from medhub.privacy.gate import make_gate
from medhub.shared_data import shared_path
from medhub.synth import generate

REFS = {"urn:uuid:p1": "Patient/p1", "urn:uuid:o1": "Observation/o1", "urn:uuid:e1": "Encounter/e1"}
PATIENT = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Kim", "given": ["Minjun"]}]}


def _resolve_everywhere(node: Any) -> Any:
    """The oracle: every string under a "reference" key, in every object at any depth (arrays in
    arrays included), resolved from REFS."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "reference" and isinstance(v, str):
                node[k] = REFS.get(v, v)
            else:
                _resolve_everywhere(v)
    elif isinstance(node, list):
        for x in node:
            _resolve_everywhere(x)
    return node


def _both(settings: Settings, resource: dict, policy: Policy) -> tuple[str, str]:
    """(resolved first, then de-identified; resolved in the walk), as JSON."""
    secrets = source_secrets(settings, "refs")
    out = []
    for fused in (False, True):
        index = PatientIndex()
        deid_resource(copy.deepcopy(PATIENT), secrets, policy, index, TODAY)
        res = copy.deepcopy(resource)
        if fused:
            got = deid_resource(res, secrets, policy, index, TODAY, refs=REFS)
        else:
            got = deid_resource(_resolve_everywhere(res), secrets, policy, index, TODAY)
        out.append(json.dumps(got, ensure_ascii=False, sort_keys=True))
    return out[0], out[1]


KEYS = [
    "reference", "display", "subject", "focus", "coding", "valueCoding", "code", "system", "text",
    "unit", "value", "currency", "start", "end", "period", "extension", "valueReference", "note",
    "contained", "meta", "tag", "lastUpdated", "effectiveDateTime", "valueString", "basedOn", "uid",
    "category", "amount", "resourceType",
]  # fmt: skip
STRINGS = [
    "urn:uuid:p1", "urn:uuid:o1", "urn:uuid:unknown", "Patient/p1", "2024-03-01", "2024-03-01T10:00:00Z",
    "Kim Minjun", "plain", "http://loinc.org", "8302-2", "",
]  # fmt: skip
_leaf = st.one_of(st.sampled_from(STRINGS), st.integers(-3, 3), st.booleans(), st.none(), st.floats(0, 2))
_tree = st.recursive(
    _leaf,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3), st.dictionaries(st.sampled_from(KEYS), kids, max_size=4)
    ),
    max_leaves=24,
)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(KEYS), _tree, max_size=6), policy=st.sampled_from(POLICIES))
def test_resolving_in_the_walk_equals_resolving_first(settings: Settings, body: dict, policy: Policy) -> None:
    body.pop("resourceType", None)
    resource = {"resourceType": "Observation", "id": "o9", **body, "subject": {"reference": "urn:uuid:p1"}}
    first, fused = _both(settings, resource, policy)
    assert first == fused


def test_odd_shapes_are_walked_and_resolved(settings: Settings) -> None:
    """What the walk passes by are datatypes of primitives only (Codings, Quantities, Money): a
    Coding with an extension, a Quantity holding an object, arrays in arrays are walked, so their
    references are resolved and Patients among them pseudonymized."""
    obs = {
        "resourceType": "Observation",
        "id": "o9",
        "subject": {"reference": "urn:uuid:p1"},
        "code": {
            "coding": [
                {"system": "s", "code": "c"},
                {"system": "s", "code": "d", "extension": [{"valueReference": {"reference": "urn:uuid:p1"}}]},
            ]
        },
        "valueCoding": {"system": "s", "code": {"reference": "urn:uuid:p1"}},
        "valueQuantity": {"value": 1, "unit": {"reference": "urn:uuid:p1"}},
        "basedOn": [[{"reference": "urn:uuid:p1"}], {"reference": "urn:uuid:e1"}],
    }
    first, fused = _both(settings, obs, Policy())
    assert first == fused
    out = json.loads(fused)
    pseudo = "Patient/" + source_secrets(settings, "refs").patient("p1")
    assert out["subject"] == {"reference": pseudo}
    assert out["code"]["coding"][0] == {"system": "s", "code": "c"}
    assert out["code"]["coding"][1]["extension"] == [{"valueReference": {"reference": pseudo}}]
    assert out["valueCoding"]["code"] == {"reference": pseudo}
    assert out["valueQuantity"]["unit"] == {"reference": pseudo}
    assert out["basedOn"] == [[{"reference": pseudo}], {"reference": "Encounter/e1"}]
    assert "urn:uuid:" not in fused and '"p1"' not in fused


def test_a_patient_reference_in_a_coding_or_quantity_is_rewritten(settings: Settings) -> None:
    obs = {
        "resourceType": "Observation",
        "id": "o8",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "s", "code": "Patient/p1"}]},
        "valueCoding": {"system": "s", "code": "Patient/p1"},
        "valueQuantity": {"value": 1, "unit": "Patient/p1"},
    }
    out = json.loads(_both(settings, obs, Policy())[1])
    pseudo = "Patient/" + source_secrets(settings, "refs").patient("p1")
    assert out["code"]["coding"][0]["code"] == pseudo
    assert out["valueCoding"]["code"] == pseudo and out["valueQuantity"]["unit"] == pseudo


def _same_rows_either_way(settings: Settings, documents: list[tuple[str, bytes]]) -> int:
    """De-identify every resource of `documents` (name, JSON bytes) under each policy, resolved by
    the reader and resolved in the walk; assert identical rows; return how many were compared."""
    secrets = source_secrets(settings, "refs")
    n = 0
    for policy in POLICIES:
        first_index, fused_index = PatientIndex(), PatientIndex()
        for name, raw in documents:
            first = [i for i in fhir.read_json(Path(name), raw) if isinstance(i, FhirItem)]
            fused = [i for i in fhir.read_json(Path(name), raw, resolve=False) if isinstance(i, FhirItem)]
            assert len(first) == len(fused) and all(a.refs is None for a in first)
            for a, b in zip(first, fused, strict=True):
                x = orjson.dumps(deid_resource(a.resource, secrets, policy, first_index, TODAY))
                y = orjson.dumps(deid_resource(b.resource, secrets, policy, fused_index, TODAY, refs=b.refs))
                assert x == y, name
                n += 1
    return n


def test_synthetic_bundles_give_the_same_rows_either_way(settings: Settings, tmp_path: Path) -> None:
    """The synthetic Bundle hospital: every resource de-identified identically whether the reader or
    the walk resolves its references."""
    generate(tmp_path / "synth", hospitals=3, patients=60, seed=5)
    files = sorted((tmp_path / "synth").rglob("*.json"))
    assert files
    assert _same_rows_either_way(settings, [(str(f), f.read_bytes()) for f in files]) > 1000


def test_synthea_bundles_give_the_same_rows_either_way(settings: Settings) -> None:
    tgz = shared_path("data", "synthea", "synthea-r4-250-patients-bundles.tar.gz")
    if tgz is None:
        need("../shared/data/synthea is absent")
    with tarfile.open(tgz) as tar:
        bundles = (m for m in tar if m.isfile() and m.name.endswith(".json"))
        docs = [(m.name, tar.extractfile(m).read()) for m in itertools.islice(bundles, 25)]
    assert _same_rows_either_way(settings, docs) > 5000


def test_reader_leaves_references_to_a_gate_that_resolves(tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1"}},
            {
                "fullUrl": "urn:uuid:o1",
                "resource": {"resourceType": "Observation", "subject": {"reference": "urn:uuid:p1"}},
            },
        ],
    }
    p = tmp_path / "b.json"
    p.write_bytes(orjson.dumps(bundle))
    left = [i for i in fhir.read_json(p, resolve=False) if isinstance(i, FhirItem)]
    assert left[1].resource["subject"] == {"reference": "urn:uuid:p1"}
    assert left[1].resource["id"] == "o1"  # the entry's uuid as its id, as when the reader resolves
    assert left[1].refs == {"urn:uuid:p1": "Patient/p1", "urn:uuid:o1": "Observation/o1"}
    done = [i for i in fhir.read_json(p) if isinstance(i, FhirItem)]
    assert done[1].resource["subject"] == {"reference": "Patient/p1"} and done[1].refs is None


def test_hub_ingest_lands_no_bundle_reference_unresolved(settings: Settings, tmp_path: Path) -> None:
    gate = make_gate(settings, "hosp-r")
    assert gate_resolves_refs(gate) and not gate_resolves_refs(lambda item: item)
    inp = tmp_path / "in"
    generate(inp, hospitals=3, patients=30, seed=3)
    folders = sorted(d / "fhir" for d in inp.iterdir() if (d / "fhir").is_dir())
    assert any(folders[i].rglob("*.json") for i in range(len(folders)))  # one hospital sends Bundles
    s = ingest_paths(settings, "hosp-r", folders, progress=False)
    assert s.quarantined == 0, s.problems[:3]
    import duckdb

    rows = duckdb.sql(
        f"SELECT resource FROM read_parquet('{settings.lake_dir}/fhir/**/*.parquet', union_by_name=true)"
    ).fetchall()
    assert rows
    assert not any('"reference":"urn:uuid:' in r[0] for r in rows)


def test_a_gate_that_claims_to_resolve_but_does_not_is_caught_at_the_lake(
    settings: Settings, tmp_path: Path
) -> None:
    """The writer refuses an item still carrying its Bundle's map: the entry is quarantined with
    the reason, the rest of the batch lands."""

    def lazy(item):  # noqa: ANN001, ANN202 - a broken gate
        return item

    lazy.resolves_bundle_references = True  # type: ignore[attr-defined]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1"}},
            {"resource": {"resourceType": "Condition", "id": "c1", "subject": {"reference": "urn:uuid:p1"}}},
        ],
    }
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "b.json").write_bytes(orjson.dumps(bundle))
    (inp / "o.ndjson").write_bytes(orjson.dumps({"resourceType": "Organization", "id": "org1"}) + b"\n")
    s = ingest_paths(settings, "hosp-x", [inp], gate=lazy, progress=False)
    assert s.counts["Organization"].accepted == 1
    assert s.counts["Patient"].quarantined == 1 and s.counts["Condition"].quarantined == 1
    assert any("references unresolved" in p.reason for p in s.problems)


@pytest.mark.parametrize("resolve", [True, False])
def test_ndjson_bundle_lines_follow_the_same_rule(tmp_path: Path, resolve: bool) -> None:
    line = {
        "resourceType": "Bundle",
        "entry": [
            {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1"}},
            {
                "fullUrl": "urn:uuid:o1",
                "resource": {
                    "resourceType": "Observation",
                    "id": "o1",
                    "subject": {"reference": "urn:uuid:p1"},
                },
            },
        ],
    }
    p = tmp_path / "b.ndjson"
    p.write_bytes(orjson.dumps(line) + b"\n")
    items = [i for i in fhir.read_ndjson(p, resolve=resolve) if isinstance(i, FhirItem)]
    want = "Patient/p1" if resolve else "urn:uuid:p1"
    assert items[1].resource["subject"]["reference"] == want
    assert (items[1].refs is None) is resolve
