"""The hub's metadata store: SQLAlchemy 2 models and Alembic migrations (a shared helper).

SQLite by default, PostgreSQL in production; both are tested. `open_store(url)` returns an
Engine whose schema has been upgraded to the newest migration (shipped inside the package).
The functions in `medhub.store.ops` read and write the records.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine, make_url

from medhub.store.models import Base, FileSeen, IngestRun, LakeCommit, QuarantineEntry, Source

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

__all__ = [
    "Base",
    "FileSeen",
    "IngestRun",
    "LakeCommit",
    "QuarantineEntry",
    "Source",
    "current_revision",
    "head_revision",
    "open_store",
]


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def open_store(database_url: str) -> Engine:
    """An Engine on `database_url`, with the schema upgraded to the newest migration."""
    url = make_url(database_url)
    kwargs: dict = {}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 60}
    engine = sa.create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DBAPI connection
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

    if current_revision(engine) != head_revision():
        cfg = _alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    return engine
