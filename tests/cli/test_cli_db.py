"""`segue db upgrade`: the store migrated on its own, as the chart's migrations Job runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.store.sql import make_engine
from orchestrator.store.sql.connection import alembic_config, current_revision, sqlite_url

runner = CliRunner()
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_db_upgrade_migrates_an_empty_store_to_the_head_and_then_has_nothing_to_do(
    tmp_path: Path,
) -> None:
    url = sqlite_url(tmp_path / "state.db")
    first = runner.invoke(app, ["db", "upgrade", "--database-url", url, "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {"database": url, "from": None, "to": HEAD}
    again = runner.invoke(app, ["db", "upgrade", "--database-url", url])
    assert again.exit_code == 0, again.output
    assert f"at revision {HEAD}, nothing to do" in again.stdout
    assert current_revision(make_engine(url)) == HEAD


def test_db_upgrade_without_a_url_migrates_the_sqlite_file_under_segue_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEGUE_DATABASE_URL", raising=False)
    monkeypatch.setenv("SEGUE_HOME", str(tmp_path / "home"))
    done = runner.invoke(app, ["db", "upgrade"])
    assert done.exit_code == 0, done.output
    assert current_revision(make_engine(sqlite_url(tmp_path / "home" / "segue.db"))) == HEAD


def test_db_upgrade_names_a_database_url_it_cannot_use() -> None:
    done = runner.invoke(app, ["db", "upgrade", "--database-url", "mysql://db/segue"])
    assert done.exit_code == 1
    assert "mysql" in done.output and "SEGUE_DATABASE_URL" in done.output
