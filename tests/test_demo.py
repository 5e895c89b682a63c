"""The demo end to end on a small synthetic population, and the privacy invariant: after ingesting
the synthetic hospitals through the hub's gate, no identifying string the generator wrote
(DIR/truth/identifiers.txt) appears in any lake file (Parquet decoded as text, blobs as bytes)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from medhub.config import Settings
from medhub.demo import STEPS, run_demo
from medhub.lake.scan import Matcher, scan_lake


def test_matcher_agrees_with_naive_search() -> None:
    needles = ["KIM MINJUN", "김민준", "800101-1234567", "010-1234-5678", "ab", "Seoul"]
    text = "xx 김민준 yy 800101-1234567 zz KIM MINJUn Seou ab".encode()
    m = Matcher(needles)
    assert m.find(text) == {n for n in needles if n.encode() in text}
    assert m.find("김민준".encode("euc-kr")) == {"김민준"}  # Korean in DICOM's ISO 2022 IR 149 bytes


@pytest.mark.slow
@pytest.mark.parametrize(
    ("patients", "seed"),
    [(60, 11), pytest.param(300, 7, id="make-demo")],
)
def test_demo_lands_three_hospitals_and_no_identifier_reaches_the_lake(
    settings: Settings, patients: int, seed: int
) -> None:
    out = io.StringIO()
    ctx = run_demo(settings, Console(file=out, width=120), patients=patients, seed=seed)
    assert [s.__name__ for s in STEPS] == [
        "synthesize",
        "ingest",
        "show_catalog",
        "check_privacy",
        "link",
        "views",
        "fleet",
        "report",
    ]
    sources = {h["source_id"] for h in ctx.manifest["hospitals"]}
    assert len(sources) == 3
    assert {e.source for e in ctx.catalog} == sources
    kinds = {(e.source, e.kind) for e in ctx.catalog}
    assert all((s, k) in kinds for s in sources for k in ("fhir", "dicom", "biosignal"))
    for s in ctx.summaries:
        assert s.counts["Patient"].accepted > 0 and s.counts["dicom"].accepted > 0
    # the privacy invariant, checked here again over every lake file
    identifiers = [x for x in (ctx.input_dir / "truth" / "identifiers.txt").read_text().splitlines() if x]
    assert len(identifiers) > 100
    leaks = scan_lake(settings.lake_dir, identifiers)
    assert not leaks, f"{len(leaks)} identifiers in the lake, e.g. {list(leaks.items())[:5]}"
    assert sum(1 for p in settings.lake_dir.rglob("*") if p.is_file()) > 50
    assert "Report" in out.getvalue() and "OK" in out.getvalue()
    # keys live outside the home
    assert any(settings.key_dir.rglob("*.key"))
    assert not any(p.suffix == ".key" for p in Path(settings.home).rglob("*"))
