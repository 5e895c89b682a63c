"""What the three modalities share: per-source secrets and the de-identification policy.

One `SourceSecrets` per source gives
- keyed pseudonyms (HMAC-SHA256 under the source's "pseudonym" key);
- one secret date shift per patient, HMAC(source "date-shift" key, local patient id), a whole
  number of days, so that FHIR, DICOM and biosignals of one patient move by the same amount and
  every interval between that patient's dates survives;
- one keyed UID remapping, "2.25." + decimal of a truncated HMAC under the "uid" key, deterministic
  so that references between series, studies and RT objects still resolve.

The patient key is the source's local patient id: FHIR Patient.id, DICOM PatientID, the MRN /
patient id field of a biosignal header (EDF+ patient code). Where a source uses different ids
per modality, each id gets its own pseudonym and its own shift: intervals inside one modality
survive, intervals across modalities do not; map the ids to one before ingestion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from medhub.config import Settings
from medhub.privacy.keys import KeyedHmac, KeyStore, key_store

# The date shift: minus SHIFT_MIN_DAYS .. minus SHIFT_MAX_DAYS (dates only ever move back,
# so no shifted date lands in the future).
SHIFT_MIN_DAYS = 180
SHIFT_MAX_DAYS = 3650
AGE_TOP = 89  # ages above this are grouped into "90+"


@dataclass(frozen=True)
class Policy:
    """De-identification options (the defaults are the data center's)."""

    address_level: int = 1  # FHIR Address: keep state (1), + city (2), or nothing (0)
    postcode_digits: int = 3  # keep the first N digits of a postcode; 0 drops it
    shift_dates: bool = True  # retain longitudinal temporal information with modified dates
    retain_patient_characteristics: bool = True
    retain_device_identity: bool = True
    clean_descriptors: bool = True
    retain_safe_private: bool = False
    safe_private: frozenset[tuple[str, int]] = field(default_factory=frozenset)  # (creator, element low byte)
    hold_burned_in: bool = True
    fhir_notes: str = "remove"  # FHIR Annotation notes: "remove" or "clean"


class SourceSecrets:
    """Keyed functions of one source; cached, since the same ids recur across items."""

    def __init__(self, store: KeyStore, source: str) -> None:
        self.source = source
        self._pkey = KeyedHmac(store.key(source, "pseudonym"))
        self._dkey = KeyedHmac(store.key(source, "date-shift"))
        self._ukey = KeyedHmac(store.key(source, "uid"))
        self.patient = lru_cache(maxsize=65536)(self._patient)
        self.shift_days = lru_cache(maxsize=65536)(self._shift_days)
        self.uid = lru_cache(maxsize=262144)(self._uid)

    def pseudonym(self, value: str, kind: str = "id", length: int = 32) -> str:
        return self._pkey.pseudonym(value, kind, length)

    def _patient(self, local_id: str) -> str:
        """The patient's pseudonym (same for every modality of this source)."""
        return self._pkey.pseudonym(local_id.strip(), "patient", 32)

    def _shift_days(self, local_id: str) -> int:
        """The patient's secret date shift in days (negative)."""
        n = int.from_bytes(self._dkey.digest("date-shift", local_id.strip())[:8], "big")
        return -(SHIFT_MIN_DAYS + n % (SHIFT_MAX_DAYS - SHIFT_MIN_DAYS + 1))

    def _uid(self, uid: str) -> str:
        """A valid, deterministic replacement UID: 2.25.<decimal of 120 bits of HMAC>."""
        uid = uid.strip().rstrip("\x00")
        n = int.from_bytes(self._ukey.digest("uid", uid)[:15], "big")
        return f"2.25.{n}"


def source_secrets(settings: Settings, source: str) -> SourceSecrets:
    return SourceSecrets(key_store(settings), source)
