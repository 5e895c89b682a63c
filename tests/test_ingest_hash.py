"""The files' content hash (idempotence by file): BLAKE3 of the bytes, whether a file is read once
(hashed, then parsed) or hashed in chunks; the store records it with its algorithm, and a
quarantined file's kept copy is named by it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import orjson
import pytest
from blake3 import blake3
from pydicom.data import get_testdata_file

from medhub.config import Settings
from medhub.ingest import pipeline
from medhub.lake.intake import ingest_paths
from medhub.store import open_store, ops
from test_ingest import hmac_gate, observation, patient, write_bundle, write_ndjson, write_wfdb

EMPTY_BLAKE3 = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"  # the reference vector


def test_file_hash_is_blake3_of_the_bytes_read_whole_or_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert pipeline.HASH_ALGORITHM == "blake3"
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert pipeline.file_hash(empty) == pipeline.content_hash(b"") == EMPTY_BLAKE3
    data = os.urandom(3 * pipeline.HASH_CHUNK_BYTES + 12345)  # several chunks and a short last one
    big = tmp_path / "big"
    big.write_bytes(data)
    want = blake3(data).hexdigest()
    assert len(want) == 64
    assert pipeline.content_hash(data) == want
    assert pipeline.file_hash(big) == want
    monkeypatch.setattr(pipeline, "HASH_CHUNK_BYTES", 7)  # chunks that cut everything anywhere
    small = tmp_path / "small"
    small.write_bytes(data[:1000])
    assert pipeline.file_hash(small) == blake3(data[:1000]).hexdigest()


def test_the_store_records_blake3_of_each_file_read_once_or_in_chunks(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    write_bundle(inp / "bundle.json", "p99")  # read once
    shutil.copy(get_testdata_file("CT_small.dcm"), inp / "ct.dcm")  # read once
    write_ndjson(inp / "Patient.ndjson", [patient(f"p{i}") for i in range(40)])  # in chunks
    write_ndjson(inp / "Observation.ndjson", [observation("o1", "p1")])  # in chunks
    write_wfdb(inp)  # header and signal file, in chunks
    (inp / "bad.ndjson").write_bytes(orjson.dumps(patient("q1")) + b"\n{oops\n")  # partly quarantined

    whole, chunked = [], []
    content_hash, file_hash = pipeline.content_hash, pipeline.file_hash
    monkeypatch.setattr(pipeline, "content_hash", lambda data: whole.append(data) or content_hash(data))
    monkeypatch.setattr(pipeline, "file_hash", lambda path: chunked.append(path.name) or file_hash(path))
    monkeypatch.setattr(pipeline, "HASH_CHUNK_BYTES", 1000)  # the NDJSON files span several chunks

    s = ingest_paths(settings, "hosp-a", [inp], gate=hmac_gate, progress=False)
    assert s.counts["Patient"].accepted == 42 and s.counts["dicom"].accepted == 1
    assert len(whole) == 2  # bundle.json and ct.dcm
    assert sorted(chunked) == ["Observation.ndjson", "Patient.ndjson", "bad.ndjson", "rec1.dat", "rec1.hea"]
    assert (inp / "Patient.ndjson").stat().st_size > 3 * 1000

    engine = open_store(settings.database_url)
    files = ops.list_files(engine)
    (q,) = ops.list_quarantine(engine)
    engine.dispose()
    assert len(files) == 7
    for f in files:
        assert f["hash_algorithm"] == "blake3"
        assert f["content_hash"] == blake3(Path(f["path"]).read_bytes()).hexdigest(), f["path"]
    # the kept copy of a quarantined file is named by its content hash
    assert (
        Path(q["stored_copy"]).name
        == f"{blake3((inp / 'bad.ndjson').read_bytes()).hexdigest()[:16]}-bad.ndjson"
    )

    again = ingest_paths(settings, "hosp-a", [inp], gate=hmac_gate, progress=False)
    assert again.files == {"duplicate": 7} and again.accepted == 0
