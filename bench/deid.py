"""Benchmark: DICOM de-identification, medhub against dicognito and deid (pydicom/deid), same run.

    nice -n 10 .venv/bin/python bench/deid.py [--quick] [--files N] [--keep DIR]

Corpus 1 (synthetic, with an answer key): patients with two or three studies each, series whose
instances reference each other (Referenced Image Sequence, Source Image Sequence), identifying data
planted in standard tags, private tags, nested sequences and free text, and a share of ultrasound
images flagged with burned-in annotation. Corpus 2: ../shared/data/dicom (public samples), whose
answer key is each file's own patient name and ids.

Per tool: leaks (planted strings found in any written file, raw bytes or decoded text; goal 0),
broken references (UIDs shared by two places before that are no longer shared, or gone; goal 0),
invalid outputs (no re-read, invalid or missing UIDs, file meta not matching the SOP Instance UID,
pixel data changed, Type 2 patient/study attributes dropped; goal 0), intervals kept (share of a
patient's date pairs whose day difference survives), at-risk images passed (burned-in text risk
not held), files per second, and the ratio to a bare pydicom read-and-write loop (goal >= 0.7 for
medhub).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import random
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from medhub.config import load_settings
from medhub.ingest.records import HeldForReview
from medhub.privacy.deid.common import Policy, SourceSecrets
from medhub.privacy.deid.dicom import _matcher, _union, burned_in_risk, deid_dataset
from medhub.privacy.deid.text import _patterns, clear_text_cache
from medhub.privacy.keys import KeyStore
from medhub.shared_data import shared_path

# This file is named like the `deid` package it measures: keep its folder off the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

CT = "1.2.840.10008.5.1.4.1.1.2"
US = "1.2.840.10008.5.1.4.1.1.6.1"
FAMILY = ["KIM", "LEE", "PARK", "CHOI", "JUNG", "KANG", "CHO", "YOON", "JANG", "LIM", "HAN", "SHIN"]
GIVEN = ["MINJUN", "SEOYEON", "JIHO", "HAYOON", "DOYUN", "SUAH", "JIWOO", "YEJIN", "HYUNWOO", "EUNJI"]
HANGUL_FAMILY = {
    "KIM": "김",
    "LEE": "이",
    "PARK": "박",
    "CHOI": "최",
    "JUNG": "정",
    "KANG": "강",
    "CHO": "조",
    "YOON": "윤",
    "JANG": "장",
    "LIM": "임",
    "HAN": "한",
    "SHIN": "신",
}
HANGUL_GIVEN = {
    "MINJUN": "민준",
    "SEOYEON": "서연",
    "JIHO": "지호",
    "HAYOON": "하윤",
    "DOYUN": "도윤",
    "SUAH": "수아",
    "JIWOO": "지우",
    "YEJIN": "예진",
    "HYUNWOO": "현우",
    "EUNJI": "은지",
}
TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


@dataclass
class Truth:
    """The answer key of one input file."""

    planted: list[str]
    patient: str
    dates: dict[str, str] = field(default_factory=dict)  # keyword -> DA value
    at_risk: bool = False


# ---------------------------------------------------------------- synthetic corpus


def _person(rng: random.Random, i: int) -> dict[str, str]:
    fam, giv = rng.choice(FAMILY), rng.choice(GIVEN)
    birth = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 70 * 365))
    return {
        "family": fam,
        "given": giv,
        "hangul": HANGUL_FAMILY[fam] + HANGUL_GIVEN[giv],
        "mrn": f"H{rng.randrange(10**7, 10**8)}",
        "rrn": f"{birth:%y%m%d}-{rng.choice('12')}{rng.randrange(10**5, 10**6)}",
        "phone": f"010-{rng.randrange(1000, 9999)}-{rng.randrange(1000, 9999)}",
        "birth": f"{birth:%Y%m%d}",
        "street": rng.choice(["세종대로", "테헤란로", "올림픽로", "해운대로"]) + f" {rng.randrange(1, 300)}",
        "idx": str(i),
    }


def _instance(
    p: dict,
    study: dict,
    series_uid: str,
    number: int,
    rng: random.Random,
    size: int,
    ref: str | None,
    src: str | None,
    at_risk: bool,
) -> tuple[Dataset, list[str]]:
    ds = Dataset()
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 149"]
    ds.SOPClassUID = US if at_risk else CT
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study["uid"]
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = study["frame"]
    ds.Modality = "US" if at_risk else "CT"
    ds.BurnedInAnnotation = "YES" if at_risk else "NO"
    ds.PatientName = f"{p['family']}^{p['given']}={p['hangul'][0]}^{p['hangul'][1:]}"
    ds.PatientID = p["mrn"]
    ds.PatientBirthDate = p["birth"]
    ds.PatientSex = rng.choice("MF")
    ds.PatientAge = "055Y"
    ds.PatientAddress = f"서울특별시 종로구 {p['street']}"
    ds.PatientTelephoneNumbers = p["phone"]
    ds.OtherPatientIDs = p["rrn"]
    other = Dataset()
    other.PatientID = p["rrn"]
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.AccessionNumber = study["accession"]
    ds.StudyID = study["id"]
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study["date"]
    ds.StudyTime, ds.ContentTime = "093000", f"0931{number % 60:02d}"
    ds.InstitutionName = "Example University Hospital"
    ds.ReferringPhysicianName = "SONG^JAEHO"
    ds.OperatorsName = "AHN^MIRAE"
    ds.StationName = "CT02"
    ds.StudyDescription = f"CT CHEST {p['family']} {p['mrn']}"
    ds.SeriesDescription = "AXIAL"
    ds.ImageComments = f"{p['hangul']} ({p['rrn']}) tel {p['phone']}"
    ds.InstanceNumber = number
    req = Dataset()
    req.AccessionNumber = study["accession"]
    req.RequestedProcedureID = f"RP{p['mrn']}"
    req.ScheduledProcedureStepDescription = f"follow-up {p['given']} {p['family']}"
    ds.RequestAttributesSequence = Sequence([req])
    if ref:
        item = Dataset()
        item.ReferencedSOPClassUID = CT
        item.ReferencedSOPInstanceUID = ref
        ds.ReferencedImageSequence = Sequence([item])
    if src:
        item = Dataset()
        item.ReferencedSOPClassUID = CT
        item.ReferencedSOPInstanceUID = src
        ds.SourceImageSequence = Sequence([item])
    block = ds.private_block(0x0011, "HOSPITAL PACS 2", create=True)
    block.add_new(0x01, "LO", f"{p['family']} {p['given']}")
    block.add_new(0x02, "SH", p["mrn"])
    inner = Dataset()
    inner.add_new(0x00100010, "PN", f"{p['family']}^{p['given']}")
    inner.add_new(0x00100030, "DA", p["birth"])
    block.add_new(0x03, "SQ", Sequence([inner]))
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = rng.randbytes(size * size * 2)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    planted = [
        p["mrn"],
        p["rrn"],
        p["rrn"].replace("-", ""),
        p["phone"],
        p["birth"],
        p["hangul"],
        p["street"],
        f"{p['family']}^{p['given']}",
        f"{p['family']} {p['given']}",
        f"{p['given']} {p['family']}",
        study["accession"],
        "SONG^JAEHO",
        "AHN^MIRAE",
        "Example University Hospital",
    ]
    return ds, planted


def synthetic_corpus(out: Path, n_files: int, seed: int = 7, size: int = 512) -> dict[str, Truth]:
    rng = random.Random(seed)
    truth: dict[str, Truth] = {}
    i = 0
    while len(truth) < n_files:
        p = _person(rng, i)
        i += 1
        first = date(2015, 1, 1) + timedelta(days=rng.randrange(0, 3000))
        for s in range(rng.choice((2, 3))):
            study = {
                "uid": generate_uid(),
                "frame": generate_uid(),
                "id": f"S{rng.randrange(10**4, 10**5)}",
                "accession": f"A{rng.randrange(10**8, 10**9)}",
                "date": f"{first + timedelta(days=s * rng.randrange(20, 400)):%Y%m%d}",
            }
            series = generate_uid()
            prev: str | None = None
            first_uid: str | None = None
            for k in range(rng.choice((3, 4, 5))):
                at_risk = rng.random() < 0.04
                ds, planted = _instance(
                    p, study, series, k + 1, rng, size, prev, first_uid if k >= 2 else None, at_risk
                )
                rel = f"p{p['idx']}/st{s}/{k:03d}.dcm"
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                ds.save_as(out / rel, enforce_file_format=True)
                truth[rel] = Truth(planted, p["mrn"], {"StudyDate": study["date"]}, at_risk)
                prev = str(ds.SOPInstanceUID)
                first_uid = first_uid or prev
                if len(truth) >= n_files:
                    return truth
    return truth


def shared_corpus(root: Path) -> dict[str, Truth]:
    truth = {}
    for f in sorted(root.rglob("*.dcm")):
        try:
            ds = _read(f)
        except Exception:  # noqa: BLE001 - a sample pydicom cannot read is not part of the corpus
            continue
        planted = []
        for kw in (
            "PatientName",
            "PatientID",
            "OtherPatientIDs",
            "PatientBirthName",
            "PatientMotherBirthName",
        ):
            v = ds.get(kw)
            vals = v if isinstance(v, list | pydicom.multival.MultiValue) else [v]
            for x in vals:
                s = str(x or "").strip(" ^")
                if len(s) >= 4 and s.upper() not in ("ANONYMOUS", "ANONYMIZED"):
                    planted.append(s)
                    planted += [part for part in s.split("^") if len(part) >= 5]
        burned = str(ds.get("BurnedInAnnotation", "")).upper() == "YES"
        dates = {k: str(ds.get(k)) for k in ("StudyDate", "ContentDate") if ds.get(k)}
        truth[str(f.relative_to(root))] = Truth(
            sorted(set(planted)), str(ds.get("PatientID", "")), dates, burned
        )
    return truth


# ---------------------------------------------------------------- tools


def _read(path: Path) -> Dataset:
    try:
        return pydicom.dcmread(path)
    except pydicom.errors.InvalidDicomError:
        return pydicom.dcmread(path, force=True)


def _write(ds: Dataset, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        ds.save_as(path, enforce_file_format=True)
    except Exception:  # noqa: BLE001 - some tools leave no file meta: write as the tool would
        ds.save_as(path)


def bare_tool() -> Callable[[Path, Path], str | None]:
    def process(src: Path, dst: Path) -> str | None:
        _write(_read(src), dst)
        return None

    return process


def medhub_tool(work: Path) -> Callable[[Path, Path], str | None]:
    secrets = SourceSecrets(KeyStore(work / "medhub-keys"), "bench")
    policy = Policy()

    def process(src: Path, dst: Path) -> str | None:
        ds = _read(src)
        try:
            deid_dataset(ds, secrets, policy)
        except HeldForReview as exc:
            return str(exc)
        _write(ds, dst)
        return None

    return process


def dicognito_tool() -> Callable[[Path, Path], str | None]:
    from dicognito.anonymizer import Anonymizer

    anon = Anonymizer()  # one instance for the corpus: its mappings stay consistent across files

    def process(src: Path, dst: Path) -> str | None:
        ds = _read(src)
        anon.anonymize(ds)
        _write(ds, dst)
        return None

    return process


def deid_tool() -> Callable[[Path, Path], str | None]:
    from deid.dicom import replace_identifiers
    from deid.logger import bot

    logging.getLogger("deid").setLevel(logging.ERROR)
    bot.level = 0  # its default-recipe warning, once per file, would drown the report

    def process(src: Path, dst: Path) -> str | None:
        (ds,) = replace_identifiers(dicom_files=[str(src)], save=False)  # the default recipe
        _write(ds, dst)
        return None

    return process


TOOLS: dict[str, Callable[[Path], Callable[[Path, Path], str | None]]] = {
    "bare pydicom": lambda work: bare_tool(),
    "medhub": medhub_tool,
    "dicognito": lambda work: dicognito_tool(),
    "deid": lambda work: deid_tool(),
}


# ---------------------------------------------------------------- scoring


def _file_bytes(path: Path) -> bytes:
    return path.read_bytes()


def leaks(out: Path, truth: dict[str, Truth]) -> tuple[int, int]:
    """(planted items found, files with any) over written files."""
    items = files = 0
    for rel, t in truth.items():
        p = out / rel
        if not p.exists():
            continue
        raw = _file_bytes(p)
        try:
            ds = pydicom.dcmread(io.BytesIO(raw), force=True)
            text = " ".join(str(e.value) for e in ds.iterall() if e.VR not in ("OB", "OW", "SQ", "UN"))
        except Exception:  # noqa: BLE001
            text = ""
        found = 0
        for s in t.planted:
            if s.isdigit():  # an all-digit id counts only as a whole number, not inside a date or a UID
                hit = re.search(rf"(?<!\d){s}(?!\d)", text) is not None
                hit = hit or re.search(rf"(?<!\d){s}(?!\d)".encode(), raw) is not None
                found += hit
                continue
            hit = s in text
            for enc in ("utf-8", "euc-kr"):
                if hit:
                    break
                with contextlib.suppress(UnicodeEncodeError):
                    hit = s.encode(enc) in raw
            found += hit
        items += found
        files += found > 0
    return items, files


# UIDs that name a class or a coding scheme, not an instance: never references between instances.
_NAMING_UIDS = frozenset({0x00080016, 0x00081150, 0x0008010C, 0x0008010D, 0x00080117, 0x00080118, 0x00041510})


def _uid_paths(ds: Dataset, prefix: tuple = ()) -> dict[tuple, str]:
    out: dict[tuple, str] = {}
    for elem in ds:
        path = (*prefix, int(elem.tag))
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value or []):
                out.update(_uid_paths(item, (*path, i)))
        elif (
            elem.VR == "UI" and elem.value and int(elem.tag) not in _NAMING_UIDS and elem.tag.group != 0x0002
        ):
            v = str(elem.value)
            if not v.startswith("1.2.840.10008."):
                out[path] = v
    return out


def broken_references(src: Path, out: Path, truth: dict[str, Truth], held: dict[str, str]) -> tuple[int, int]:
    """(broken, total): UIDs that appear in two or more places in the input are references; each must
    map, in every place, to one shared value in the output (held files are left out)."""
    places: dict[str, list[tuple[str, tuple]]] = defaultdict(list)
    outs: dict[str, dict[tuple, str]] = {}
    for rel in truth:
        if rel in held:
            continue
        for path, uid in _uid_paths(_read(src / rel)).items():
            places[uid].append((rel, path))
        try:
            outs[rel] = _uid_paths(_read(out / rel))
        except Exception:  # noqa: BLE001
            outs[rel] = {}
    groups = [v for v in places.values() if len(v) >= 2]
    broken = 0
    for group in groups:
        vals = {outs[rel].get(path) for rel, path in group}
        if None in vals or len(vals) != 1:
            broken += 1
    return broken, len(groups)


def invalid_outputs(src: Path, out: Path, truth: dict[str, Truth]) -> tuple[int, Counter]:
    bad = 0
    why: Counter = Counter()
    for rel in truth:
        p = out / rel
        if not p.exists():
            continue
        problems = []
        try:
            ds = pydicom.dcmread(p)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"no re-read ({exc.__class__.__name__})")
            ds = None
        if ds is not None:
            orig = _read(src / rel)
            for kw in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
                v = str(ds.get(kw, "") or "")
                if not v or not UID(v).is_valid:
                    problems.append(f"{kw} missing or invalid")
            meta = getattr(ds, "file_meta", None)
            if meta is None or str(meta.get("MediaStorageSOPInstanceUID", "")) != str(
                ds.get("SOPInstanceUID", "")
            ):
                problems.append("file meta does not match SOP Instance UID")
            if "PixelData" in orig and (
                "PixelData" not in ds or ds.get_item(0x7FE00010).value != orig.get_item(0x7FE00010).value
            ):
                problems.append("pixel data changed or dropped")
            for kw in TYPE2:
                if kw in orig and kw not in ds:
                    problems.append(f"Type 2 {kw} dropped")
        if problems:
            bad += 1
            why.update(problems)
    return bad, why


def intervals_kept(src: Path, out: Path, truth: dict[str, Truth], held: dict[str, str]) -> tuple[int, int]:
    """(kept, total) over pairs of one patient's dates (across files and within one), different days.
    Files held for review are left out; a patient without an id is not a patient to group by."""
    by_patient: dict[str, list[tuple[date, date | None]]] = defaultdict(list)
    for rel, t in truth.items():
        if rel in held or not t.patient.strip():
            continue
        p = out / rel
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True) if p.exists() else None
        except Exception:  # noqa: BLE001
            ds = None
        for kw, v in t.dates.items():
            try:
                before = date(int(v[:4]), int(v[4:6]), int(v[6:8]))
            except ValueError:
                continue
            after = None
            w = str(ds.get(kw, "") or "") if ds is not None else ""
            try:
                after = date(int(w[:4]), int(w[4:6]), int(w[6:8]))
            except ValueError:
                after = None
            by_patient[t.patient].append((before, after))
    kept = total = 0
    for points in by_patient.values():
        for i in range(len(points)):
            for j in range(i + 1, len(points)):
                (b1, a1), (b2, a2) = points[i], points[j]
                if b1 == b2:
                    continue
                total += 1
                kept += a1 is not None and a2 is not None and (a2 - a1) == (b2 - b1)
    return kept, total


def score(name: str, src: Path, truth: dict[str, Truth], work: Path) -> dict:
    """Run one tool over the whole corpus once and score its output against the answer key."""
    out = work / name.replace(" ", "_")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    process = TOOLS[name](work / f"{name}-state".replace(" ", "_"))
    held: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rel in sorted(truth):
            reason = process(src / rel, out / rel)
            if reason:
                held[rel] = reason
    row: dict = {"tool": name, "files": len(truth), "held": len(held)}
    if name == "bare pydicom":
        return row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row["leaks"], row["leaky_files"] = leaks(out, truth)
        row["broken_refs"], row["refs"] = broken_references(src, out, truth, held)
        row["invalid"], row["invalid_why"] = invalid_outputs(src, out, truth)
        row["intervals_kept"], row["intervals"] = intervals_kept(src, out, truth, held)
    row["at_risk_passed"] = sum(1 for r, t in truth.items() if t.at_risk and (out / r).exists())
    return row


def timing(src: Path, timed: set[str], work: Path, repeat: int) -> dict[str, float]:
    """CPU seconds per tool over the `timed` files. Tools take turns file by file and each file keeps its
    best of `repeat` runs; CPU time (user + system, this process) rather than wall time, so that other
    processes on a shared machine distort the comparison as little as possible."""
    best: dict[str, dict[str, float]] = {name: {} for name in TOOLS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(repeat):  # every run starts cold: fresh tools, no cached per-patient state
            _matcher.cache_clear()
            _union.cache_clear()
            clear_text_cache()
            _patterns.cache_clear()
            procs = {name: TOOLS[name](work / f"timing-{r}-{name}".replace(" ", "_")) for name in TOOLS}
            for rel in sorted(timed):
                for name, process in procs.items():
                    dst = work / "timing" / name.replace(" ", "_") / rel
                    t0 = time.process_time()
                    process(src / rel, dst)
                    spent = time.process_time() - t0
                    best[name][rel] = min(best[name].get(rel, spent), spent)
    shutil.rmtree(work / "timing", ignore_errors=True)
    return {name: sum(v.values()) for name, v in best.items()}


def evaluate(src: Path, truth: dict[str, Truth], work: Path, repeat: int) -> list[dict]:
    timed = timed_files(src, truth)
    rows = [score(name, src, truth, work) for name in TOOLS]
    seconds = timing(src, timed, work, repeat)
    for row in rows:
        row["timed_files"] = len(timed)
        row["seconds"] = seconds[row["tool"]]
        row["files_per_s"] = len(timed) / seconds[row["tool"]]
    return rows


def timed_files(src: Path, truth: dict[str, Truth]) -> set[str]:
    """Files with no burned-in text risk (medhub writes them all): the common ground for speed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {rel for rel in truth if burned_in_risk(_read(src / rel)) is None}


