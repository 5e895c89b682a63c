"""Format detection by content (the extension only breaks ties): DICOM, FHIR NDJSON, FHIR JSON
(Bundle or single resource), WFDB header, EDF/EDF+.

`sniff(path)` reads at most the first 4 KiB of the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DICOM = "dicom"
NDJSON = "ndjson"
JSON = "json"
WFDB = "wfdb"
EDF = "edf"
UNKNOWN = "unknown"

HEAD_BYTES = 4096
# The first record line of a WFDB header: name[/nseg] nsig [fs[/cfs][(base)] [nsamp [time [date]]]]
_WFDB_RECORD_LINE = re.compile(r"^[A-Za-z0-9_.\-]+(/\d+)?\s+\d+(\s|$)")


@dataclass(frozen=True)
class Sniffed:
    format: str
    reason: str | None = None  # why the format is unknown, in words


def _looks_like_raw_dicom(head: bytes) -> bool:
    """A DICOM data set without the 128-byte preamble (old files, e.g. RT objects): starts with a
    group 0x0002 or 0x0008 tag, little endian, followed by an explicit VR or a small implicit length."""
    if len(head) < 8 or head[0:2] not in (b"\x02\x00", b"\x08\x00"):
        return False
    elem = int.from_bytes(head[2:4], "little")
    if elem > 0x0100:
        return False
    vr = head[4:6]
    if vr.isalpha() and vr.isupper():
        return True
    return int.from_bytes(head[4:8], "little") < 1024


def _text(head: bytes) -> str | None:
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte character cut at the 4 KiB boundary is fine
        if exc.start >= len(head) - 4:
            return head[: exc.start].decode("utf-8")
        return None


def sniff(path: Path) -> Sniffed:
    """Detect the format of `path` from its first bytes."""
    size = path.stat().st_size
    if size == 0:
        return Sniffed(UNKNOWN, "zero-byte file (nothing to read)")
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
    ext = path.suffix.lower()
    if len(head) >= 132 and head[128:132] == b"DICM":
        return Sniffed(DICOM)
    if head[:8] == b"0       " and len(head) >= 256 and head[184:192].strip().isdigit():
        return Sniffed(EDF)
    text = _text(head)
    if text is not None:
        stripped = text.lstrip("\ufeff \t\r\n")
        if stripped.startswith("{"):
            if ext in (".ndjson", ".jsonl"):
                return Sniffed(NDJSON)
            if ext == ".json":
                return Sniffed(JSON)
            first_line = stripped.split("\n", 1)[0].strip()
            # a compact first line that closes its object and is followed by more: NDJSON
            if first_line.endswith("}") and "\n" in stripped.strip() and '"resourceType"' in first_line:
                return Sniffed(NDJSON)
            return Sniffed(JSON)
        if ext == ".hea":
            lines = [ln.strip() for ln in stripped.splitlines() if ln.strip() and not ln.startswith("#")]
            if lines and _WFDB_RECORD_LINE.match(lines[0]):
                return Sniffed(WFDB)
            return Sniffed(UNKNOWN, "named .hea but the first line is not a WFDB record line")
    if _looks_like_raw_dicom(head) and ext in (".dcm", ".dicom", ""):
        return Sniffed(DICOM)
    if ext in (".dcm", ".dicom"):
        return Sniffed(
            UNKNOWN, f"named {ext} but not DICOM: no 'DICM' marker at byte 128 and no DICOM tag at the start"
        )
    if ext in (".json", ".ndjson", ".jsonl"):
        return Sniffed(UNKNOWN, f"named {ext} but does not start with a JSON object")
    if ext == ".edf":
        return Sniffed(UNKNOWN, "named .edf but the EDF header is missing (first bytes are not '0       ')")
    if ext == ".hea":
        return Sniffed(UNKNOWN, "named .hea but is not text")
    return Sniffed(
        UNKNOWN,
        "unrecognized format: not DICOM, FHIR JSON/NDJSON, a WFDB header or EDF"
        + (" (binary content)" if text is None else ""),
    )
