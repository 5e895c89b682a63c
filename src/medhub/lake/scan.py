"""Search every file of the lake for given strings (a privacy check: no identifier may be found).

Parquet files are decoded to text (every row, every column) and searched as text;
blobs are searched as raw bytes and, where they are DICOM, as decoded text (so that names in
other character sets, e.g. Korean in ISO 2022 IR 149, are found too). The search is a
multi-string match: a 3-byte prefix lookup table in numpy, then an exact check at each candidate.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

_ENCODINGS = ("utf-8", "euc-kr", "utf-16-le")


def _variants(needle: str) -> set[bytes]:
    out = set()
    for enc in _ENCODINGS:
        with contextlib.suppress(UnicodeEncodeError):
            out.add(needle.encode(enc))
    return out


class Matcher:
    """Finds which of many byte strings occur in a buffer."""

    def __init__(self, needles: Iterable[str]) -> None:
        self.by_prefix: dict[int, list[tuple[bytes, str]]] = defaultdict(list)
        self.short: list[tuple[bytes, str]] = []
        for n in needles:
            if not n:
                continue
            for v in _variants(n):
                if len(v) >= 3:
                    self.by_prefix[int.from_bytes(v[:3], "little")].append((v, n))
                else:
                    self.short.append((v, n))
        self.table = np.zeros(1 << 24, dtype=bool)
        self.table[np.array(sorted(self.by_prefix), dtype=np.int64)] = True

    def find(self, data: bytes) -> set[str]:
        found = {n for v, n in self.short if v in data}
        if len(data) < 3 or not self.by_prefix:
            return found
        a = np.frombuffer(data, dtype=np.uint8).astype(np.int32)
        grams = a[:-2] | (a[1:-1] << 8) | (a[2:] << 16)
        for pos in np.flatnonzero(self.table[grams]):
            p = int(pos)
            for v, n in self.by_prefix[int(grams[p])]:
                if data.startswith(v, p):
                    found.add(n)
        return found


def _dicom_text(data: bytes) -> bytes:
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception:  # noqa: BLE001 - not DICOM: the raw bytes were searched already
        return b""
    parts: list[str] = []

    def walk(d: pydicom.Dataset) -> None:
        for el in d:
            if el.VR == "SQ":
                for item in el.value or []:
                    walk(item)
            elif el.VR not in ("OB", "OW", "OF", "OD", "OL", "OV", "UN") or el.tag.is_private:
                with contextlib.suppress(Exception):
                    parts.append(str(el.value))

    walk(ds)
    return "\n".join(parts).encode("utf-8", "replace")


def scan_lake(lake_dir: Path, needles: Iterable[str]) -> dict[str, list[str]]:
    """Which needles occur in which lake files (empty when the lake is clean)."""
    m = Matcher(needles)
    hits: dict[str, list[str]] = defaultdict(list)
    for f in sorted(p for p in lake_dir.rglob("*") if p.is_file()):
        data = f.read_bytes()
        if data[:4] == b"PAR1":
            table = pq.read_table(f)
            text = "\n".join(str(v) for col in table.columns for v in col.to_pylist())
            found = m.find(text.encode("utf-8"))
        else:
            found = m.find(data)
            if len(data) > 132 and data[128:132] == b"DICM":
                found |= m.find(_dicom_text(data))
        for n in found:
            hits[n].append(str(f.relative_to(lake_dir)))
    return dict(hits)
