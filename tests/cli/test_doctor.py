"""childindex doctor: every check, failing where it should, naming what to do."""

from __future__ import annotations

import os

from typer.testing import CliRunner

from childindex.cli import app
from childindex.cli.doctor import diagnose
from tests.conftest import TEST_KEY
from tests.helpers import ORG

runner = CliRunner()


def _by_name(checks) -> dict:
    return {c.name: c for c in checks}


def test_a_ready_installation_passes_every_check(settings) -> None:
    checks = _by_name(diagnose())
    assert all(c.ok for c in checks.values()), [c for c in checks.values() if not c.ok]
    assert {"settings", "pseudonymisation key", "index database", "index schema", "key epoch"} <= set(checks)
    assert "folder: drop root" in checks and "folder: outbox root" in checks
    assert "3 organisations in 1 areas" in checks["organisations registry"].detail
    assert checks["organisations' folders"].detail.startswith("3 drop folders and outboxes present")
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
    (settings.drop_folder(ORG["health"])).rmdir()
    settings.outbox(ORG["education"]).chmod(0o777)
    (settings.drop_root / "XYZ").mkdir()  # a folder no registered organisation owns
    settings.reports_dir.rmdir()
    checks = _by_name(diagnose())
    assert "run 'childindex db upgrade'" in checks["index schema"].detail and not checks["index schema"].ok
    assert "key epoch" not in checks, "skipped while the schema is behind"
    assert not checks["folder: reports"].ok and "does not exist" in checks["folder: reports"].detail
    # An organisation's missing folder is created by the next intake: a warning, with the other two.
    folders = checks["organisations' folders"]
    assert folders.ok and folders.warning
    assert f"1 organisations have no drop folder or outbox yet ({ORG['health']})" in folders.detail
    assert f"chmod o-rwx {settings.outbox(ORG['education'])}" in folders.detail
    assert "belong to no registered organisation (XYZ)" in folders.detail
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
    assert _by_name(diagnose())["reference key"].ok
    monkeypatch.setenv("CHILDINDEX_REFERENCE_KEY", os.environ["CHILDINDEX_PSEUDONYMISATION_KEY"])
    same = _by_name(diagnose())["reference key"]
    assert not same.ok and "must differ" in same.detail
    monkeypatch.delenv("CHILDINDEX_PSEUDONYMISATION_KEY")
    key = _by_name(diagnose())["pseudonymisation key"]
    assert not key.ok and "CHILDINDEX_PSEUDONYMISATION_KEY_FILE" in key.detail
    monkeypatch.delenv("CHILDINDEX_REFERENCE_KEY")
    reference = _by_name(diagnose())["reference key"]
    assert not reference.ok and "CHILDINDEX_REFERENCE_KEY_FILE" in reference.detail


def test_an_unregistered_airflow_plugin_is_a_warning() -> None:
    from childindex.cli.doctor import _plugin, _run

    check = _run("airflow plugin", lambda: _plugin(group="no.such.group"))
    assert check.ok and check.warning and "pip install ." in check.detail


def test_a_broken_registry_fails_its_check_and_names_the_entry(settings, tmp_path, monkeypatch) -> None:
    from tests.conftest import TEST_REGISTRY

    broken = tmp_path / "organisations.yaml"
    broken.write_text(TEST_REGISTRY.read_text().replace("contract: education_mis", "contract: education_sims"))
    monkeypatch.setenv("CHILDINDEX_ORGANISATIONS_FILE", str(broken))
    checks = _by_name(diagnose())
    registry = checks["organisations registry"]
    assert not registry.ok and "organisations[1] (code 840): field contract" in registry.detail
    assert "organisations' folders" not in checks, "skipped without a registry"
    assert runner.invoke(app, ["doctor"]).exit_code == 1


