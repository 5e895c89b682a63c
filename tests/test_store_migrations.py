"""The store's migrations on SQLite and PostgreSQL: the models match them, and 0002 (files_seen's
`sha256` becomes `content_hash` with its `hash_algorithm`) upgrades a store holding SHA-256 rows,
downgrades, and upgrades again; a file seen under SHA-256 is read once more and adds nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from blake3 import blake3
from pydicom.data import get_testdata_file

from medhub.config import Settings
from medhub.lake import layout
from medhub.lake.intake import ingest_paths
from medhub.store import MIGRATIONS, Base, current_revision, head_revision, open_store, ops
from test_ingest import hmac_gate, lake_rows, observation, patient, write_ndjson

SHA = "ab" * 32  # a SHA-256 recorded before 0002
B3 = "cd" * 32  # a BLAKE3 recorded after it


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    """Upgrade (or downgrade) the store at `url` to `revision`, as `open_store` runs Alembic."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, revision)
    finally:
        engine.dispose()


def _insert_file_0001(conn: sa.Connection, run_id: int, path: str, sha256: str, batch_id: str | None) -> None:
    """A files_seen row as the code before 0002 wrote it."""
    conn.execute(
        sa.text(
            "insert into files_seen (source_id, run_id, path, size, sha256, format, status, items,"
            " batch_id, seen_at) values ('hosp-a', :run, :path, 1, :sha, NULL, 'accepted', 1,"
            " :batch, :now)"
        ),
        {"run": run_id, "path": path, "sha": sha256, "batch": batch_id, "now": ops.utcnow()},
    )


def _files_seen(engine: sa.Engine) -> tuple[dict[str, dict], dict[str, list[str]]]:
    insp = sa.inspect(engine)
    columns = {c["name"]: c for c in insp.get_columns("files_seen")}
    indexes = {i["name"]: i["column_names"] for i in insp.get_indexes("files_seen")}
    return columns, indexes


def test_models_match_the_migrations(database_url: str) -> None:
    """What the migrations build is what the models say (tables, columns, types, indexes, defaults)."""
    engine = open_store(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_0002_upgrades_sha256_rows_downgrades_and_upgrades_again(database_url: str) -> None:
    _migrate(database_url, "0001")
    engine = sa.create_engine(database_url)
    run = ops.start_run(engine, "hosp-a")  # sources and ingest_runs are the same at 0001
    with engine.begin() as conn:
        _insert_file_0001(conn, run, "/in/a.ndjson", SHA, None)
    engine.dispose()

    engine = open_store(database_url)  # upgrades, as the hub does when it opens the store
    assert current_revision(engine) == head_revision()
    columns, indexes = _files_seen(engine)
    assert "sha256" not in columns and not columns["content_hash"]["nullable"]
    assert not columns["hash_algorithm"]["nullable"] and columns["hash_algorithm"]["default"] is None
    assert indexes["ix_files_seen_source_hash"] == ["source_id", "content_hash"]
    assert "ix_files_seen_source_sha" not in indexes
    # the rows already there were SHA-256 and say so; they are not hashes of the current algorithm
    assert [(f["content_hash"], f["hash_algorithm"]) for f in ops.list_files(engine)] == [(SHA, "sha256")]
    assert ops.done_hashes(engine, "hosp-a", "sha256") == {SHA}
    assert ops.done_hashes(engine, "hosp-a", "blake3") == set()
    # the default labelled the old rows only: a new row must say its algorithm
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into files_seen (source_id, run_id, path, size, content_hash, status, items,"
                " seen_at) values ('hosp-a', :run, '/in/x', 1, :h, 'accepted', 0, :now)"
            ),
            {"run": run, "h": B3, "now": ops.utcnow()},
        )
    ops.record_commit(
        engine,
        run,
        "hosp-a",
        None,
        [],
        0,
        [ops.FileRecord("/in/b", 1, B3, "blake3", "ndjson", "accepted", 1)],
    )
    assert ops.done_hashes(engine, "hosp-a", "blake3") == {B3}
    engine.dispose()

    _migrate(database_url, "0001", down=True)
    engine = sa.create_engine(database_url)
    assert current_revision(engine) == "0001"
    columns, indexes = _files_seen(engine)
    assert "sha256" in columns and "content_hash" not in columns and "hash_algorithm" not in columns
    assert indexes["ix_files_seen_source_sha"] == ["source_id", "sha256"]
    assert "ix_files_seen_source_hash" not in indexes
    with engine.connect() as conn:  # a sha256 column holds SHA-256 only: the BLAKE3 row is gone
        assert conn.execute(sa.text("select path, sha256 from files_seen")).all() == [("/in/a.ndjson", SHA)]
    engine.dispose()

    engine = open_store(database_url)  # and up again
    assert current_revision(engine) == head_revision()
    assert ops.done_hashes(engine, "hosp-a", "sha256") == {SHA}
    engine.dispose()


