"""docs/production.md's "Setting up", run as written against this machine's PostgreSQL: the
commands come from the document's own code block, so the document and the test cannot drift
apart (issue 19, item 2). Then ``childindex doctor`` as the owner, the loader and the
retention role: no traceback, exit 0, and only the warnings the grants intend (item 1)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from string import Template

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import PG_ADMIN_URL, TEST_KEY, TEST_REFERENCE_KEY, TEST_REGISTRY, pg_admin

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "production.md"
PLACEHOLDER = "export PGHOST=db PGDATABASE=childindex"
DOCTOR_AS = "childindex_loader@"  # the doc's doctor line; the test runs it as each role


def setup_commands() -> list[str]:
    """The commands of the code block under "## Setting up", comments dropped."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Setting up\n") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "docs/production.md's Setting up has a bash block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_document_holds_every_step() -> None:
    """What the run below relies on: if the document changes shape, this says how."""
    commands = setup_commands()
    assert commands[0] == PLACEHOLDER
    assert commands[1] == 'createdb "$PGDATABASE"'
    assert commands[2] == "psql -v ON_ERROR_STOP=1 -f sql/01_roles.sql"
    assert commands[3].endswith("childindex db upgrade") and "childindex_owner@" in commands[3]
    assert "02_grants.sql" in commands[4] and "02_grants.sql" in commands[5]
    assert commands[-1].endswith("childindex doctor") and DOCTOR_AS in commands[-1]
    assert len(commands) == 7


@pytest.fixture()
def database() -> Iterator[str]:
    """A name for the database the steps create; dropped afterwards, whatever happened."""
    from sqlalchemy import text

    if not (shutil.which("psql") and shutil.which("createdb")):
        pytest.skip("the PostgreSQL client (psql, createdb) is not installed")
    admin = pg_admin()
    name = f"childindex_steps_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        from childindex.index.db import engine_for

        for role in ("owner", "loader", "retention"):
            engine_for(_url(name, role)).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _url(database: str, role: str) -> str:
    admin = make_url(PG_ADMIN_URL)
    return admin.set(username=f"childindex_{role}", password=None, database=database).render_as_string()


def _environment(database: str, tmp_path: Path) -> dict[str, str]:
    """This machine's server in libpq's variables (the document's PGHOST and PGDATABASE, and
    a superuser for steps 1), childindex on PATH; no CHILDINDEX_* setting at all."""
    admin = make_url(PG_ADMIN_URL)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHILDINDEX_", "PG"))}
    env |= {
        "PGHOST": admin.host or "127.0.0.1",
        "PGPORT": str(admin.port or 5432),
        "PGUSER": admin.username or "postgres",
        "PGDATABASE": database,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "COLUMNS": "400",
        "NO_COLOR": "1",
        "HOME": str(tmp_path),
    }
    if admin.password:
        env["PGPASSWORD"] = admin.password
    return env


def _statuses(output: str) -> dict[str, tuple[str, str]]:
    """doctor's table: check -> (status, detail)."""
    rows = {}
    for line in output.splitlines():
        cells = re.match(r"\s*(.+?)\s{2,}(ok|warn|FAIL)\s{2,}(.*)$", line)
        if cells:
            rows[cells[1]] = (cells[2], cells[3])
    return rows


def _doctor_in_process(line: str, env: dict[str, str]) -> tuple[tuple[str, str], int]:
    """The document's ``CHILDINDEX_INDEX_URL=... childindex doctor``, run by CliRunner with the
    variable expanded as the shell would: ((stdout, stderr), exit code)."""
    from typer.testing import CliRunner

    from childindex.cli import app

    assignment, *command = shlex.split(line)
    assert command == ["childindex", "doctor"], line
    name, value = assignment.split("=", 1)
    settings = {k: v for k, v in env.items() if k.startswith("CHILDINDEX_") or k == "COLUMNS"}
    result = CliRunner().invoke(app, ["doctor"], env=settings | {name: Template(value).substitute(env)})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return (result.stdout, result.stderr), result.exit_code


