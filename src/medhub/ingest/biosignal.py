"""Biosignal readers: WFDB records (wfdb.rdrecord, digital samples) and EDF/EDF+ (pyedflib).

A WFDB record is a header plus the files it names (signal files, segment headers) and any
annotation files beside it; `wfdb_members(header)` lists them so that the pipeline treats the
record as one unit. Samples stay digital (as stored) with each channel's gain and baseline,
so no precision is lost. A record above MAX_SAMPLES samples is refused with a clear error.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np

from medhub.ingest.records import Annotation, BiosignalItem, Channel, Rejected

MAX_SAMPLES = 200_000_000  # all channels together (~800 MB as int32)
ANNOTATION_EXTS = ("atr", "qrs", "ecg", "ari", "pu", "pu0", "pu1", "wqrs", "sqrs")


def _record_base(header: Path) -> str:
    return str(header.with_suffix(""))


def wfdb_members(header: Path) -> tuple[list[Path], str | None]:
    """The files a WFDB record is made of besides its header (those present), and why the
    record is incomplete (a named file that is missing), or None."""
    import wfdb

    base = header.parent
    try:
        h = wfdb.rdheader(_record_base(header))
    except Exception as exc:  # noqa: BLE001 - wfdb raises many kinds on bad headers
        return [], f"WFDB header could not be parsed ({exc.__class__.__name__}: {exc})"
    members: list[Path] = []
    missing: list[str] = []
    if isinstance(h, wfdb.MultiRecord):
        for seg in h.seg_name:
            if seg == "~":
                continue
            seg_hea = base / f"{seg}.hea"
            if not seg_hea.exists():
                missing.append(seg_hea.name)
                continue
            members.append(seg_hea)
            sub, problem = wfdb_members(seg_hea)
            members += sub
            if problem:
                missing.append(problem)
    else:
        for fname in dict.fromkeys(f for f in (h.file_name or []) if f and f != "~"):
            p = base / fname
            if p.exists():
                members.append(p)
            else:
                missing.append(fname)
    for ext in ANNOTATION_EXTS:
        p = header.with_suffix(f".{ext}")
        if p.exists():
            members.append(p)
    problem = None
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        problem = f"WFDB record {h.record_name}: file(s) named in the header are missing: {shown}"
    return list(dict.fromkeys(members)), problem


def read_wfdb(header: Path) -> Iterator[BiosignalItem | Rejected]:
    import wfdb

    name = str(header)
    _members, problem = wfdb_members(header)
    if problem:
        yield Rejected(name, problem)
        return
    try:
        h = wfdb.rdheader(_record_base(header))
        if isinstance(h, wfdb.MultiRecord):
            yield Rejected(name, "multi-segment WFDB records are not read yet; send each segment as a record")
            return
        total = int(h.sig_len or 0) * int(h.n_sig or 0)
        if total == 0:
            yield Rejected(name, "WFDB header describes no samples (a layout header or an empty record)")
            return
        if total > MAX_SAMPLES:
            yield Rejected(name, f"WFDB record holds {total} samples, above the {MAX_SAMPLES} sample limit")
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rec = wfdb.rdrecord(_record_base(header), physical=False, return_res=32)
    except Exception as exc:  # noqa: BLE001
        yield Rejected(name, f"WFDB record could not be read ({exc.__class__.__name__}: {exc})")
        return
    fs = float(rec.fs)
    sig = rec.d_signal
    n = sig.shape[0]
    channels = [
        Channel(
            name=str(rec.sig_name[i]),
            units=str(rec.units[i] or ""),
            fs=fs,
            gain=float(rec.adc_gain[i]),
            baseline=float(rec.baseline[i]),
            n_samples=n,
        )
        for i in range(rec.n_sig)
    ]
    samples = [np.ascontiguousarray(sig[:, i]) for i in range(rec.n_sig)]
    start = None
    if rec.base_date is not None and rec.base_time is not None:
        start = datetime.combine(rec.base_date, rec.base_time)
    annotations: list[Annotation] = []
    for ext in ANNOTATION_EXTS:
        if header.with_suffix(f".{ext}").exists():
            try:
                ann = wfdb.rdann(_record_base(header), ext)
            except Exception as exc:  # noqa: BLE001
                yield Rejected(
                    name, f"annotation file .{ext} could not be read ({exc.__class__.__name__}: {exc})"
                )
                return
            aux = ann.aux_note or [""] * len(ann.sample)
            for s, sym, note in zip(ann.sample, ann.symbol or [""] * len(ann.sample), aux, strict=False):
                annotations.append(
                    Annotation(float(s) / fs, 0.0, f"{ext}:{sym}{(' ' + note) if note else ''}")
                )
    yield BiosignalItem(
        source_file=name,
        format="wfdb",
        record_name=str(rec.record_name),
        start=start,
        channels=channels,
        samples=samples,
        comments=list(rec.comments or []),
        annotations=annotations,
    )


def read_edf(path: Path) -> Iterator[BiosignalItem | Rejected]:
    import pyedflib

    name = str(path)
    try:
        f = pyedflib.EdfReader(name)
    except Exception as exc:  # noqa: BLE001
        yield Rejected(
            name, f"EDF file could not be read ({exc.__class__.__name__}: {exc}); truncated or damaged?"
        )
        return
    try:
        n_sig = f.signals_in_file
        counts = [int(x) for x in f.getNSamples()]
        if sum(counts) > MAX_SAMPLES:
            yield Rejected(
                name, f"EDF file holds {sum(counts)} samples, above the {MAX_SAMPLES} sample limit"
            )
            return
        labels = f.getSignalLabels()
        fss = f.getSampleFrequencies()
        channels, samples = [], []
        for i in range(n_sig):
            dmax, dmin = f.getDigitalMaximum(i), f.getDigitalMinimum(i)
            pmax, pmin = f.getPhysicalMaximum(i), f.getPhysicalMinimum(i)
            gain = (dmax - dmin) / (pmax - pmin) if pmax != pmin else 1.0
            channels.append(
                Channel(
                    name=str(labels[i]),
                    units=str(f.getPhysicalDimension(i)),
                    fs=float(fss[i]),
                    gain=float(gain),
                    baseline=float(dmin - pmin * gain),
                    n_samples=counts[i],
                )
            )
            samples.append(np.asarray(f.readSignal(i, digital=True), dtype=np.int32))
        onsets, durations, texts = f.readAnnotations()
        annotations = [
            Annotation(float(o), float(d) if d >= 0 else 0.0, str(t))
            for o, d, t in zip(onsets, durations, texts, strict=False)
        ]
        sex = f.getSex() if hasattr(f, "getSex") else f.getGender()
        patient = {
            "code": f.getPatientCode(),
            "name": f.getPatientName(),
            "sex": str(sex or ""),
            "birthdate": f.getBirthdate(),
            "additional": f.getPatientAdditional(),
        }
        recording = {
            "admincode": f.getAdmincode(),
            "technician": f.getTechnician(),
            "equipment": f.getEquipment(),
            "additional": f.getRecordingAdditional(),
        }
        start = f.getStartdatetime()
    except Exception as exc:  # noqa: BLE001
        yield Rejected(name, f"EDF file could not be read ({exc.__class__.__name__}: {exc})")
        return
    finally:
        f.close()
    yield BiosignalItem(
        source_file=name,
        format="edf",
        record_name=path.stem,
        start=start,
        channels=channels,
        samples=samples,
        patient={k: str(v or "") for k, v in patient.items()},
        recording={k: str(v or "") for k, v in recording.items()},
        annotations=annotations,
    )
