"""Deterministic synthetic hospitals (FHIR, DICOM, ECG) for the demo and tests.

Public API:
    generate(out, hospitals=3, patients=300, seed=7) -> manifest dict
    read_identifiers(out, kinds=None) -> set of identifying strings written
    make_people(n, seed) -> list[Person];  hospital_record(person, rng, error_rate) -> Person
"""

from medhub.synth.hospitals import generate, read_identifiers
from medhub.synth.people import Person, hospital_record, make_people

__all__ = ["Person", "generate", "hospital_record", "make_people", "read_identifiers"]
