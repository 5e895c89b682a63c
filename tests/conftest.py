"""Shared test fixtures: an isolated hub per test, ../shared lookup, and database URLs.

A test that needs ../shared skips with a clear reason when it is absent, except under
CI=true, where absence is a failure. Likewise for the local PostgreSQL server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from medhub.config import Settings, load_settings
from medhub.shared_data import shared_dir

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("MEDHUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def need(reason: str) -> None:
    """Skip with `reason`, or fail under CI=true where nothing may be skipped for lack of a resource."""
    if IN_CI:
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The ../shared folder."""
    root = shared_dir()
    if root is None:
        need("../shared is absent (public samples and conformance suites live there)")
    return root


def shared_sub(*parts: str) -> Path:
    root = shared_dir()
    if root is None:
        need("../shared is absent (public samples and conformance suites live there)")
    p = root.joinpath(*parts)
    if not p.exists():
        need(f"../shared/{'/'.join(parts)} is absent")
    return p


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fresh hub: home, key store and linkage store in separate temporary folders."""
    env = {
        "MEDHUB_HOME": str(tmp_path / "hub"),
        "MEDHUB_KEY_DIR": str(tmp_path / "keys"),
        "MEDHUB_LINKAGE_DIR": str(tmp_path / "linkage"),
    }
    s = load_settings(env)
    s.ensure_dirs()
    return s


def _postgres_available() -> str | None:
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        return f"no PostgreSQL answers at {POSTGRES_URL}: {exc.__class__.__name__}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A metadata-store URL: a fresh SQLite file, or a fresh schema in the local PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta.sqlite3'}"
        return
    problem = _postgres_available()
    if problem:
        need(problem)
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'create schema "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'drop schema "{schema}" cascade'))
    admin.dispose()