def test_a_misspelt_variable_is_named_with_the_setting_it_was_meant_to_be(settings, monkeypatch, caplog) -> None:
    """Issue 19 (item 7): a misspelt CHILDINDEX_* variable was ignored in silence."""
    import logging

    from childindex.settings import load_settings, unknown_variables

    monkeypatch.setenv("CHILDINDEX_RETENTON__ARCHIVE_DAYS", "3")  # "retention", misspelt
    monkeypatch.setenv("CHILDINDEX_NOTHING_LIKE_IT", "secret-value")
    lines = unknown_variables()
    assert lines == [
        "CHILDINDEX_NOTHING_LIKE_IT is not a childindex setting and is ignored (the README lists every setting)",
        "CHILDINDEX_RETENTON__ARCHIVE_DAYS is not a childindex setting and is ignored; did you mean "
        "CHILDINDEX_RETENTION__ARCHIVE_DAYS?",
    ]
    with caplog.at_level(logging.WARNING, logger="childindex.settings"):
        load_settings()
    assert "did you mean CHILDINDEX_RETENTION__ARCHIVE_DAYS?" in caplog.text
    unknown = _by_name(diagnose())["unknown variables"]
    assert unknown.warning and "CHILDINDEX_RETENTON__ARCHIVE_DAYS" in unknown.detail
    result = runner.invoke(app, ["doctor"], env={"COLUMNS": "400"})
    assert "did you mean CHILDINDEX_RETENTION__ARCHIVE_DAYS?" in result.output
    assert "secret-value" not in result.output + caplog.text, "names only, never values"
    # Variables read elsewhere (the configuration file, the roles' passwords) are not strangers.
    monkeypatch.delenv("CHILDINDEX_RETENTON__ARCHIVE_DAYS")
    monkeypatch.delenv("CHILDINDEX_NOTHING_LIKE_IT")
    monkeypatch.setenv("CHILDINDEX_LOADER_PASSWORD", "x")
    assert unknown_variables() == []


def test_doctor_says_where_the_settings_came_from(settings, monkeypatch, tmp_path) -> None:
    detail = _by_name(diagnose())["settings"].detail
    assert detail.startswith("loaded from 4 CHILDINDEX_* variable(s) and no configuration file")
    config = tmp_path / "childindex.toml"
    config.write_text("[retention]\nstaging_days = 3\n")
    monkeypatch.setenv("CHILDINDEX_CONFIG_FILE", str(config))
    assert f"configuration file {config}" in _by_name(diagnose())["settings"].detail


def test_a_mistyped_sqlite_path_is_named_and_no_stray_database_is_made(settings, monkeypatch, tmp_path) -> None:
    """Issue 19 (item 1): doctor used to create an empty database wherever the URL pointed."""
    stray = tmp_path / "typo" / "index.sqlite"
    monkeypatch.setenv("CHILDINDEX_INDEX_URL", f"sqlite:///{stray}")
    check = _by_name(diagnose())["index database"]
    assert not check.ok and "no index file there" in check.detail
    assert not stray.exists() and not stray.parent.exists()


def test_database_failures_say_what_failed(settings, monkeypatch, pg_url) -> None:
    """Issue 19 (item 7): refused, login failed and missing database told apart."""
    from sqlalchemy.engine import make_url

    base = make_url(pg_url)
    cases = {
        "was refused": base.set(port=1),
        "login as 'childindex_nobody' failed": base.set(username="childindex_nobody"),
        "does not exist on": base.set(database="childindex_no_such_database"),
    }
    for words, url in cases.items():
        monkeypatch.setenv("CHILDINDEX_INDEX_URL", url.render_as_string(hide_password=False))
        check = _by_name(diagnose())["index database"]
        assert not check.ok and words in check.detail, check.detail
        result = runner.invoke(app, ["link", "--night", "2026-11-24"], env={"COLUMNS": "400"})
        assert result.exit_code == 1 and words in result.output and "Traceback" not in result.output


def test_a_check_the_role_may_not_make_warns_and_none_ends_in_a_traceback() -> None:
    """Issue 19 (item 1): doctor as the loader died on alembic_version's InsufficientPrivilege.
    (tests/system/test_production_steps.py runs doctor as each real role.)"""
    import psycopg
    from sqlalchemy.exc import ProgrammingError

    from childindex.cli.doctor import _run

    def denied() -> str:
        orig = psycopg.errors.InsufficientPrivilege("permission denied for table key_epoch")
        raise ProgrammingError("SELECT ...", {}, orig)

    url = "postgresql+psycopg://childindex_{}:canary-password-5120@db/childindex"
    retention = _run("key epoch", denied, url.format("retention"))
    assert retention.ok and retention.warning
    assert retention.detail == (
        "childindex_retention may not read key_epoch, as intended for the reader, retention roles: run "
        "'childindex doctor' as childindex_owner to check the key epoch (these roles need no key)"
    )
    # The loader needs key_epoch: the grants are what to put right.
    loader = _run("key epoch", denied, url.format("loader"))
    assert loader.ok and loader.warning
    assert loader.detail == (
        "childindex_loader may not read key_epoch: if its stage needs it, run sql/02_grants.sql as the owner "
        "(after every 'childindex db upgrade')"
    )
    assert "canary-password-5120" not in retention.detail + loader.detail

    def broken() -> str:
        raise RuntimeError("what went wrong\n  and a page more")

    check = _run("anything", broken)
    assert not check.ok and check.detail == "RuntimeError: what went wrong"
