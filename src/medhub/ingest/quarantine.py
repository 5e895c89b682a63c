"""Quarantine: keep a copy of a bad input file (content-addressed, under settings.quarantine_dir)
so that a person can look at it; the metadata store keeps the reason."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def keep_copy(quarantine_dir: Path, source: str, path: Path, content_hash: str) -> str | None:
    """Copy `path` into the quarantine folder (once per content) and return where it lies.

    `content_hash` is the file's hex content hash (the pipeline's); its first 16 characters
    prefix the copy's name."""
    dest = quarantine_dir / _SAFE.sub("_", source) / f"{content_hash[:16]}-{_SAFE.sub('_', path.name)[:100]}"
    if dest.exists():
        return str(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.tmp")
    try:
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)
    except OSError:
        tmp.unlink(missing_ok=True)
        return None
    return str(dest)
