"""The composition root of ingestion: ingest readers -> privacy gate -> lake writer.

`ingest_paths(settings, source, paths)` is what the CLI and the demo call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from medhub.config import Settings
from medhub.ingest.pipeline import Progress, RunSummary, run_batch
from medhub.ingest.progress import progress_bar
from medhub.ingest.records import Gate
from medhub.lake.writer import LakeWriter
from medhub.store import open_store

_SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def hub_gate(settings: Settings, source: str) -> Gate:
    """The hub's privacy gate for `source`."""
    from medhub.privacy.gate import make_gate

    return make_gate(settings, source)


def ingest_paths(
    settings: Settings,
    source: str,
    paths: Iterable[Path | str],
    gate: Gate | None = None,
    progress: bool | Progress | None = True,
    *,
    commit_bytes: int = 256 * 1024 * 1024,
    commit_seconds: float = 30.0,
) -> RunSummary:
    """Ingest `paths` for `source` into the lake of `settings` (gate=None: the hub's privacy gate).

    progress: True shows a progress bar on a terminal; a callable receives ("start", n) and
    ("advance", path) events; False or None shows nothing."""
    if not _SOURCE.match(source):
        raise ValueError(
            f"invalid source id {source!r}: use letters, digits, '.', '_' or '-' "
            "(at most 128, not starting with '.')"
        )
    if progress is True:
        with progress_bar(f"ingest {source}") as callback:
            return ingest_paths(
                settings,
                source,
                paths,
                gate,
                callback,
                commit_bytes=commit_bytes,
                commit_seconds=commit_seconds,
            )
    progress = progress or None
    settings.ensure_dirs()
    engine = open_store(settings.database_url)
    try:
        gate = gate if gate is not None else hub_gate(settings, source)
        writer = LakeWriter(settings, source)
        try:
            return run_batch(
                paths,
                source,
                gate,
                writer,
                engine,
                progress,
                quarantine_dir=settings.quarantine_dir,
                commit_bytes=commit_bytes,
                commit_seconds=commit_seconds,
            )
        finally:
            writer.close()
    finally:
        engine.dispose()
