"""Deterministic synthetic hospitals (FHIR, DICOM, ECG) for the demo and tests."""
