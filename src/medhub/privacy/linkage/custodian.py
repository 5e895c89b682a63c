"""Key files of the linkage unit: round keys (the key custodian's) and project keys (the unit's).

Layout under settings.linkage_dir, never inside the hub home (config refuses that):

    custodian/rounds/<round_id>.key     handed to the sources to tokenize; the unit never reads them
    unit/project-keys/<project>.key     the unit's keys for per-project pseudonyms

In production the custodian is a separate host; here the split is by folder. Keys are 32
random bytes, written atomically with mode 0600 in 0700 folders.
"""

from __future__ import annotations

import datetime
import os
import re
import secrets
from pathlib import Path

KEY_BYTES = 32
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class LinkageKeyError(RuntimeError):
    """A key file is missing, unreadable, of the wrong size, or a name is unsafe."""


def check_name(kind: str, value: str) -> str:
    if not _NAME.match(value or ""):
        raise ValueError(f"invalid {kind} {value!r}: use letters, digits, '.', '_' or '-' (max 128)")
    return value


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def read_key(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LinkageKeyError(f"cannot read key {path}: {exc.strerror or exc}") from exc
    if len(data) != KEY_BYTES:
        raise LinkageKeyError(f"key {path} has {len(data)} bytes, expected {KEY_BYTES}")
    return data


def read_or_create_key(path: Path) -> bytes:
    """The key at `path`, created atomically (0600) if absent."""
    if path.exists():
        return read_key(path)
    _private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_bytes(KEY_BYTES))
    try:
        os.link(tmp, path)  # fails if another process won the race; then read theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return read_key(path)


def round_key_path(linkage_dir: Path, round_id: str) -> Path:
    return Path(linkage_dir) / "custodian" / "rounds" / f"{check_name('round id', round_id)}.key"


def project_key_path(linkage_dir: Path, project: str) -> Path:
    return Path(linkage_dir) / "unit" / "project-keys" / f"{check_name('project', project)}.key"


def new_round(linkage_dir: Path, round_id: str | None = None) -> tuple[str, bytes]:
    """Open a linkage round: a fresh key from the custodian, under a new round id."""
    rid = round_id or datetime.datetime.now(datetime.UTC).strftime(
        "r%Y%m%dT%H%M%S"
    ) + "-" + secrets.token_hex(3)
    path = round_key_path(linkage_dir, rid)
    if path.exists():
        raise LinkageKeyError(f"round {rid} already exists; a round key is never reused")
    return rid, read_or_create_key(path)


def round_key(linkage_dir: Path, round_id: str) -> bytes:
    """The key of an open round (what the custodian hands a source)."""
    path = round_key_path(linkage_dir, round_id)
    if not path.exists():
        raise LinkageKeyError(f"no linkage round {round_id!r} at {path.parent}")
    return read_key(path)


def project_key(linkage_dir: Path, project: str) -> bytes:
    return read_or_create_key(project_key_path(linkage_dir, project))
