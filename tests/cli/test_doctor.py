"""childindex doctor: every check, failing where it should, naming what to do."""

from __future__ import annotations

from typer.testing import CliRunner

from childindex.cli import app
from childindex.cli.doctor import diagnose
from tests.conftest import TEST_KEY

runner = CliRunner()


def _by_name(checks) -> dict:
    return {c.name: c for c in checks}


def test_a_ready_installation_passes_every_check(settings) -> None:
    checks = _by_name(diagnose())
    assert all(c.ok for c in checks.values()), [c for c in checks.values() if not c.ok]
    assert {"settings", "pseudonymisation key", "index database", "index schema", "key epoch"} <= set(checks)
    assert "folder: drop health" in checks and "folder: outbox social_care" in checks
    assert "quality report" in checks["airflow plugin"].detail
    assert not any(c.warning for c in checks.values()), "folders are created closed to other users"
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0 and "ready" in result.output
    assert TEST_KEY not in result.output, "the key is shown only by its id"


def test_what_is_wrong_is_named_with_what_to_do(settings, monkeypatch) -> None:
    from sqlalchemy import text

    from childindex.index.db import engine_for

    with engine_for(settings.index_url).begin() as conn:
        conn.execute(text("INSERT INTO key_epoch VALUES (1, 'someotherkeyid00', '2026-01-01')"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0004'"))
    (settings.drop_folder("health")).rmdir()
    settings.outbox("education").chmod(0o777)
    checks = _by_name(diagnose())
    assert "run 'childindex db upgrade'" in checks["index schema"].detail and not checks["index schema"].ok
    assert "key epoch" not in checks, "skipped while the schema is behind"
    assert not checks["folder: drop health"].ok and "does not exist" in checks["folder: drop health"].detail
    assert checks["folder: outbox education"].warning and "chmod o-rwx" in checks["folder: outbox education"].detail
    from alembic.script import ScriptDirectory

    from childindex.index.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config(settings.index_url)).get_current_head()
    with engine_for(settings.index_url).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :h"), {"h": head})
    epoch = _by_name(diagnose())["key epoch"]
    assert not epoch.ok and "someotherkeyid00" in epoch.detail and "docs/keys.md" in epoch.detail
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1

    monkeypatch.setenv("CHILDINDEX_INDEX_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    db = _by_name(diagnose())["index database"]
    assert not db.ok and "CHILDINDEX_INDEX_URL" in db.detail
    monkeypatch.delenv("CHILDINDEX_PSEUDONYMISATION_KEY")
    key = _by_name(diagnose())["pseudonymisation key"]
    assert not key.ok and "CHILDINDEX_PSEUDONYMISATION_KEY_FILE" in key.detail


def test_an_unregistered_airflow_plugin_is_a_warning() -> None:
    from childindex.cli.doctor import _plugin, _run

    check = _run("airflow plugin", lambda: _plugin(group="no.such.group"))
    assert check.ok and check.warning and "pip install ." in check.detail