def test_production_steps_as_written(database, tmp_path, monkeypatch) -> None:
    commands = setup_commands()
    # Run where an operator would: a checkout's sql/ at hand, nothing else.
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    (workdir / "sql").symlink_to(ROOT / "sql")
    env = _environment(database, tmp_path)
    # Steps 1 to 3 as one script, stopping at the first failure. No key, no registry and no
    # data folder are set: the owner's steps need none.
    script = "set -euo pipefail\n" + "\n".join(commands[1:-1]) + "\n"
    done = subprocess.run(["bash", "-c", script], cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    upgrade = re.search(r"upgraded an empty database -> (\d{4}):\n((?:  \d{4} .+\n)+)", done.stdout)
    assert upgrade, done.stdout
    ran = [line.split()[0] for line in upgrade.group(2).splitlines()]
    assert ran == [f"{n:04d}" for n in range(1, int(upgrade.group(1)) + 1)]
    assert "  0010 Organisations and areas: every involvement names its organisation" in done.stdout
    assert "02_grants.sql applied" in done.stdout
    assert sorted(p.name for p in workdir.iterdir()) == ["sql"], "the owner's steps write no folder"

    # Each worker's settings, as a deployment gives them (folders already made).
    from childindex.settings import load_settings

    worker = env | {
        "CHILDINDEX_DATA_DIR": str(tmp_path / "data"),
        "CHILDINDEX_PSEUDONYMISATION_KEY": TEST_KEY,
        "CHILDINDEX_REFERENCE_KEY": TEST_REFERENCE_KEY,
        "CHILDINDEX_ORGANISATIONS_FILE": str(TEST_REGISTRY),
    }
    load_settings(data_dir=tmp_path / "data", organisations_file=TEST_REGISTRY).ensure_dirs()
    # Step 4: the document's doctor line, as written (the loader), in its own process; the
    # same line as the owner and the retention role in this one, meanwhile (it costs less).
    loader = subprocess.Popen(["bash", "-c", "set -euo pipefail\n" + commands[-1]], cwd=workdir, env=worker,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    outputs, codes = {}, {}
    for role in ("owner", "retention"):
        outputs[role], codes[role] = _doctor_in_process(commands[-1].replace(DOCTOR_AS, f"childindex_{role}@"), worker)
    outputs["loader"] = loader.communicate(timeout=120)
    codes["loader"] = loader.returncode
    warned = {}
    for role, (out, errors) in outputs.items():
        assert codes[role] == 0, f"{role}: {out}{errors}"
        assert "Traceback" not in out + errors and "ready" in out, f"{role}: {out}{errors}"
        statuses = _statuses(out)
        assert {"index database", "index schema", "key epoch", "organisations registry"} <= set(statuses), out
        warned[role] = {name: detail for name, (status, detail) in statuses.items() if status != "ok"}
        assert TEST_KEY not in out + errors
    assert warned["owner"] == {}
    assert set(warned["loader"]) == {"index schema"}
    assert set(warned["retention"]) == {"index schema", "key epoch"}
    assert warned["loader"]["index schema"] == (
        "childindex_loader may not read alembic_version, as intended for the loader, reader, retention roles: "
        "run 'childindex doctor' as childindex_owner to check the schema's revision; every table the code "
        "expects is there"
    )
    assert warned["retention"]["key epoch"] == (
        "childindex_retention may not read key_epoch, as intended for the reader, retention roles: run "
        "'childindex doctor' as childindex_owner to check the key epoch (these roles need no key)"
    )

    # The same upgrade again has nothing to run, and says so.
    from typer.testing import CliRunner

    from childindex.cli import app

    again = CliRunner().invoke(app, ["db", "upgrade"], env={"CHILDINDEX_INDEX_URL": _url(database, "owner")})
    assert again.exit_code == 0, again.output
    assert again.output == f"already at {upgrade.group(1)} (head): nothing to run\n"

    # A schema behind the code is still found by a role that may not read its revision.
    from sqlalchemy import create_engine

    from childindex.cli.doctor import diagnose

    owner = create_engine(_url(database, "owner"))
    with owner.begin() as conn:
        conn.exec_driver_sql("DROP TABLE notice_ledger")
    owner.dispose()
    for name, value in worker.items():
        if name.startswith("CHILDINDEX_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("CHILDINDEX_INDEX_URL", _url(database, "loader"))
    schema = next(c for c in diagnose() if c.name == "index schema")
    assert not schema.ok
    assert schema.detail == (
        "tables missing: notice_ledger: the schema is behind the code; the owner runs 'childindex db upgrade'"
    )


def test_a_task_says_what_failed_connecting_to_the_index(data_dir, monkeypatch) -> None:
    """Issue 19 (item 7): a task's error said only "unavailable or busy"; it now says what the
    command line says, and is still retried. The password in the URL is never shown."""
    from datetime import date

    from childindex.errors import IndexUnavailable
    from childindex.orchestration import tasks

    base = make_url(PG_ADMIN_URL).set(password="canary-password-4417")
    cases = {
        "the connection to 127.0.0.1:1 was refused": base.set(host="127.0.0.1", port=1),
        "the login as 'childindex_nobody' failed": base.set(username="childindex_nobody"),
        "database 'childindex_no_such_database' does not exist on": base.set(database="childindex_no_such_database"),
    }
    for words, url in cases.items():
        monkeypatch.setenv("CHILDINDEX_INDEX_URL", url.render_as_string(hide_password=False))
        with pytest.raises(IndexUnavailable) as info:
            tasks.notify(date(2026, 11, 24))
        message = str(info.value)
        assert message.startswith(f"the index database: {words}"), message
        assert message.endswith("; check CHILDINDEX_INDEX_URL; it is retried (OperationalError)"), message
        assert info.value.stage == "notices" and info.value.night == date(2026, 11, 24)
        assert "canary-password-4417" not in message + str(info.value.__cause__)


def test_db_upgrade_names_the_migrations_it_ran(tmp_path) -> None:
    """From an older schema: the revisions it ran, oldest first, one a line, with their titles."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from typer.testing import CliRunner

    from childindex.cli import app
    from childindex.index.db import alembic_config, engine_for

    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    command.upgrade(alembic_config(url), "0009")
    engine_for(url).dispose()
    result = CliRunner().invoke(app, ["db", "upgrade"], env={"CHILDINDEX_INDEX_URL": url, "COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    head = int(ScriptDirectory.from_config(alembic_config(url)).get_current_head() or 0)
    lines = result.output.splitlines()
    assert lines[0] == f"upgraded 0009 -> {head:04d}:"
    assert [line.split(" ", 3)[2] for line in lines[1:]] == [f"{n:04d}" for n in range(10, head + 1)]
    assert lines[1] == "  0010 Organisations and areas: every involvement names its organisation, sector and area"
