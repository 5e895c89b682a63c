"""Key files of the linkage unit: its project keys, for per-project pseudonyms.

Layout under settings.linkage_dir, never inside the hub home (config refuses that):

    unit/project-keys/<project>.key     the unit's keys for per-project pseudonyms

Round keys (the token keys) are NOT here: they belong to the key custodian on the source side
(`medhub.privacy.linkage.intake.round_key`, in the key store under settings.key_dir), so the unit
that holds the tokens never holds the key that made them. Keys are 32 random bytes, written
atomically with mode 0600 in 0700 folders by `medhub.privacy.keys.KeyStore` (rooted at unit/).
"""

from __future__ import annotations

import re
from pathlib import Path

from medhub.privacy.keys import KEY_BYTES, KeyStore

__all__ = ["KEY_BYTES", "check_name", "project_key", "project_key_path"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PROJECT_KEYS = "project-keys"  # the key store's "source" folder under <linkage_dir>/unit


def check_name(kind: str, value: str) -> str:
    if not _NAME.match(value or ""):
        raise ValueError(f"invalid {kind} {value!r}: use letters, digits, '.', '_' or '-' (max 128)")
    return value


def project_key_path(linkage_dir: Path, project: str) -> Path:
    return _store(linkage_dir).path(_PROJECT_KEYS, check_name("project", project))


def project_key(linkage_dir: Path, project: str) -> bytes:
    """The unit's key for `project`, created on first use (the key store's atomic 0600 write)."""
    return _store(linkage_dir).key(_PROJECT_KEYS, check_name("project", project))


def _store(linkage_dir: Path) -> KeyStore:
    return KeyStore(Path(linkage_dir) / "unit")
