"""The public samples in ../shared/data ingest through the hub's gate: every file lands or is
quarantined with a reason a person would agree with, and no patient name reaches the lake."""

from __future__ import annotations

import tarfile
import warnings
from pathlib import Path

import orjson
import pydicom
import pytest

from conftest import shared_sub
from medhub.config import Settings
from medhub.ingest.plan import expand
from medhub.lake.intake import ingest_paths
from medhub.lake.scan import scan_lake
from medhub.store import open_store, ops

pytestmark = [pytest.mark.shared, pytest.mark.slow]

# Why a public sample file may be quarantined (a person would agree with each).
ACCEPTABLE = (
    "unrecognized format",  # README.md files beside the samples
    "held for review",  # the gate's burned-in text policy (ultrasound, secondary capture, BurnedInAnnotation)
    "file(s) named in the header are missing",  # the partial MIMIC multi-segment record
    "part of",
)


def _synthea_subset(tmp: Path, n: int = 20) -> Path:
    out = tmp / "synthea"
    out.mkdir()
    tgz = shared_sub("data", "synthea", "synthea-r4-250-patients-bundles.tar.gz")
    with tarfile.open(tgz) as tar:
        taken = 0
        for m in tar:
            if m.isfile() and m.name.endswith(".json"):
                (out / Path(m.name).name).write_bytes(tar.extractfile(m).read())
                taken += 1
                if taken == n:
                    break
    return out


def _patient_names_fhir(folder: Path) -> set[str]:
    names = set()
    for f in folder.glob("*.json"):
        for e in orjson.loads(f.read_bytes())["entry"]:
            r = e["resource"]
            if r["resourceType"] == "Patient":
                for nm in r.get("name", []):
                    names |= {p for p in [nm.get("family"), *nm.get("given", [])] if p and len(p) >= 5}
    return names


def _patient_names_dicom(folder: Path) -> set[str]:
    names = set()
    for f in folder.rglob("*.dcm"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(f, force=True, stop_before_pixels=True)
        pn = str(ds.get("PatientName", "") or "")
        if pn:
            names |= {c.strip() for c in pn.replace("=", "^").split("^") if len(c.strip()) >= 5}
    return names


def _accounted_for(settings: Settings, paths: list[Path]) -> dict[str, str]:
    engine = open_store(settings.database_url)
    seen = {f["path"]: f["status"] for f in ops.list_files(engine)}
    reasons = {}
    for q in ops.list_quarantine(engine):
        reasons.setdefault(q["file"], q["reason"])
    engine.dispose()
    missing = [str(p) for p in paths if str(p) not in seen]
    assert not missing, f"files neither landed nor quarantined: {missing}"
    return {p: reasons.get(p, "") for p, status in seen.items() if status in ("quarantined", "partial")}


def test_public_samples_land_or_are_quarantined_and_no_name_reaches_the_lake(
    settings: Settings, tmp_path: Path
) -> None:
    synthea = _synthea_subset(tmp_path)
    dicom = shared_sub("data", "dicom")
    bio = shared_sub("data", "biosignals")
    s1 = ingest_paths(settings, "synthea", [synthea])
    s2 = ingest_paths(settings, "dicom-samples", [dicom])
    s3 = ingest_paths(settings, "biosignal-samples", [bio])
    assert s1.quarantined == 0 and s1.counts["Patient"].accepted == 20
    assert s1.counts["Observation"].accepted > 1000
    assert s2.counts["dicom"].accepted >= 10
    assert s3.counts["wfdb"].accepted >= 2 and s3.counts["edf"].accepted == 2

    files = expand([synthea, dicom, bio])
    bad = _accounted_for(settings, files)
    for path, reason in bad.items():
        assert reason, f"{path} quarantined without a reason"
        assert any(a in reason for a in ACCEPTABLE), f"{path}: unexpected reason {reason!r}"

    # placeholder words that are not names of anyone (they also occur in clinical text)
    generic = {"First", "Firstname", "Lastname", "Anonymous", "Perfusion", "MCA Stroke"}
    names = (_patient_names_fhir(synthea) | _patient_names_dicom(dicom)) - generic
    assert len(names) > 30
    leaks = scan_lake(settings.lake_dir, names)
    assert not leaks, f"patient names in the lake: {leaks}"
