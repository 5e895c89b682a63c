"""De-identify a folder of DICOM files into another, keeping each file's relative path.

The engine is the gate's (`deid.dicom`); this module only walks, reads, writes and reports, so
that a site can check its output file by file before sending anything. Held files (burned-in
text risk), files that are not DICOM (skipped) and unreadable ones (failed) are listed with their
reason and not written.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pydicom

from medhub.ingest.records import HeldForReview
from medhub.privacy.deid.common import Policy, SourceSecrets
from medhub.privacy.deid.dicom import deid_dataset, read_dicom, structural_problem


@dataclass
class FileResult:
    path: str  # relative to the input folder
    status: Literal["written", "held", "skipped", "failed"]
    reason: str = ""
    changes: Counter = field(default_factory=Counter)


def input_files(in_dir: Path, out_dir: Path) -> Iterator[Path]:
    """Every regular file under in_dir (sorted), leaving out anything under out_dir."""
    out = out_dir.resolve()
    for root, dirs, files in os.walk(in_dir):
        dirs.sort()
        if Path(root).resolve() == out or out in Path(root).resolve().parents:
            dirs[:] = []
            continue
        for name in sorted(files):
            yield Path(root) / name


def deid_file(src: Path, dst: Path, secrets: SourceSecrets, policy: Policy) -> FileResult:
    rel = str(src)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = read_dicom(str(src))
    except pydicom.errors.InvalidDicomError as exc:
        return FileResult(rel, "skipped", f"not a DICOM file: {exc}")
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, the batch goes on
        return FileResult(rel, "failed", f"not readable as DICOM: {exc.__class__.__name__}: {exc}")
    problem = structural_problem(ds)
    if problem:
        return FileResult(rel, "failed", problem)
    changes: Counter = Counter()
    try:
        deid_dataset(ds, secrets, policy, changes)
    except HeldForReview as held:
        return FileResult(rel, "held", str(held))
    except Exception as exc:  # noqa: BLE001
        return FileResult(rel, "failed", f"could not be de-identified: {exc.__class__.__name__}: {exc}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.save_as(tmp, enforce_file_format=True)
        os.replace(tmp, dst)
    except Exception as exc:  # noqa: BLE001
        tmp.unlink(missing_ok=True)
        return FileResult(rel, "failed", f"could not be written: {exc.__class__.__name__}: {exc}")
    return FileResult(rel, "written", "", changes)


def deid_tree(
    in_dir: Path,
    out_dir: Path,
    secrets: SourceSecrets,
    policy: Policy,
    on_file: Callable[[FileResult], None] | None = None,
) -> list[FileResult]:
    """De-identify every file under in_dir into out_dir (same relative paths); one result per file."""
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise NotADirectoryError(f"{in_dir}: not a folder")
    if in_dir.resolve() == out_dir.resolve():
        raise ValueError(f"{out_dir}: the output folder must differ from the input folder")
    results = []
    for src in input_files(in_dir, out_dir):
        rel = src.relative_to(in_dir)
        res = deid_file(src, out_dir / rel, secrets, policy)
        res.path = str(rel)
        results.append(res)
        if on_file:
            on_file(res)
    return results