def report(title: str, rows: list[dict]) -> None:
    bare = next(r for r in rows if r["tool"] == "bare pydicom")
    print(f"\n## {title}\n")
    print(
        "| tool | files/CPU-s | x bare | leaks (files) | broken refs | invalid | intervals kept "
        "| at-risk passed | held |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = r["files_per_s"] / bare["files_per_s"]
        if r["tool"] == "bare pydicom":
            print(f"| bare pydicom read+write | {r['files_per_s']:.1f} | 1.00 | | | | | | |")
            continue
        print(
            f"| {r['tool']} | {r['files_per_s']:.1f} | {ratio:.2f} | {r['leaks']} ({r['leaky_files']}) | "
            f"{r['broken_refs']}/{r['refs']} | {r['invalid']} | {r['intervals_kept']}/{r['intervals']} | "
            f"{r['at_risk_passed']} | {r['held']} |"
        )
    med = next(r for r in rows if r["tool"] == "medhub")
    ratio = med["files_per_s"] / bare["files_per_s"]
    print(
        f"\nspeed over {med['files'] - med['held']} files no tool should hold: medhub / bare pydicom = "
        f"{ratio:.2f} (goal >= 0.7: {'met' if ratio >= 0.7 else 'NOT met'})"
    )
    for r in rows:
        if r.get("invalid_why"):
            top = ", ".join(f"{k} ({v})" for k, v in r["invalid_why"].most_common(4))
            print(f"\n{r['tool']} invalid outputs: {top}")


def fhir_gate_cost(bundles: int) -> None:
    """The gate's cost on FHIR (for ingestion's budget): CPU time per resource of the Synthea sample,
    de-identification against a bare orjson parse of the same bundles."""
    import tarfile

    import orjson

    from medhub.privacy.deid.fhir import PatientIndex, deid_resource

    tar_path = shared_path("data", "synthea", "synthea-r4-250-patients-bundles.tar.gz")
    if tar_path is None:
        print("\n../shared/data/synthea is absent: FHIR gate cost skipped")
        return
    raw: list[bytes] = []
    with tarfile.open(tar_path) as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".json") and len(raw) < bundles:
                fh = tar.extractfile(member)
                if fh is not None:
                    raw.append(fh.read())
    t0 = time.process_time()
    parsed = [orjson.loads(b) for b in raw]
    parse_s = time.process_time() - t0
    resources = []
    for b in parsed:  # resolve urn:uuid references to Type/id, as the reader does (not timed)
        entries = [e for e in b.get("entry", []) if isinstance(e.get("resource"), dict)]
        text = orjson.dumps(entries)
        for e in entries:
            if str(e.get("fullUrl", "")).startswith("urn:uuid:"):
                res = e["resource"]
                text = text.replace(e["fullUrl"].encode(), f"{res['resourceType']}/{res.get('id')}".encode())
        resources += [e["resource"] for e in orjson.loads(text)]
    with tempfile.TemporaryDirectory() as keys:
        secrets, index, policy = SourceSecrets(KeyStore(Path(keys)), "bench"), PatientIndex(), Policy()
        t0 = time.process_time()
        for r in resources:
            deid_resource(r, secrets, policy, index)
        deid_s = time.process_time() - t0
    n = len(resources)
    print(f"\n## FHIR gate cost (Synthea sample, {len(raw)} bundles, {n} resources)\n")
    print("| step | CPU us per resource |\n|---|---|")
    print(f"| orjson parse (bare) | {1e6 * parse_s / n:.1f} |")
    print(f"| medhub FHIR de-identification | {1e6 * deid_s / n:.1f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small corpus (40 files, 256x256)")
    ap.add_argument("--files", type=int, default=None, help="synthetic files (default 400, --quick 40)")
    ap.add_argument(
        "--repeat", type=int, default=None, help="timed runs per file and tool, best kept (default 3)"
    )
    ap.add_argument("--keep", type=Path, default=None, help="keep inputs and outputs here")
    args = ap.parse_args(argv)
    n = args.files or (40 if args.quick else 400)
    size = 256 if args.quick else 512
    repeat = args.repeat or 3
    load_settings()  # fail early on bad settings, as the CLI would
    work = args.keep or Path(tempfile.mkdtemp(prefix="medhub-bench-deid-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        src = work / "synthetic"
        shutil.rmtree(src, ignore_errors=True)
        truth = synthetic_corpus(src, n, size=size)
        print(
            f"synthetic corpus: {len(truth)} files ({size}x{size} 16-bit), "
            f"{sum(len(t.planted) for t in truth.values())} planted items, "
            f"{sum(t.at_risk for t in truth.values())} at risk of burned-in text"
        )
        rows = evaluate(src, truth, work / "out-synthetic", repeat)
        report(f"Synthetic corpus, {len(truth)} files", rows)
        shared = shared_path("data", "dicom")
        if shared is None:
            print("\n../shared/data/dicom is absent: public-sample corpus skipped")
        else:
            struth = shared_corpus(shared)
            srows = evaluate(shared, struth, work / "out-shared", repeat)
            report(f"../shared/data/dicom, {len(struth)} files", srows)
        fhir_gate_cost(10 if args.quick else 60)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
