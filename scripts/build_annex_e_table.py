"""Build medhub's compact PS3.15 Annex E table from the machine-readable standard.

    .venv/bin/python scripts/build_annex_e_table.py [SOURCE_JSON] [OUT_JSON]

SOURCE_JSON defaults to ../shared/conformance/dicom-ps3.15-annex-e/confidentiality_profile_attributes.json
(the Innolitics export of Table E.1-1); OUT_JSON to src/medhub/privacy/deid/annex_e_table.json.
The output keeps, per attribute, the basic-profile action and the actions of the options that
change it; tests/test_deid_annex_e.py checks that the packaged table agrees with the source.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = (
    REPO.parent / "shared/conformance/dicom-ps3.15-annex-e/confidentiality_profile_attributes.json"
)
DEFAULT_OUT = REPO / "src/medhub/privacy/deid/annex_e_table.json"

OPTION_KEYS = (
    "rtnSafePrivOpt",
    "rtnUIDsOpt",
    "rtnDevIdOpt",
    "rtnInstIdOpt",
    "rtnPatCharsOpt",
    "rtnLongFullDatesOpt",
    "rtnLongModifDatesOpt",
    "cleanDescOpt",
    "cleanStructContOpt",
    "cleanGraphOpt",
)
# Rows whose tag is a pattern, not one attribute: the engine handles them by rule.
PATTERN_IDS = {
    "ggggeeee-where-gggg-is-odd": "private",
    "50xxxxxx": "curve",
    "60xx3000": "overlay-data",
    "60xx4000": "overlay-comments",
}


def build(rows: list[dict], source_sha256: str) -> dict:
    """The compact table: {"attributes": {"GGGGEEEE": [name, basic, {option: action}]}, "patterns": ...}."""
    attributes: dict[str, list] = {}
    patterns: dict[str, list] = {}
    for row in rows:
        opts = {k: row[k] for k in OPTION_KEYS if k in row}
        entry = [" ".join(row["name"].split()), row["basicProfile"], opts]
        rid = row["id"].lower()
        if rid in PATTERN_IDS:
            patterns[PATTERN_IDS[rid]] = entry
            continue
        if len(rid) != 8 or any(c not in "0123456789abcdef" for c in rid):
            raise ValueError(f"unexpected Annex E row id {row['id']!r} ({row['name']})")
        if rid.upper() in attributes:
            raise ValueError(f"duplicate Annex E row for {row['tag']}")
        attributes[rid.upper()] = entry
    return {
        "source": "DICOM PS3.15 Annex E Table E.1-1 (innolitics/dicom-standard export, edition 2024b-2024e)",
        "source_sha256": source_sha256,
        "attributes": dict(sorted(attributes.items())),
        "patterns": dict(sorted(patterns.items())),
    }


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    out = Path(argv[2]) if len(argv) > 2 else DEFAULT_OUT
    raw = source.read_bytes()
    table = build(json.loads(raw), hashlib.sha256(raw).hexdigest())
    text = json.dumps(table, ensure_ascii=False, separators=(",", ":"), sort_keys=False)
    # one attribute per line: compact, yet diffs stay readable
    text = text.replace('],"', '],\n"')
    out.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {out} ({len(table['attributes'])} attributes, {len(table['patterns'])} patterns)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
