"""A rich progress bar for a batch, as a `Progress` callback of `run_batch` (shown on a terminal only)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from medhub.ingest.pipeline import Progress as ProgressCallback


@contextmanager
def progress_bar(
    label: str, console: Console | None = None, enabled: bool | None = None
) -> Iterator[ProgressCallback]:
    """Yield a callback that drives a progress bar over the batch's files."""
    console = console or Console(stderr=True)
    if enabled is None:
        enabled = sys.stderr.isatty()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[file]}"),
        console=console,
        transient=False,
        disable=not enabled,
    ) as bar:
        task = bar.add_task(label, total=None, file="")

        def callback(event: str, payload: object) -> None:
            if event == "start":
                bar.update(task, total=int(payload))  # type: ignore[call-overload]
            elif event == "advance":
                bar.update(task, advance=1, file=Path(str(payload)).name[-40:])

        yield callback
