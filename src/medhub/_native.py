"""Which modules run compiled (mypyc) and the guard that a compiled module matches its source.

`setup.py` compiles the modules in COMPILED (the FHIR hot path: reader, element walk, dates, free
text, their caches, the lake's row values) where mypyc and a C compiler are at hand, and records the
sha256 of each source it compiled in MANIFEST. At import of `medhub`, `install_guard()` has every
listed module load from its Python source instead of its compiled file where any of them differs
from what was compiled (a source edited since the build: `make` rebuilds; compiled modules call each
other directly, so it is all or none) or where MEDHUB_PURE_PYTHON=1 asks for pure Python: compiled
code is never used out of date. The pure Python modules are the same code, only slower.

This module imports nothing from medhub (setup.py loads it on its own).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path

COMPILED = (
    "medhub.ingest.fhir",
    "medhub.privacy.deid.cache",
    "medhub.privacy.deid.dates",
    "medhub.privacy.deid.text",
    "medhub.privacy.deid.fhir_elements",
    "medhub.privacy.deid.fhir",
    "medhub.lake.fhir_rows",
)
MANIFEST = "_native_sources.json"  # module -> sha256 of the source the build compiled
PURE_ENV = "MEDHUB_PURE_PYTHON"


def source_path(src_root: Path, name: str) -> Path:
    """The .py file of module `name` under `src_root` (the folder holding the `medhub` package)."""
    return src_root.joinpath(*name.split(".")).with_suffix(".py")


def _compiled_file(py: Path) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        p = py.with_suffix(suffix)
        if p.exists():
            return p
    return None


class _SourceFirst:
    """A meta path finder that loads the named modules from their .py files."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(self, fullname: str, path: object = None, target: object = None):  # noqa: ANN201
        py = self.files.get(fullname)
        return importlib.util.spec_from_file_location(fullname, py) if py is not None else None


_guard: _SourceFirst | None = None
_stale: list[str] = []


def sources_to_load(
    src_root: Path, recorded: dict[str, str], pure: bool
) -> tuple[dict[str, Path], list[str]]:
    """(the listed modules to load from their .py file, those of them compiled out of date).

    A module without a compiled file is imported the usual way. Compiled modules call each other
    directly, so it is all or none: with one stale, or with `pure`, every compiled one runs from
    source."""
    files: dict[str, Path] = {}
    stale: list[str] = []
    for name in COMPILED:
        py = source_path(src_root, name)
        if not py.exists() or _compiled_file(py) is None:
            continue
        files[name] = py
        if recorded.get(name) != hashlib.sha256(py.read_bytes()).hexdigest():
            stale.append(name)
    return (files if pure or stale else {}), stale


def install_guard() -> None:
    """Make out-of-date (or, with MEDHUB_PURE_PYTHON=1, all) compiled modules load from source."""
    global _guard
    if _guard is not None:
        return
    src_root = Path(__file__).resolve().parent.parent
    try:
        recorded = json.loads((src_root / "medhub" / MANIFEST).read_text())
    except (OSError, ValueError):
        recorded = {}
    pure = os.environ.get(PURE_ENV) == "1"
    files, stale = sources_to_load(src_root, recorded, pure)
    if stale and not pure:
        _stale.extend(stale)
        warnings.warn(
            f"medhub: compiled {', '.join(stale)} out of date with the source: running every compiled "
            "module from its Python source instead (rebuild with `make native`)",
            RuntimeWarning,
            stacklevel=2,
        )
    if files:
        _guard = _SourceFirst(files)
        sys.meta_path.insert(0, _guard)


def compiled_modules() -> list[str]:
    """The listed modules that are loaded from a compiled file now (imports them)."""
    out = []
    for name in COMPILED:
        module = importlib.import_module(name)
        if not str(getattr(module, "__file__", "")).endswith(".py"):
            out.append(name)
    return out


def stale_modules() -> list[str]:
    """Compiled modules found out of date with their source at import (run from source instead)."""
    return list(_stale)
