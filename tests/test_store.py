"""The metadata store: migrations to head on SQLite and PostgreSQL, and the records ingestion keeps."""

from __future__ import annotations

import sqlalchemy as sa

from medhub.store import current_revision, head_revision, open_store, ops


def test_open_store_migrates_to_head_and_is_reentrant(database_url: str) -> None:
    engine = open_store(database_url)
    assert current_revision(engine) == head_revision()
    tables = set(sa.inspect(engine).get_table_names())
    assert {"sources", "ingest_runs", "files_seen", "quarantine", "lake_commits"} <= tables
    engine.dispose()
    engine = open_store(database_url)  # second open: nothing to do, nothing breaks
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_runs_files_and_quarantine_round_trip(database_url: str) -> None:
    engine = open_store(database_url)
    run = ops.start_run(engine, "hosp-a")
    assert ops.list_sources(engine) == ["hosp-a"]
    ops.record_commit(
        engine,
        run,
        "hosp-a",
        "b1",
        ["fhir/source=hosp-a/resource_type=Patient/b1.parquet"],
        3,
        [ops.FileRecord("/in/a.ndjson", 10, "aa" * 32, "blake3", "ndjson", "partial", 3)],
        [ops.QuarantineRecord("hosp-a", "/in/a.ndjson", 4, "invalid JSON", "rejected", "/q/a")],
    )
    ops.record_commit(
        engine,
        run,
        "hosp-a",
        None,
        [],
        0,
        [
            ops.FileRecord("/in/b", 0, "bb" * 32, "blake3", None, "quarantined"),
            ops.FileRecord("/in/c", 5, "cc" * 32, "sha256", "ndjson", "accepted", 1),  # before 0002
            ops.FileRecord("/in/d", 5, "dd" * 32, "blake3", "ndjson", "duplicate"),
        ],
    )
    ops.finish_run(engine, run, "finished", 2, 3, 0, 1, {"Patient": {"accepted": 3}})
    assert ops.committed_batches(engine) == {"b1"}
    assert ops.done_hashes(engine, "hosp-a", "blake3") == {"aa" * 32, "bb" * 32}
    assert ops.done_hashes(engine, "hosp-a", "sha256") == {"cc" * 32}  # only the algorithm asked for
    assert ops.done_hashes(engine, "other", "blake3") == set()
    files = {f["path"]: (f["content_hash"], f["hash_algorithm"]) for f in ops.list_files(engine)}
    assert files["/in/a.ndjson"] == ("aa" * 32, "blake3") and files["/in/c"] == ("cc" * 32, "sha256")
    q = ops.list_quarantine(engine)
    assert [(r["file"], r["line"], r["reason"]) for r in q] == [("/in/a.ndjson", 4, "invalid JSON")]
    runs = ops.list_runs(engine)
    assert runs[0]["status"] == "finished" and runs[0]["accepted"] == 3 and runs[0]["finished_at"] is not None
    engine.dispose()


def test_ingest_on_each_backend(database_url: str, settings, tmp_path) -> None:
    """The whole ingestion path on SQLite and PostgreSQL: records land, a second run adds nothing."""
    import dataclasses

    from medhub.lake.intake import ingest_paths
    from test_ingest import hmac_gate, observation, patient, write_ndjson

    s = dataclasses.replace(settings, database_url=database_url)
    (tmp_path / "in").mkdir()
    write_ndjson(tmp_path / "in" / "a.ndjson", [patient("p1"), observation("o1", "p1")])
    (tmp_path / "in" / "bad.ndjson").write_bytes(b"{oops\n")
    first = ingest_paths(s, "hosp-a", [tmp_path / "in"], gate=hmac_gate)
    second = ingest_paths(s, "hosp-a", [tmp_path / "in"], gate=hmac_gate)
    assert first.accepted == 2 and first.quarantined == 1
    assert second.accepted == 0 and second.files == {"duplicate": 2}
    engine = open_store(database_url)
    assert [r["status"] for r in ops.list_runs(engine)] == ["finished", "finished"]
    assert len(ops.list_quarantine(engine)) == 1
    assert len(ops.committed_batches(engine)) == 1
    engine.dispose()
