"""Find `../shared` (conformance suites, public samples, traces, device profiles).

The repository never copies that data; tests and benchmarks read it in place.
Set MEDHUB_SHARED_DIR to point elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path | None:
    """The shared folder, or None where it is absent."""
    candidates = []
    if os.environ.get("MEDHUB_SHARED_DIR"):
        candidates.append(Path(os.environ["MEDHUB_SHARED_DIR"]))
    candidates += [_REPO_ROOT.parent / "shared", Path.cwd().parent / "shared"]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


def shared_path(*parts: str) -> Path | None:
    """A path inside the shared folder, or None where the folder or the path is absent."""
    root = shared_dir()
    if root is None:
        return None
    p = root.joinpath(*parts)
    return p if p.exists() else None
