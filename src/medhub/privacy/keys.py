"""The key store: one 32-byte random secret per (source, purpose), kept under settings.key_dir.

Keys are created on first use (atomically, mode 0600, in a 0700 folder) and never written
anywhere else. The store refuses a key folder inside or around the hub home, so that keys
never sit beside the data they protect.

Purposes used by the gate: "pseudonym" (identifiers), "date-shift" (per-patient date offset),
"uid" (DICOM UID remapping). Other domains may add their own purposes.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path

from medhub.config import ConfigError, Settings, path_inside

KEY_BYTES = 32
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class KeyStoreError(RuntimeError):
    """A key file is unreadable, of the wrong size, or has unsafe permissions."""


def _check_name(kind: str, value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"invalid {kind} name {value!r}: use letters, digits, '.', '_' or '-' (max 128)")
    return value


class KeyStore:
    """Keys under one folder: `<key_dir>/<source>/<purpose>.key`."""

    def __init__(self, key_dir: Path, home: Path | None = None) -> None:
        key_dir = Path(key_dir).absolute()
        if home is not None and (path_inside(key_dir, home) or path_inside(Path(home), key_dir)):
            raise ConfigError(
                f"key store {key_dir} overlaps the hub home {home}: "
                "keys must never sit beside the data they protect"
            )
        self.key_dir = key_dir
        self._cache: dict[tuple[str, str], bytes] = {}

    def path(self, source: str, purpose: str) -> Path:
        return self.key_dir / _check_name("source", source) / f"{_check_name('purpose', purpose)}.key"

    def key(self, source: str, purpose: str) -> bytes:
        """The key for (source, purpose), created with fresh randomness on first use."""
        cached = self._cache.get((source, purpose))
        if cached is not None:
            return cached
        path = self.path(source, purpose)
        if not path.exists():
            self._create(path)
        key = self._read(path)
        self._cache[(source, purpose)] = key
        return key

    def _create(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.key_dir, 0o700)
        os.chmod(path.parent, 0o700)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process created the key first: theirs wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)

    def _read(self, path: Path) -> bytes:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise KeyStoreError(f"{path}: key file is readable by others (mode {mode:o}); expected 600")
        data = path.read_bytes()
        if len(data) != KEY_BYTES:
            raise KeyStoreError(f"{path}: key file holds {len(data)} bytes, expected {KEY_BYTES}")
        return data


def key_store(settings: Settings) -> KeyStore:
    """The hub's key store (settings.key_dir), refusing one inside settings.home."""
    return KeyStore(settings.key_dir, home=settings.home)


_SHA256_BLOCK = 64


class KeyedHmac:
    """HMAC-SHA256 under one key for many messages: RFC 2104 with the key's padded inner and outer
    SHA-256 states computed once and copied per message, so that a short message costs two small
    hashes and no key set-up (about half the time of `hmac.digest` per call, the same digest).
    `raw(message)` is the HMAC of bytes as they are, `digest(*parts)` that of the parts joined
    unambiguously, `pseudonym` its hex; `inner()` and `outer()` give fresh copies of the two keyed
    states (for a loop of its own)."""

    __slots__ = ("inner", "outer")

    def __init__(self, key: bytes, prefix: bytes = b"") -> None:
        if len(key) > _SHA256_BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_SHA256_BLOCK, b"\0")
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        inner.update(prefix)  # a prefix every message starts with (a domain), hashed once
        self.inner = inner.copy
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in key)).copy

    def raw(self, message: bytes) -> bytes:
        h = self.inner()
        h.update(message)
        o = self.outer()
        o.update(h.digest())
        return o.digest()

    def digest(self, *parts: str) -> bytes:
        return self.raw("\x1f".join(parts).encode("utf-8"))

    def pseudonym(self, value: str, kind: str = "id", length: int = 32) -> str:
        """A keyed pseudonym of `value`: lowercase hex of the HMAC of (kind, value), `length` chars.

        `kind` separates name spaces (a patient id and an accession number with the same text map apart).
        """
        return self.digest(kind, value).hex()[:length]
