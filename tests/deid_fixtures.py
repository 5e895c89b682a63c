"""Hand-made DICOM fixtures with identifiers planted everywhere a header hides them
(standard tags, private tags, nested sequences, free text), shared by the deid tests and bench/deid.py.
"""

from __future__ import annotations

import io

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
DX_IMAGE = "1.2.840.10008.5.1.4.1.1.1.1"


def planted_dataset(
    *,
    mrn: str = "MRN0042",
    name: str = "HONG^GILDONG=홍^길동",
    rrn: str = "600517-1234567",
    phone: str = "010-2345-6789",
    accession: str = "ACC77881",
    birth: str = "19600517",
    study_date: str = "20240301",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    referenced_uid: str | None = None,
    modality: str = "CT",
    burned_in: str | None = "NO",
) -> tuple[Dataset, list[str]]:
    """A CT-like instance and the list of identifying strings planted in it (the answer key)."""
    family = name.split("^")[0]
    hangul = name.split("=")[1].replace("^", "") if "=" in name else ""
    ds = Dataset()
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 149"] if hangul else ""
    ds.SOPClassUID = CT_IMAGE if modality == "CT" else DX_IMAGE
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.Modality = modality
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    ds.PatientName = name
    ds.PatientID = mrn
    ds.PatientBirthDate = birth
    ds.PatientSex = "M"
    ds.PatientAddress = "서울특별시 종로구 세종대로 209"
    ds.PatientTelephoneNumbers = phone
    ds.OtherPatientIDs = rrn
    other = Dataset()
    other.PatientID = rrn
    other.TypeOfPatientID = "TEXT"
    other.IssuerOfPatientID = "KR-RRN"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.AccessionNumber = accession
    ds.StudyID = "S1001"
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.AcquisitionDate = study_date
    ds.ContentDate = study_date
    ds.StudyTime = "101500"
    ds.ContentTime = "101700"
    ds.InstitutionName = "Seoul Example Hospital"
    ds.InstitutionAddress = "서울특별시 종로구 대학로 101"
    ds.ReferringPhysicianName = "KIM^CHEOLSU"
    ds.PerformingPhysicianName = "LEE^YOUNGHEE"
    ds.OperatorsName = "PARK^JIMIN"
    ds.StationName = "CT01"
    ds.DeviceSerialNumber = "SN-4455"
    ds.StudyDescription = f"CHEST CT for {family} {mrn}"
    ds.SeriesDescription = "AXIAL 5mm"
    ds.ImageComments = f"pt {hangul or family} called from {phone}, RRN {rrn}, seen 2024-03-01"
    ds.PatientAge = "063Y"
    ds.Rows = 4
    ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(32)
    # nested: a request attributes item with the accession and a physician's name, and a referenced image
    req = Dataset()
    req.AccessionNumber = accession
    req.RequestedProcedureID = f"RP-{mrn}"
    req.ScheduledProcedureStepDescription = f"follow-up of {family}"
    ds.RequestAttributesSequence = Sequence([req])
    ref = Dataset()
    ref.ReferencedSOPClassUID = CT_IMAGE
    ref.ReferencedSOPInstanceUID = referenced_uid or generate_uid()
    ds.ReferencedImageSequence = Sequence([ref])
    # an unlisted public sequence whose items hold a name and a free-text comment
    code = Dataset()
    code.CodeValue = "T-D3000"
    code.CodingSchemeDesignator = "SRT"
    code.CodeMeaning = f"Chest ({family})"
    ds.AnatomicRegionSequence = Sequence([code])
    # private block with identifiers, including a private sequence
    block = ds.private_block(0x0009, "ACME 1.0", create=True)
    block.add_new(0x10, "LO", f"{name.split('=')[0]}")
    block.add_new(0x11, "LO", mrn)
    inner = Dataset()
    inner.add_new(0x00100010, "PN", name.split("=")[0])
    block.add_new(0x12, "SQ", Sequence([inner]))
    planted = [
        mrn,
        rrn,
        rrn.replace("-", ""),
        phone,
        accession,
        family,
        "GILDONG",
        birth,
        "세종대로",
        "KIM^CHEOLSU",
    ]
    if hangul:
        planted.append(hangul)
    planted += ["LEE^YOUNGHEE", "PARK^JIMIN", "Seoul Example Hospital", "대학로"]
    return ds, planted


def with_file_meta(ds: Dataset) -> Dataset:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def roundtrip(ds: Dataset) -> Dataset:
    """Write and re-read, as a lake reader would."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    buf.seek(0)
    return pydicom.dcmread(buf)


def file_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def leaked(ds: Dataset, planted: list[str]) -> list[str]:
    """Planted strings found anywhere in the written file (any encoding we write in)."""
    raw = file_bytes(ds)
    hits = []
    for s in planted:
        for enc in ("utf-8", "euc-kr"):  # ISO 2022 IR 149 text is EUC-KR bytes after an escape
            try:
                b = s.encode(enc)
            except UnicodeEncodeError:
                continue
            if b and b in raw:
                hits.append(s)
                break
    text = " ".join(str(e.value) for e in ds.iterall() if e.VR not in ("OB", "OW", "SQ"))
    hits += [s for s in planted if s in text and s not in hits]
    return hits
