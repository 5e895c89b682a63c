"""The source side of linkage, at the privacy gate: Patient identities -> keyed tokens -> the unit's inbox.

The gate runs at the source, before anything leaves the hospital. For every FHIR Patient it sees,
`Depositor` reads the identity fields from the plaintext resource (before pseudonymization):
Hangul and romanized names, birthDate, gender, the RRN (identifier system `RRN_SYSTEM`, or any
identifier whose value is RRN-shaped), phone, road address and postcode. It turns them into
keyed tokens with `tokens.tokenize` under the current linkage round's key, and deposits the token
row, tagged with the patient's *source pseudonym* (the same one the gate writes for Patient.id),
in the linkage unit's inbox (`<linkage_dir>/inbox/deposits.sqlite3`).

Secrets: the round key comes from the key custodian, which here is the source side's key store
(settings.key_dir, purpose `round-<id>` of the pseudo-source `linkage-custodian`). The linkage unit
(settings.linkage_dir) never holds it: it sees tokens and source pseudonyms only.

Deposits are batched (tokenizing one row at a time costs ~50 ms of pandas overhead): the buffer is
flushed at `BATCH_ROWS` rows, when it is older than `MAX_AGE_S` seconds, on `flush()`, and when the
gate that owns the depositor is garbage collected or the process exits. A deposit is keyed by
(round, source, source pseudonym); re-depositing identical identity fields changes nothing, and
changed fields replace the earlier row (one row per patient and round). Known limits: a process
killed (SIGKILL) between a lake commit and the next flush loses that buffer's deposits, and since
ingestion skips files already landed, they come back only when the source sends those Patients
again; a Patient deposited and then refused by de-identification leaves a token row no lake
record shares (harmless: its pseudonym is never asked for).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import re
import secrets
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medhub.config import Settings
from medhub.privacy.keys import KeyStore
from medhub.privacy.linkage.custodian import check_name
from medhub.privacy.linkage.tokens import INPUT_FIELDS, TOKEN_NAMES, tokenize

RRN_SYSTEM = "http://www.hl7korea.or.kr/Identifier/rrn"
RRN_SHAPE = re.compile(r"^\s*\d{6}\s*-?\s*[0-9]\d{6}\s*$")
CUSTODIAN = "linkage-custodian"  # the key custodian's folder in the source-side key store
DEFAULT_ROUND = "round-1"
BATCH_ROWS = 512
MAX_AGE_S = 5.0
_ROUND_FILE = "current-round"
_SINGLE = tuple(n for n in TOKEN_NAMES if "#" not in n)  # deterministic tokens (no random padding)

_SCHEMA = """
create table if not exists deposits (
    round_id text not null, source text not null, record_id text not null,
    fingerprint blob not null, tokens blob not null, deposited_at text not null,
    primary key (round_id, source, record_id));
create table if not exists token_layout (round_id text primary key, names text not null);
"""


class InboxError(ValueError):
    """Deposits that cannot be used: tokens of another layout than the round's, a damaged row."""


# --- the key custodian (source side) ------------------------------------------------------------


def _custodian_dir(settings: Settings) -> Path:
    return Path(settings.key_dir) / CUSTODIAN


def current_round(settings: Settings) -> str:
    """The open linkage round (DEFAULT_ROUND until `rotate_round` opens another)."""
    path = _custodian_dir(settings) / _ROUND_FILE
    if path.exists():
        return check_name("round id", path.read_text(encoding="utf-8").strip())
    return DEFAULT_ROUND


def rotate_round(settings: Settings, round_id: str | None = None) -> str:
    """Open a new round (a fresh token key). Deposits of earlier rounds do not link with it."""
    rid = check_name(
        "round id",
        round_id or datetime.datetime.now(datetime.UTC).strftime("r%Y%m%dT%H%M%S-") + secrets.token_hex(3),
    )
    d = _custodian_dir(settings)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = d / f".{_ROUND_FILE}.{secrets.token_hex(4)}.tmp"
    tmp.write_text(rid + "\n", encoding="utf-8")
    tmp.replace(d / _ROUND_FILE)
    return rid


def round_key(settings: Settings, round_id: str) -> bytes:
    """The token key of a round, from the source-side key store (created on first use)."""
    return KeyStore(settings.key_dir, home=settings.home).key(
        CUSTODIAN, f"round-{check_name('round id', round_id)}"
    )


# --- identity fields from a FHIR Patient (plaintext, at the source only) -------------------------


def _is_hangul(s: str) -> bool:
    return any(
        "\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff" or "\u3130" <= ch <= "\u318f" for ch in s
    )


