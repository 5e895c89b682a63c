"""Key files of the linkage unit: its project keys, for per-project pseudonyms.

Layout under settings.linkage_dir, never inside the hub home (config refuses that):

    unit/project-keys/<project>.key     the unit's keys for per-project pseudonyms

Round keys (the token keys) are NOT here: they belong to the key custodian on the source side
(`medhub.privacy.linkage.intake.round_key`, in the key store under settings.key_dir), so the unit
that holds the tokens never holds the key that made them. Keys are 32 random bytes, written
atomically with mode 0600 in 0700 folders.
"""

from __future__ import annotations

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


def project_key_path(linkage_dir: Path, project: str) -> Path:
    return Path(linkage_dir) / "unit" / "project-keys" / f"{check_name('project', project)}.key"


def project_key(linkage_dir: Path, project: str) -> bytes:
    return read_or_create_key(project_key_path(linkage_dir, project))
