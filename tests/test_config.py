"""Settings: defaults, overrides, and the rule that keys never sit beside the data."""

from pathlib import Path

import pytest

from medhub.config import ConfigError, load_settings


def test_defaults_put_database_under_home(tmp_path: Path) -> None:
    s = load_settings({"MEDHUB_HOME": str(tmp_path / "h"), "MEDHUB_KEY_DIR": str(tmp_path / "k"),
                       "MEDHUB_LINKAGE_DIR": str(tmp_path / "l")})
    assert s.database_url == f"sqlite:///{tmp_path / 'h' / 'medhub.sqlite3'}"
    assert s.lake_dir == tmp_path / "h" / "lake"


def test_database_url_override(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    s = load_settings({"MEDHUB_HOME": str(tmp_path / "h"), "MEDHUB_DATABASE_URL": url,
                       "MEDHUB_KEY_DIR": str(tmp_path / "k"), "MEDHUB_LINKAGE_DIR": str(tmp_path / "l")})
    assert s.database_url == url


@pytest.mark.parametrize("var", ["MEDHUB_KEY_DIR", "MEDHUB_LINKAGE_DIR"])
def test_keys_inside_home_are_refused(tmp_path: Path, var: str) -> None:
    env = {"MEDHUB_HOME": str(tmp_path / "h"), "MEDHUB_KEY_DIR": str(tmp_path / "k"),
           "MEDHUB_LINKAGE_DIR": str(tmp_path / "l")}
    env[var] = str(tmp_path / "h" / "lake" / "keys")
    with pytest.raises(ConfigError, match="never sit beside"):
        load_settings(env)
