"""Chest X-ray DICOM files (DX or CR) as a hospital PACS would export them.

Owns one job: turn an `XrayStudy` (everything a radiograph's headers say) into a valid
Part-10 file for the Digital X-Ray Image For Presentation IOD or the Computed
Radiography Image IOD: every Type 1 and Type 2 attribute of their modules, file meta,
and a small synthetic chest-like image (256x256, 12 bits stored). The identifying data
is realistic on purpose (the de-identifier is tested against it): romanized or Hangul
patient names, the MRN, birth date, the RRN in a nested OtherPatientIDsSequence, the
accession number in a nested RequestAttributesSequence, institution, physicians,
operators, dates, UIDs, a private block carrying the name or RRN, and free text that
sometimes names the patient.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
)

PRIVATE_GROUP = 0x0029
PRIVATE_CREATOR = "KRPACS_PATIENT_INFO"
SIZE = 256


@dataclass(frozen=True)
class XrayStudy:
    modality: str  # "DX" | "CR"
    study_uid: str
    series_uid: str
    sop_uid: str
    frame_uid: str
    accession: str
    study_id: str
    requested_procedure_id: str
    when: datetime.datetime
    patient_name: str  # DICOM PN as written, e.g. "KIM^MINJUN" or "KIM^MINJUN=김^민준"
    utf8: bool  # SpecificCharacterSet ISO_IR 192 (Hangul present)
    mrn: str
    rrn: str  # "" when the hospital has none on file
    birth_date: datetime.date
    sex: str
    age: int
    patient_address: str  # written only when utf8
    patient_phone: str
    institution_name: str
    mrn_issuer: str  # the hospital's name as its PACS issues MRNs (same in every file)
    institution_address: str
    department: str
    referring: str  # DICOM PN
    performing: str
    operator: str
    station: str
    device_serial: str
    view: str  # "PA" | "AP"
    study_description: str
    image_comments: str
    private_value: str  # the name or the RRN, in the private block
    burned_in: bool
    findings: str  # "normal" | "consolidation" | "cardiomegaly" | "hyperinflation"
    pixel_seed: int
    instance_number: int = 1
    series_number: int = 1


def _chest_pixels(study: XrayStudy) -> np.ndarray:
    """A chest-like 12-bit image: body, dark lungs, mediastinum, spine, ribs, noise."""
    rng = np.random.default_rng(study.pixel_seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    body = ((x - 0.5) / 0.46) ** 2 + ((y - 0.55) / 0.55) ** 2 < 1.0
    img = np.where(body, 2300.0, 300.0).astype(np.float32)
    heart_w = 0.20 if study.findings == "cardiomegaly" else 0.14
    lung_w = 0.17 if study.findings == "hyperinflation" else 0.15
    for cx in (0.31, 0.69):
        lung = ((x - cx) / lung_w) ** 2 + ((y - 0.48) / 0.30) ** 2 < 1.0
        img = np.where(lung, img - 1300.0 * (1 - ((y - 0.48) / 0.34) ** 2), img)
    heart = ((x - 0.54) / heart_w) ** 2 + ((y - 0.62) / 0.15) ** 2 < 1.0
    img = np.where(heart, img + 700.0, img)
    img += np.exp(-(((x - 0.5) / 0.035) ** 2)) * 900.0  # spine
    ribs = (np.sin((y * 26 + np.abs(x - 0.5) * 9) * np.pi) > 0.75) & body
    img = np.where(ribs, img + 250.0, img)
    if study.findings == "consolidation":
        cx = 0.30 + 0.38 * rng.integers(0, 2)
        patch = ((x - cx) / 0.09) ** 2 + ((y - 0.65) / 0.08) ** 2 < 1.0
        img = np.where(patch, img + 800.0, img)
    img += rng.normal(0.0, 40.0, img.shape).astype(np.float32)
    if study.burned_in:
        # a header band of "text" blocks, as modalities burn name and date into the image
        img[6:18, 8:150] = 300.0
        glyphs = rng.integers(0, 2, size=(2, 28)).astype(bool)
        for row in range(2):
            for col in range(28):
                if glyphs[row, col]:
                    img[7 + row * 5 : 11 + row * 5, 10 + col * 5 : 13 + col * 5] = 4000.0
    img = np.clip(img, 0, 4095)
    if study.modality == "CR":  # MONOCHROME1: high values are dark
        img = 4095 - img
    return img.astype(np.uint16)


def _da(d: datetime.date) -> str:
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


def _tm(t: datetime.datetime) -> str:
    return f"{t.hour:02d}{t.minute:02d}{t.second:02d}"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def build_dataset(study: XrayStudy) -> Dataset:
    """The full dataset (with file meta) for one radiograph."""
    is_dx = study.modality == "DX"
    sop_class = DigitalXRayImageStorageForPresentation if is_dx else ComputedRadiographyImageStorage
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = study.sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "MEDHUB_SYNTH"

    ds = Dataset()
    ds.file_meta = meta
    when = study.when
    acq = when + datetime.timedelta(minutes=3)
    # SOP Common
    if study.utf8:
        ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = study.sop_uid
    ds.InstanceCreationDate = _da(acq)
    ds.InstanceCreationTime = _tm(acq + datetime.timedelta(seconds=40))
    # Patient
    ds.PatientName = study.patient_name
    ds.PatientID = study.mrn
    ds.IssuerOfPatientID = study.mrn_issuer
    ds.PatientBirthDate = _da(study.birth_date)
    ds.PatientSex = study.sex
    if study.rrn:
        other = Dataset()
        other.PatientID = study.rrn
        other.IssuerOfPatientID = "KR-RRN"
        other.TypeOfPatientID = "TEXT"
        ds.OtherPatientIDsSequence = Sequence([other])
    if study.utf8:
        ds.PatientAddress = study.patient_address
        ds.PatientTelephoneNumbers = study.patient_phone
    # General Study + Patient Study
    ds.StudyInstanceUID = study.study_uid
    ds.StudyDate = _da(when)
    ds.StudyTime = _tm(when)
    ds.ReferringPhysicianName = study.referring
    ds.StudyID = study.study_id
    ds.AccessionNumber = study.accession
    ds.StudyDescription = study.study_description
    ds.PatientAge = f"{min(study.age, 999):03d}Y"
    # General Series (+ DX Series / CR Series)
    ds.Modality = study.modality
    ds.SeriesInstanceUID = study.series_uid
    ds.SeriesNumber = study.series_number
    ds.SeriesDate = _da(when)
    ds.SeriesTime = _tm(when)
    ds.SeriesDescription = f"CHEST {study.view}"
    ds.BodyPartExamined = "CHEST"
    ds.PerformingPhysicianName = study.performing
    ds.OperatorsName = study.operator
    request = Dataset()
    request.RequestedProcedureID = study.requested_procedure_id
    request.ScheduledProcedureStepID = f"{study.requested_procedure_id}-1"
    request.AccessionNumber = study.accession
    request.RequestedProcedureDescription = "XR CHEST " + study.view
    request.ScheduledProcedureStepDescription = "Chest radiograph " + study.view
    ds.RequestAttributesSequence = Sequence([request])
    if is_dx:
        ds.PresentationIntentType = "FOR PRESENTATION"
        # Frame of Reference
        ds.FrameOfReferenceUID = study.frame_uid
        ds.PositionReferenceIndicator = ""
    ds.ViewPosition = study.view
    if is_dx and study.view == "PA":
        ds.ViewCodeSequence = Sequence([_code("399348003", "SCT", "postero-anterior")])
    elif is_dx:
        ds.ViewCodeSequence = Sequence([_code("399182009", "SCT", "antero-posterior")])
    # General Equipment
    ds.Manufacturer = "SYNTHETIC MEDICAL SYSTEMS"
    ds.ManufacturerModelName = "SynthRad DR-500" if is_dx else "SynthRad CR-20"
    ds.DeviceSerialNumber = study.device_serial
    ds.SoftwareVersions = "4.2.1"
    ds.InstitutionName = study.institution_name
    ds.InstitutionAddress = study.institution_address
    ds.InstitutionalDepartmentName = study.department
    ds.StationName = study.station
    # General Image (+ DX Image / CR Image)
    ds.InstanceNumber = study.instance_number
    ds.PatientOrientation = ["L", "F"]
    ds.ContentDate = _da(acq)
    ds.ContentTime = _tm(acq)
    ds.AcquisitionDate = _da(acq)
    ds.AcquisitionTime = _tm(acq)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BurnedInAnnotation = "YES" if study.burned_in else "NO"
    ds.LossyImageCompression = "00"
    if study.image_comments:
        ds.ImageComments = study.image_comments
    ds.KVP = 120 if study.view == "PA" else 100
    ds.ExposureTime = 12
    ds.XRayTubeCurrent = 250
    ds.DistanceSourceToDetector = 1800 if study.view == "PA" else 1000
    # Image Pixel
    pixels = _chest_pixels(study)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2" if is_dx else "MONOCHROME1"
    ds.Rows = SIZE
    ds.Columns = SIZE
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW"
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.WindowCenter = 2048
    ds.WindowWidth = 4096
    if is_dx:
        ds.PixelIntensityRelationship = "LIN"
        ds.PixelIntensityRelationshipSign = 1
        ds.PresentationLUTShape = "IDENTITY"
        # DX Anatomy Imaged
        ds.ImageLaterality = "U"
        ds.AnatomicRegionSequence = Sequence([_code("51185008", "SCT", "Chest")])
        # DX Positioning: a chest wall stand
        ds.PositionerType = "COLUMN"
        # DX Detector
        ds.DetectorType = "SCINTILLATOR"
        ds.ImagerPixelSpacing = [1.4, 1.4]
        ds.DetectorID = f"DET{study.device_serial[-4:]}"
        # Acquisition Context
        ds.AcquisitionContextSequence = Sequence([])
    else:
        ds.ImagerPixelSpacing = [1.4, 1.4]
        ds.PlateType = "STANDARD"
    # a vendor's private block: the PACS copies the patient's identity into it
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", study.private_value)
    block.add_new(0x02, "SH", study.station)
    block.add_new(0x03, "DA", _da(when))
    return ds


def write_xray(path: Path, study: XrayStudy) -> None:
    """Write one radiograph as a Part-10 file (directories created as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    build_dataset(study).save_as(path, enforce_file_format=True)
