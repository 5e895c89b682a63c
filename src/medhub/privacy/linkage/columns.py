"""Which input column is which identity field, when a file comes without an explicit mapping
(common export names: FEBRL's, and the usual English ones)."""

from __future__ import annotations

from collections.abc import Iterable

# Column name (lower case) -> identity field of medhub.privacy.linkage.tokens.INPUT_FIELDS.
_ALIASES = {
    "surname": "family_name",
    "last_name": "family_name",
    "family_name": "family_name",
    "first_name": "given_name",
    "given_name": "given_name",
    "family_name_roman": "family_name_roman",
    "given_name_roman": "given_name_roman",
    "dob": "birth_date",
    "date_of_birth": "birth_date",
    "birth_date": "birth_date",
    "birthdate": "birth_date",
    "soc_sec_id": "rrn",
    "ssn": "rrn",
    "rrn": "rrn",
    "sex": "sex",
    "gender": "sex",
    "phone": "phone",
    "phone_number": "phone",
    "telephone": "phone",
    "address": "address",
    "postcode": "postcode",
    "zip": "postcode",
    "postal_code": "postcode",
}


def guess_mapping(columns: Iterable[str]) -> dict[str, str]:
    """{column: identity field} for the columns whose names are known aliases."""
    return {c: _ALIASES[c.lower()] for c in columns if c.lower() in _ALIASES}
