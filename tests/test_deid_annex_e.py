"""The packaged Annex E table agrees with the machine-readable standard, and the policy reads it right."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from conftest import shared_sub
from medhub.privacy.deid.annex_e import actions_for, apply_options, load_table, method_codes
from medhub.privacy.deid.common import Policy

REPO = Path(__file__).resolve().parents[1]


def test_packaged_table_matches_the_standard() -> None:
    src = shared_sub("conformance", "dicom-ps3.15-annex-e", "confidentiality_profile_attributes.json")
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import build_annex_e_table as builder
    finally:
        sys.path.pop(0)
    raw = src.read_bytes()
    rebuilt = builder.build(json.loads(raw), hashlib.sha256(raw).hexdigest())
    packaged = json.loads((REPO / "src/medhub/privacy/deid/annex_e_table.json").read_text("utf-8"))
    assert packaged == rebuilt
    rows = json.loads(raw)
    table = load_table()
    assert len(table.attributes) + len(table.patterns) == len(rows)
    for row in rows:  # every row's basic action and options, independently of the builder
        if len(row["id"]) == 8 and all(c in "0123456789abcdef" for c in row["id"]):
            _name, basic, opts = table.attributes[int(row["id"], 16)]
            assert basic == row["basicProfile"]
            assert opts == {k: v for k, v in row.items() if k.endswith("Opt")}


def test_policy_actions() -> None:
    acts = actions_for(Policy())
    assert acts[0x00100010] == "Z"  # Patient's Name
    assert acts[0x00100020] == "Z/D"  # Patient ID (resolved by the engine)
    assert acts[0x00080020] == "C"  # Study Date: modified dates
    assert acts[0x00101010] == "K"  # Patient's Age: patient characteristics
    assert acts[0x00181000] == "K"  # Device Serial Number: device identity
    assert acts[0x0008103E] == "C"  # Series Description: clean descriptors
    assert acts[0x00080018] == "U"  # SOP Instance UID
    assert acts[0x00100030] == "Z"  # Patient's Birth Date: no option retains it
    basic = actions_for(
        Policy(
            shift_dates=False,
            retain_patient_characteristics=False,
            retain_device_identity=False,
            clean_descriptors=False,
        )
    )
    assert basic[0x00080020] == "Z" and basic[0x00101010] == "X" and basic[0x0008103E] == "X"
    assert (
        apply_options("X", {"rtnPatCharsOpt": "K", "cleanDescOpt": "C"}, ("rtnPatCharsOpt", "cleanDescOpt"))
        == "C"
    )


def test_method_codes_are_cid_7050() -> None:
    from pydicom.sr.codedict import codes

    for code, meaning in method_codes(Policy(retain_safe_private=True)):
        matches = [c for c in codes.DCM.dir() if getattr(codes.DCM, c).value == code]
        assert matches, code
        assert getattr(codes.DCM, matches[0]).meaning == meaning
