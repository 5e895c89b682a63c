"""One settings object for the whole hub, read from the environment.

MEDHUB_HOME          where the hub keeps its lake and metadata (default ./.medhub)
MEDHUB_DATABASE_URL  the metadata store (default: SQLite file under the home; PostgreSQL works the same)
MEDHUB_KEY_DIR       the key store (default ./.medhub-keys). Keys never sit beside the data they
                     protect, so this directory may not lie inside the home.
MEDHUB_LINKAGE_DIR   the linkage unit's own store and keys (default ./.medhub-linkage), also outside the home.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class ConfigError(ValueError):
    """The settings are inconsistent (for example, keys placed inside the lake)."""


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    key_dir: Path
    linkage_dir: Path

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def staging_dir(self) -> Path:
        """Scratch space for files being written; renamed into the lake only when complete."""
        return self.home / "staging"

    def ensure_dirs(self) -> None:
        for d in (self.home, self.lake_dir, self.quarantine_dir, self.staging_dir):
            d.mkdir(parents=True, exist_ok=True)


def path_inside(child: Path, parent: Path) -> bool:
    """Whether `child` is `parent` or lies under it (symbolic links resolved)."""
    try:
        child.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from `env` (default: the process environment) and check them."""
    env = os.environ if env is None else env
    home = Path(env.get("MEDHUB_HOME", "./.medhub")).expanduser().absolute()
    database_url = env.get("MEDHUB_DATABASE_URL") or f"sqlite:///{home / 'medhub.sqlite3'}"
    key_dir = Path(env.get("MEDHUB_KEY_DIR", "./.medhub-keys")).expanduser().absolute()
    linkage_dir = Path(env.get("MEDHUB_LINKAGE_DIR", "./.medhub-linkage")).expanduser().absolute()
    settings = Settings(home=home, database_url=database_url, key_dir=key_dir, linkage_dir=linkage_dir)
    for name, path in (("MEDHUB_KEY_DIR", key_dir), ("MEDHUB_LINKAGE_DIR", linkage_dir)):
        if path_inside(path, home) or path_inside(home, path):
            raise ConfigError(
                f"{name}={path} overlaps MEDHUB_HOME={home}: keys must never sit beside the data they protect"
            )
    return settings