def test_a_file_seen_under_sha256_is_read_again_once_and_adds_nothing(
    database_url: str, settings: Settings, tmp_path: Path
) -> None:
    """A store at 0001 that recorded its files by their SHA-256, upgraded by the next ingest: the
    files are read again (a SHA-256 is not a BLAKE3), the lake deduplicates every row and blob, and
    from then on the files are skipped by their BLAKE3."""
    s = dataclasses.replace(settings, database_url=database_url)
    inp = tmp_path / "in"
    inp.mkdir()
    write_ndjson(inp / "a.ndjson", [patient("p1"), observation("o1", "p1")])
    shutil.copy(get_testdata_file("CT_small.dcm"), inp / "ct.dcm")
    first = ingest_paths(s, "hosp-a", [inp], gate=hmac_gate, progress=False)
    assert first.accepted == 3 and first.files == {"accepted": 2}
    rows = {kind: sorted(map(str, lake_rows(s, kind))) for kind in (layout.FHIR, layout.DICOM)}
    lake_files = sorted(p for p in s.lake_dir.rglob("*") if p.is_file())
    sha256 = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in inp.iterdir()}
    b3 = {p.name: blake3(p.read_bytes()).hexdigest() for p in inp.iterdir()}

    # the store as the code before 0002 left it: at 0001, the files recorded by their SHA-256
    _migrate(database_url, "0001", down=True)
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        assert conn.execute(sa.text("select count(*) from files_seen")).scalar_one() == 0
        run_id, batch_id = conn.execute(sa.text("select run_id, batch_id from lake_commits")).one()
        for name, digest in sha256.items():
            _insert_file_0001(conn, run_id, str(inp / name), digest, batch_id)
    engine.dispose()

    second = ingest_paths(s, "hosp-a", [inp], gate=hmac_gate, progress=False)  # opens, so upgrades, the store
    assert second.files == {"accepted": 2}  # read again once ...
    assert second.accepted == 0 and second.duplicate == 3  # ... and every row was in the lake already
    assert {kind: sorted(map(str, lake_rows(s, kind))) for kind in rows} == rows
    assert sorted(p for p in s.lake_dir.rglob("*") if p.is_file()) == lake_files

    third = ingest_paths(s, "hosp-a", [inp], gate=hmac_gate, progress=False)
    assert third.files == {"duplicate": 2} and third.accepted == 0  # skipped by their BLAKE3

    engine = open_store(database_url)
    assert current_revision(engine) == head_revision()
    seen = sorted(
        (f["hash_algorithm"], f["status"], Path(f["path"]).name, f["content_hash"])
        for f in ops.list_files(engine)
    )
    assert seen == sorted(
        [("sha256", "accepted", name, digest) for name, digest in sha256.items()]
        + [
            ("blake3", status, name, digest)
            for name, digest in b3.items()
            for status in ("accepted", "duplicate")
        ]
    )
    assert len(ops.committed_batches(engine)) == 1  # the second run committed no lake batch
    engine.dispose()