def _name_parts(name: dict[str, Any]) -> tuple[str, str]:
    family = name.get("family") if isinstance(name.get("family"), str) else ""
    given = " ".join(g for g in name.get("given") or [] if isinstance(g, str))
    if not family and not given and isinstance(name.get("text"), str):
        text = name["text"].strip()
        if _is_hangul(text) and " " not in text and len(text) >= 2:
            family, given = text[:1], text[1:]  # Korean names: one-syllable surname first
        else:
            parts = text.split()
            if len(parts) >= 2:
                given, family = " ".join(parts[:-1]), parts[-1]
    return family.strip(), given.strip()


def _rrn(identifiers: Any) -> str | None:
    fallback = None
    for ident in identifiers or []:
        if not isinstance(ident, dict) or not isinstance(ident.get("value"), str):
            continue
        if ident.get("system") == RRN_SYSTEM:
            return ident["value"]
        if fallback is None and RRN_SHAPE.match(ident["value"]):
            fallback = ident["value"]
    return fallback


def patient_identity(patient: dict[str, Any]) -> dict[str, str | None]:
    """The linkage identity fields (`tokens.INPUT_FIELDS`) of a plaintext FHIR Patient."""
    out: dict[str, str | None] = dict.fromkeys(INPUT_FIELDS)
    for name in patient.get("name") or []:
        if not isinstance(name, dict):
            continue
        family, given = _name_parts(name)
        if not family and not given:
            continue
        if _is_hangul(family + given):
            if out["family_name"] is None and out["given_name"] is None:
                out["family_name"], out["given_name"] = family or None, given or None
        elif out["family_name_roman"] is None and out["given_name_roman"] is None:
            out["family_name_roman"], out["given_name_roman"] = family or None, given or None
    gender = patient.get("gender")
    out["sex"] = gender if isinstance(gender, str) else None
    birth = patient.get("birthDate")
    out["birth_date"] = birth if isinstance(birth, str) else None
    out["rrn"] = _rrn(patient.get("identifier"))
    for t in patient.get("telecom") or []:
        if isinstance(t, dict) and t.get("system") == "phone" and isinstance(t.get("value"), str):
            out["phone"] = t["value"]
            break
    for a in patient.get("address") or []:
        if not isinstance(a, dict):
            continue
        text = a.get("text")
        if not isinstance(text, str) or not text.strip():
            parts = [a.get("state"), a.get("city"), *(a.get("line") or [])]
            text = " ".join(p for p in parts if isinstance(p, str) and p.strip())
        out["address"] = text or None
        pc = a.get("postalCode")
        out["postcode"] = pc if isinstance(pc, str) else None
        break
    return out


# --- the linkage unit's inbox --------------------------------------------------------------------


def inbox_path(linkage_dir: Path) -> Path:
    return Path(linkage_dir) / "inbox" / "deposits.sqlite3"


