"""The key store: keys created once, 0600, never under the hub home, distinct per source and purpose."""

from __future__ import annotations

import hmac
import stat
from pathlib import Path

import pytest

from medhub.config import ConfigError, Settings
from medhub.privacy.keys import (
    KEY_BYTES,
    KeyedHmac,
    KeyStore,
    KeyStoreError,
    key_store,
)


def test_key_created_once_with_private_permissions(settings: Settings) -> None:
    ks = key_store(settings)
    k1 = ks.key("hosp-a", "pseudonym")
    assert len(k1) == KEY_BYTES
    path = ks.path("hosp-a", "pseudonym")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert key_store(settings).key("hosp-a", "pseudonym") == k1  # a fresh store reads the same key
    assert ks.key("hosp-a", "uid") != k1
    assert ks.key("hosp-b", "pseudonym") != k1


def test_keys_never_under_home(settings: Settings) -> None:
    key_store(settings).key("hosp-a", "pseudonym")
    assert not any(p.suffix == ".key" for p in settings.home.rglob("*"))
    assert list(settings.key_dir.rglob("*.key"))


def test_key_dir_inside_home_refused(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    bad = Settings(home=home, database_url="sqlite://", key_dir=home / "keys", linkage_dir=tmp_path / "l")
    with pytest.raises(ConfigError, match="keys must never sit beside"):
        key_store(bad)
    with pytest.raises(ConfigError):
        KeyStore(tmp_path, home=home)  # a key dir enclosing the home is refused too


def test_unsafe_or_damaged_key_refused(settings: Settings) -> None:
    ks = key_store(settings)
    ks.key("s", "pseudonym")
    path = ks.path("s", "pseudonym")
    path.chmod(0o644)
    with pytest.raises(KeyStoreError, match="readable by others"):
        key_store(settings).key("s", "pseudonym")
    path.chmod(0o600)
    path.write_bytes(b"short")
    with pytest.raises(KeyStoreError, match="5 bytes"):
        key_store(settings).key("s", "pseudonym")


def test_bad_names_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="invalid source"):
        key_store(settings).key("../etc", "pseudonym")


def keyed_digest(key: bytes, *parts: str) -> bytes:
    """The oracle: HMAC-SHA256 of the parts joined by U+001F, as `hmac.digest` computes it."""
    return hmac.digest(key, "\x1f".join(parts).encode("utf-8"), "sha256")


def pseudonym(key: bytes, value: str, kind: str = "id", length: int = 32) -> str:
    """`KeyedHmac(key).pseudonym`, one call per key (for the assertions below)."""
    return KeyedHmac(key).pseudonym(value, kind, length)


def test_pseudonym_keyed_and_kind_separated() -> None:
    a, b = b"a" * 32, b"b" * 32
    assert pseudonym(a, "123") == pseudonym(a, "123")
    assert pseudonym(a, "123") != pseudonym(b, "123")
    assert pseudonym(a, "123", "patient") != pseudonym(a, "123", "accession")
    assert len(pseudonym(a, "x")) == 32


@pytest.mark.parametrize("key_len", [16, 32, 64, 65, 200])
def test_keyed_hmac_gives_the_digests_of_hmac(key_len: int) -> None:
    """KeyedHmac (the key's states computed once) is HMAC-SHA256 as `hmac.digest` computes it,
    for keys shorter and longer than a SHA-256 block, with and without a prefix."""
    key = bytes(range(key_len % 256)) * (key_len // 256 + 1)
    key = key[:key_len] or b"\x01" * key_len
    keyed = KeyedHmac(key)
    for value in ["", "x", "홍길동" * 40, "a\x1fb" * 50]:
        assert keyed.digest("uid", value) == keyed_digest(key, "uid", value)
        assert keyed.pseudonym(value, "accession", 16) == keyed_digest(key, "accession", value).hex()[:16]
        assert keyed.raw(value.encode()) == hmac.digest(key, value.encode(), "sha256")
        assert KeyedHmac(key, b"dom\x1f").raw(value.encode()) == hmac.digest(
            key, b"dom\x1f" + value.encode(), "sha256"
        )
    assert KeyedHmac(key).digest("a", "b") != KeyedHmac(key + b"!").digest("a", "b")
