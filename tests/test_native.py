"""The compiled FHIR hot path (mypyc, `medhub._native`): used where built and up to date, the
same results as the pure Python source, and the tests that look inside the walk (monkeypatching
its functions, which compiled code calls directly) run under MEDHUB_PURE_PYTHON=1."""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import IN_CI, need

from medhub import _native

ROOT = Path(__file__).resolve().parent.parent
PURE_FILES = [  # tests that patch the walk's internals: meaningful only on the Python source
    "tests/test_deid_fhir_plans.py",
    "tests/test_deid_fhir_bundle_refs.py",
    "tests/test_deid_fhir.py",
    "tests/test_ingest_fhir_refs.py",
]


def _fake_tree(tmp_path: Path, compiled: bool = True) -> tuple[Path, dict[str, str]]:
    recorded = {}
    for name in _native.COMPILED:
        py = _native.source_path(tmp_path, name)
        py.parent.mkdir(parents=True, exist_ok=True)
        py.write_text(f"# {name}\n")
        recorded[name] = hashlib.sha256(py.read_bytes()).hexdigest()
        if compiled:
            py.with_suffix(importlib.machinery.EXTENSION_SUFFIXES[0]).write_bytes(b"")
    return tmp_path, recorded


def test_up_to_date_compiled_modules_are_used(tmp_path: Path) -> None:
    root, recorded = _fake_tree(tmp_path)
    assert _native.sources_to_load(root, recorded, pure=False) == ({}, [])


def test_one_stale_module_sends_all_to_source(tmp_path: Path) -> None:
    root, recorded = _fake_tree(tmp_path)
    edited = _native.COMPILED[1]
    _native.source_path(root, edited).write_text("# edited since the build\n")
    files, stale = _native.sources_to_load(root, recorded, pure=False)
    assert stale == [edited]
    assert set(files) == set(_native.COMPILED)  # all or none: compiled modules call each other
    assert all(p.suffix == ".py" for p in files.values())


def test_no_manifest_means_nothing_compiled_is_trusted(tmp_path: Path) -> None:
    root, _ = _fake_tree(tmp_path)
    files, stale = _native.sources_to_load(root, {}, pure=False)
    assert set(files) == set(stale) == set(_native.COMPILED)


def test_pure_asks_for_source_and_no_compiled_file_needs_nothing(tmp_path: Path) -> None:
    root, recorded = _fake_tree(tmp_path)
    assert set(_native.sources_to_load(root, recorded, pure=True)[0]) == set(_native.COMPILED)
    bare, recorded = _fake_tree(tmp_path / "bare", compiled=False)
    assert _native.sources_to_load(bare, {}, pure=False) == ({}, [])


def test_the_build_compiled_the_hot_path() -> None:
    compiled = _native.compiled_modules()
    if not compiled:
        if IN_CI:  # the CI machine has a C compiler: a build that compiled nothing is a failure
            pytest.fail("no compiled module is in use (see setup.py's messages in the install log)")
        need("the FHIR hot path is not compiled here (no C compiler, or MEDHUB_PURE_PYTHON=1)")
    assert compiled == list(_native.COMPILED)
    assert not _native.stale_modules()


def test_the_guard_loads_the_source_under_medhub_pure_python() -> None:
    code = "import json; from medhub import _native; print(json.dumps(_native.compiled_modules()))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, _native.PURE_ENV: "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == []


def _digest_script(corpus: Path) -> str:
    return f"""
import hashlib, json
from datetime import date
from pathlib import Path
import orjson
from medhub.ingest import detect, fhir
from medhub.ingest.plan import plan
from medhub.privacy.deid.common import Policy, SourceSecrets
from medhub.privacy.deid.fhir import PatientIndex, deid_resource
from medhub.privacy.keys import KeyStore
from medhub import _native
out = {{"compiled": _native.compiled_modules()}}
units = [u for u in plan([Path({str(corpus / "synth")!r})]) if u.format in (detect.JSON, detect.NDJSON)]
policies = [Policy(), Policy(fhir_notes="clean", address_level=2), Policy(shift_dates=False)]
for i, policy in enumerate(policies):
    secrets = SourceSecrets(KeyStore(Path({str(corpus)!r}) / "keys"), "native")
    index, h, n = PatientIndex(), hashlib.sha256(), 0
    for u in units:
        reader = fhir.read_ndjson if u.format == detect.NDJSON else fhir.read_json
        for it in reader(u.path, resolve=False):
            if isinstance(it, fhir.FhirItem):
                res = deid_resource(it.resource, secrets, policy, index, date(2026, 12, 4), refs=it.refs)
                h.update(orjson.dumps(res)); n += 1
    out[str(i)] = [n, h.hexdigest()]
print(json.dumps(out))
"""


def test_compiled_and_pure_give_the_same_rows(tmp_path: Path) -> None:
    from medhub.synth import generate

    generate(tmp_path / "synth", hospitals=3, patients=80, seed=21)
    runs = {}
    for pure in ("0", "1"):
        out = subprocess.run(
            [sys.executable, "-c", _digest_script(tmp_path)],
            env={**os.environ, _native.PURE_ENV: pure},
            capture_output=True,
            text=True,
            check=True,
        )
        runs[pure] = json.loads(out.stdout)
    assert runs["1"]["compiled"] == []
    if not runs["0"]["compiled"]:
        need("nothing compiled here: compiled and pure cannot be compared")
    assert {k: v for k, v in runs["0"].items() if k != "compiled"} == {
        k: v for k, v in runs["1"].items() if k != "compiled"
    }
    assert runs["0"]["0"][0] > 1000


def test_walk_internals_tests_pass_on_the_python_source() -> None:
    if not _native.compiled_modules():
        pytest.skip("nothing is compiled here: these files already ran on the Python source")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PURE_FILES],
        cwd=ROOT,
        env={**os.environ, _native.PURE_ENV: "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "skipped" not in out.stdout.splitlines()[-1], out.stdout[-500:]