@contextlib.contextmanager
def open_inbox(linkage_dir: Path) -> Iterator[sqlite3.Connection]:
    path = inbox_path(linkage_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    con = sqlite3.connect(path, timeout=60)
    try:
        con.execute("pragma journal_mode=wal")
        con.executescript(_SCHEMA)
        yield con
    finally:
        con.close()


def deposit_tokens(linkage_dir: Path, round_id: str, source: str, tokens: pd.DataFrame) -> int:
    """Store a token table (record_id = source pseudonym) in the inbox; returns rows added or changed.

    One transaction per call (all rows or none). Identical re-deposits change nothing."""
    check_name("source", source)
    check_name("round id", round_id)
    if tokens.empty:
        return 0
    mat = np.ascontiguousarray(tokens[list(TOKEN_NAMES)].to_numpy(dtype=np.uint64))
    single = np.ascontiguousarray(tokens[list(_SINGLE)].to_numpy(dtype=np.uint64))
    now = datetime.datetime.now(datetime.UTC).isoformat()
    rows = [
        (round_id, source, str(rid), hashlib.sha256(single[i].tobytes()).digest(), mat[i].tobytes(), now)
        for i, rid in enumerate(tokens["record_id"].tolist())
    ]
    names = "\x1f".join(TOKEN_NAMES)
    with open_inbox(linkage_dir) as con:
        with con:
            con.execute("insert or ignore into token_layout values (?, ?)", (round_id, names))
            (have,) = con.execute("select names from token_layout where round_id=?", (round_id,)).fetchone()
            if have != names:
                raise InboxError(
                    f"round {round_id!r} in {inbox_path(linkage_dir)} holds tokens of another layout "
                    "(medhub was upgraded mid-round): open a new round with `medhub linkage rotate`"
                )
            before = con.total_changes
            con.executemany(
                "insert into deposits values (?,?,?,?,?,?) "
                "on conflict(round_id, source, record_id) do update set fingerprint=excluded.fingerprint, "
                "tokens=excluded.tokens, deposited_at=excluded.deposited_at "
                "where deposits.fingerprint != excluded.fingerprint",
                rows,
            )
        return con.total_changes - before


def deposited_sources(linkage_dir: Path, round_id: str) -> list[str]:
    if not inbox_path(linkage_dir).exists():
        return []
    with open_inbox(linkage_dir) as con:
        return [
            r[0]
            for r in con.execute(
                "select distinct source from deposits where round_id=? order by 1", (round_id,)
            )
        ]


def latest_round(linkage_dir: Path) -> str | None:
    """The round of the most recent deposit, or None when the inbox is empty."""
    if not inbox_path(linkage_dir).exists():
        return None
    with open_inbox(linkage_dir) as con:
        row = con.execute("select round_id from deposits order by deposited_at desc limit 1").fetchone()
    return row[0] if row else None


def deposited_tokens(linkage_dir: Path, round_id: str, source: str) -> pd.DataFrame:
    """One source's deposited token table for a round (record_id = source pseudonym)."""
    with open_inbox(linkage_dir) as con:
        rows = con.execute(
            "select record_id, tokens from deposits where round_id=? and source=? order by record_id",
            (round_id, source),
        ).fetchall()
        layout = con.execute("select names from token_layout where round_id=?", (round_id,)).fetchone()
    names = layout[0].split("\x1f") if layout else list(TOKEN_NAMES)
    bad = [r[0] for r in rows if len(r[1]) != 8 * len(names)]
    if bad:
        raise InboxError(f"{inbox_path(linkage_dir)}: the deposit of {source}/{bad[0]} is damaged")
    mat = (
        np.frombuffer(b"".join(r[1] for r in rows), dtype=np.uint64).reshape(-1, len(names))
        if rows
        else (np.zeros((0, len(names)), dtype=np.uint64))
    )
    out = pd.DataFrame(mat, columns=names)
    out.insert(0, "record_id", pd.array([r[0] for r in rows], dtype="string"))
    return out


def deposit_count(linkage_dir: Path, round_id: str | None = None) -> int:
    if not inbox_path(linkage_dir).exists():
        return 0
    with open_inbox(linkage_dir) as con:
        if round_id is None:
            return con.execute("select count(*) from deposits").fetchone()[0]
        return con.execute("select count(*) from deposits where round_id=?", (round_id,)).fetchone()[0]


# --- the depositor the gate calls ----------------------------------------------------------------


class Depositor:
    """Buffers tokenized Patient identities of one source and deposits them in batches."""

    def __init__(self, settings: Settings, source: str, pseudonym_of: Callable[[str], str]) -> None:
        self.linkage_dir = Path(settings.linkage_dir)
        self.source = check_name("source", source)
        self.round_id = current_round(settings)
        self._key = round_key(settings, self.round_id)
        self._pseudonym_of = pseudonym_of
        self._buffer: dict[str, dict[str, str | None]] = {}
        self._since = 0.0
        self.deposited = 0
        self._lock = threading.RLock()

    def __call__(self, resource: dict[str, Any]) -> None:
        """Note a plaintext resource (only Patients with an id count). Call BEFORE de-identification."""
        local = resource.get("id") if resource.get("resourceType") == "Patient" else None
        if isinstance(local, str) and local.strip():
            with self._lock:
                if not self._buffer:
                    self._since = time.monotonic()
                self._buffer[self._pseudonym_of(local)] = patient_identity(resource)
        # Whether the buffer is due is read without the lock (this runs for every resource); flush takes it.
        if self._buffer and (len(self._buffer) >= BATCH_ROWS or time.monotonic() - self._since >= MAX_AGE_S):
            self.flush()

    def flush(self) -> int:
        """Tokenize and deposit what is buffered; returns rows added or changed in the inbox."""
        with self._lock:
            return self._flush()

    def _flush(self) -> int:
        if not self._buffer:
            return 0
        ids = list(self._buffer)
        records = pd.DataFrame([self._buffer[i] for i in ids], columns=list(INPUT_FIELDS))
        toks = tokenize(records, self._key)
        toks["record_id"] = pd.array(ids, dtype="string")
        n = deposit_tokens(self.linkage_dir, self.round_id, self.source, toks)
        self._buffer.clear()  # only once deposited: a failed flush keeps the rows for the next one
        self.deposited += n
        return n

    def bind(self, owner: object) -> None:
        """Flush when `owner` (the gate function) is garbage collected, or at interpreter exit."""
        weakref.finalize(owner, _flush_quietly, self)


def _flush_quietly(depositor: Depositor) -> None:
    try:
        depositor.flush()
    except Exception as exc:  # noqa: BLE001 - a finalizer cannot raise; say what was lost
        os.write(2, f"medhub: linkage deposit of {depositor.source} failed: {exc}\n".encode())


def linkage_depositor(settings: Settings, source: str, pseudonym_of: Callable[[str], str]) -> Depositor:
    """The depositor for `source`; `pseudonym_of(local patient id)` is the gate's patient pseudonym."""
    return Depositor(settings, source, pseudonym_of)
