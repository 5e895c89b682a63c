"""The reader's shape checks of a resource: its resourceType and id, as FHIR defines them."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from medhub.ingest.fhir import check_resource

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR R4 id, whole value
_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")  # a resource type name's shape
_CHARS = st.text(alphabet="aZ09-._ \n/é٢P", max_size=70)


@given(_CHARS)
def test_ids_are_checked_as_fhir_defines_them(rid: str) -> None:
    problem = check_resource({"resourceType": "Observation", "id": rid})
    assert (problem is None) == (bool(rid) and _ID.fullmatch(rid) is not None)


@given(_CHARS)
def test_type_names_are_checked_by_shape(rtype: str) -> None:
    problem = check_resource({"resourceType": rtype, "id": "a1"})
    assert (problem is None) == (bool(rtype) and _TYPE.fullmatch(rtype) is not None)


def test_a_trailing_newline_is_no_part_of_a_valid_id_or_type() -> None:
    assert check_resource({"resourceType": "Patient\n", "id": "a"}) is not None
    assert "is not a valid FHIR id" in str(check_resource({"resourceType": "Patient", "id": "a\n"}))
    assert check_resource({"resourceType": "Patient", "id": "-.-"}) is None
    assert check_resource({"resourceType": "Patient", "id": "x" * 65}) is not None
