"""Planning a batch: expand directories, detect each file's format, and group a WFDB record's
files (header, signal files, segment headers, annotations) into one unit of work."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from medhub.ingest import detect
from medhub.ingest.biosignal import wfdb_members


@dataclass
class Unit:
    """One unit of work: a primary file (read by one reader) and the files that travel with it."""

    path: Path
    format: str
    reason: str | None = None  # set when the format is unknown
    members: list[Path] = field(default_factory=list)
    member_problem: str | None = None


def expand(paths: Iterable[Path | str]) -> list[Path]:
    """Files under the given paths (directories walked recursively, hidden files skipped), in order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(
                f
                for f in p.rglob("*")
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
        else:
            out.append(p)
    return list(dict.fromkeys(out))


def plan(paths: Iterable[Path | str]) -> list[Unit]:
    """Units of work for `paths`; a file that belongs to a WFDB record given in the same batch is
    carried by that record's unit, not read on its own."""
    files = expand(paths)
    units: list[Unit] = []
    claimed: set[Path] = set()
    missing_files: list[Path] = []
    for f in files:
        if not f.exists():
            missing_files.append(f)
            continue
        try:
            s = detect.sniff(f)
        except OSError as exc:
            units.append(Unit(f, detect.UNKNOWN, f"cannot be read: {exc.strerror or exc}"))
            continue
        u = Unit(f, s.format, s.reason)
        if s.format == detect.WFDB:
            u.members, u.member_problem = wfdb_members(f)
        units.append(u)
    # Claim member files for the outermost records first (a multi-segment record claims its segments).
    for u in sorted((u for u in units if u.format == detect.WFDB), key=lambda u: -len(u.members)):
        if u.path in claimed:
            continue
        u.members = [m for m in u.members if m not in claimed]
        claimed.update(u.members)
    units = [u for u in units if u.path not in claimed]
    for f in missing_files:
        units.append(Unit(f, detect.UNKNOWN, "file does not exist"))
    # Patients first, then the rest of FHIR, then images and signals: the gate cleans free text
    # (FHIR narrative, DICOM descriptions, signal headers) against the identifiers of the patients
    # it has seen, so it must see the Patient resources first. Bulk Data names each NDJSON file by
    # its resource type; Bundles carry their Patient inside. The sort is stable.
    units.sort(key=_order)
    return units


def _order(u: Unit) -> int:
    if u.format == detect.NDJSON and u.path.name.startswith("Patient"):
        return 0
    if u.format in (detect.NDJSON, detect.JSON):
        return 1
    return 2
