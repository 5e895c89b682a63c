"""The SQL on FHIR v2 conformance runner: evaluate each test's view over its resources, compare, report.

For each test file, the file's resources are loaded once into one DuckDB connection (a table of
resource_type + resource JSON); each test's view is parsed, compiled and run over it. Rows are
compared order-insensitively unless the test gives `expectColumns`. An `expectError` test passes
only if the view is rejected (at validation, compilation or run time). `run_suite` returns the
specification's test_report.json structure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import duckdb

from medhub.views.definition import ViewError, parse_view
from medhub.views.run import load_resources_table, run_view_on


def _norm(v: object) -> object:
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int | float):
        if isinstance(v, float) and math.isfinite(v) and v == int(v):
            return int(v)
        return round(float(v), 9) if isinstance(v, float) else v
    if isinstance(v, list | tuple):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    return str(v)


def _key(row: dict) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def compare(expected: list[dict], columns: list[str], rows: list[tuple]) -> str | None:
    """None when the rows match the expectation, else a message saying how they differ."""
    got = [{c: _norm(v) for c, v in zip(columns, r, strict=True)} for r in rows]
    want = [{k: _norm(v) for k, v in e.items()} for e in expected]
    if want:
        want_cols = set().union(*(w.keys() for w in want))
        if want_cols != set(columns):
            return f"columns differ: expected {sorted(want_cols)}, got {columns}"
    if sorted(map(_key, got)) != sorted(map(_key, want)):
        return f"rows differ: expected {want}, got {got}"
    return None


def run_test(con: duckdb.DuckDBPyConnection, test: dict) -> dict:
    expect_error = bool(test.get("expectError"))
    try:
        view = parse_view(test["view"])
        columns, rows = run_view_on(con, view, "resources")
    except (ViewError, duckdb.Error) as exc:
        if expect_error:
            return {"passed": True}
        return {"passed": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
    if expect_error:
        return {"passed": False, "error": "expected the view to be rejected, but it ran"}
    if "expectColumns" in test and list(test["expectColumns"]) != columns:
        return {"passed": False, "error": f"column order: expected {test['expectColumns']}, got {columns}"}
    problem = compare(test.get("expect", []), columns, rows)
    return {"passed": True} if problem is None else {"passed": False, "error": problem[:2000]}


def run_file(path: Path) -> dict:
    suite = json.loads(path.read_text(encoding="utf-8"))
    con = duckdb.connect()
    try:
        load_resources_table(con, "resources", suite.get("resources", []))
        results = [{"name": t["title"], "result": run_test(con, t)} for t in suite.get("tests", [])]
    finally:
        con.close()
    return {"tests": results}


def run_suite(directory: Path, progress: Callable[[str], None] | None = None) -> dict:
    """Run every tests/*.json (or *.json) under `directory`; return the test_report.json mapping."""
    directory = Path(directory)
    tests_dir = directory / "tests" if (directory / "tests").is_dir() else directory
    files = sorted(tests_dir.glob("*.json"))
    if not files:
        raise ViewError(f"{tests_dir}: no test files (*.json) found")
    report = {}
    for f in files:
        if progress:
            progress(f.name)
        report[f.name] = run_file(f)
    return report


def summary(report: dict) -> tuple[int, int]:
    """(passed, total) over a report."""
    results = [t["result"]["passed"] for f in report.values() for t in f["tests"]]
    return sum(results), len(results)
