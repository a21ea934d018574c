"""``childindex doctor``: is this installation ready to run a night? Each check says what is
wrong and what to do; none prints a secret or a child's data. And ``childindex settings``:
what the settings resolve to, secrets masked."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from childindex.cli.app import cli_settings, console, err, new_app
from childindex.cli.output import JsonFlag, fields_table, plain, print_json, show, table
from childindex.settings import Settings

app = new_app()


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str  # what was found, or what to do
    warning: bool = False  # works, but should be fixed

    @property
    def status(self) -> str:
        return "FAIL" if not self.ok else "warn" if self.warning else "ok"


def diagnose() -> list[Check]:
    """Every check, in the order a night needs them; later checks are skipped (and say so)
    when what they depend on failed."""
    from childindex.errors import SettingsError
    from childindex.settings import configuration_sources, load_settings, unknown_variables

    try:
        settings = load_settings()
    except SettingsError as exc:
        return [Check("settings", False, str(exc))]
    checks = [Check("settings", True, configuration_sources())]
    unknown = unknown_variables()
    if unknown:  # misspelt variables are otherwise ignored in silence
        checks.append(Check("unknown variables", True, "; ".join(unknown), warning=True))
    key = _run("pseudonymisation key", lambda: _key(settings))
    checks.append(key)
    checks.append(_run("reference key", lambda: _key(settings, "reference_key_bytes")))
    checks.append(_run("index database", lambda: _database(settings)))
    if checks[-1].ok:
        checks.append(_run("index schema", lambda: _schema(settings), settings.index_url))
        if key.ok and checks[-1].ok:
            checks.append(_run("key epoch", lambda: _epoch(settings), settings.index_url))
    registry = _run("organisations registry", lambda: _registry(settings))
    checks.append(registry)
    checks += [_run(f"folder: {name}", partial(_folder, path)) for name, path in _folders(settings)]
    if registry.ok:
        checks.append(_run("organisations' folders", lambda: _organisation_folders(settings)))
    checks.append(_run("airflow plugin", _plugin))
    return checks


def _run(name: str, probe: Callable[[], str], index_url: str | None = None) -> Check:
    """One check, whatever happens in it: a table the role may not read is a warning, any
    other failure one line (doctor never ends in a traceback)."""
    try:
        return Check(name, True, probe())
    except Warning_ as exc:
        return Check(name, True, str(exc), warning=True)
    except Problem as exc:
        return Check(name, False, str(exc))
    except Exception as exc:  # noqa: BLE001 - every failure is a finding, reported in one line
        denied = denied_table(exc)
        if denied is not None and index_url is not None:
            return Check(name, True, _not_allowed(index_url, denied), warning=True)
        from sqlalchemy.exc import DBAPIError

        if index_url is not None and isinstance(exc, DBAPIError):
            from childindex.index.db import connection_failure

            why = connection_failure(exc, index_url)
            if why is not None:
                return Check(name, False, f"{why}; check CHILDINDEX_INDEX_URL")
        # The type and the first line only: a driver's message can run to a page.
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return Check(name, False, f"{type(exc).__name__}: {first[0] if first else 'no message'}")


# Tables a role other than the owner may not read, by design (sql/02_grants.sql), and what
# doctor cannot check without them. tests/system/test_production_steps.py holds these to the
# grants: running doctor as each role finds exactly these warnings.
EXPECTED_DENIALS = {
    "alembic_version": ({"loader", "retention", "reader"}, "the schema's revision"),
    "key_epoch": ({"retention", "reader"}, "the key epoch (these roles need no key)"),
}


def denied_table(exc: BaseException) -> str | None:
    """The table a PostgreSQL permission error names (insufficient_privilege), else None."""
    import re

    orig = getattr(exc, "orig", None) or exc
    if getattr(orig, "sqlstate", None) != "42501":
        return None
    found = re.search(r"permission denied for (?:table|relation|view|sequence) (\S+)", str(orig))
    return found.group(1).strip('"') if found else "a table"


def _not_allowed(index_url: str, table: str) -> str:
    from sqlalchemy.engine import make_url

    user = make_url(index_url).username or "this role"
    roles, what = EXPECTED_DENIALS.get(table, (set(), ""))
    if user.removeprefix("childindex_") in roles:
        kinds = ", ".join(sorted(roles))
        return (f"{user} may not read {table}, as intended for the {kinds} roles: run 'childindex doctor' "
                f"as childindex_owner to check {what}")  # fmt: skip
    return (f"{user} may not read {table}: if its stage needs it, run sql/02_grants.sql as the owner "
            "(after every 'childindex db upgrade')")  # fmt: skip


class Problem(Exception):
    """A check failed; the message says what to do."""


class Warning_(Problem):  # noqa: N801 - not the builtin Warning
    """It works, but should be fixed; the message says how."""


def _key(settings: Settings, which: str = "key") -> str:
    """The key in the ``which`` property of the settings (``key``: pseudonymisation,
    ``reference_key_bytes``: references), shown only by its id."""
    from childindex.errors import SettingsError
    from childindex.staging.pseudonymise import key_id

    try:
        key: bytes = getattr(settings, which)
    except SettingsError as exc:
        raise Problem(str(exc)) from None
    different = "; differs from the pseudonymisation key" if which != "key" else ""
    return f"present, {len(key)} bytes, key id {key_id(key)}{different}"


def _database(settings: Settings) -> str:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from childindex.index.db import connection_failure, engine_for

    url = make_url(settings.index_url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).exists():  # connecting would create an empty one there
            raise Problem(
                f"{shown}: no index file there: check CHILDINDEX_INDEX_URL (or DATA_DIR), or create the index "
                "with 'childindex db upgrade'"
            )
    try:
        with engine_for(settings.index_url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the finding
        why = connection_failure(exc, settings.index_url) or f"not reachable ({type(exc).__name__})"
        raise Problem(f"{shown}: {why}; check CHILDINDEX_INDEX_URL") from None
    return f"{shown} reachable"


def _schema(settings: Settings) -> str:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from childindex.index.db import alembic_config, engine_for

    head = ScriptDirectory.from_config(alembic_config(settings.index_url)).get_current_head()
    try:
        with engine_for(settings.index_url).connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except Exception as exc:
        if denied_table(exc) != "alembic_version":
            raise
        # Every role sees the catalogue: at least every table the code expects must be there.
        missing = _missing_tables(settings.index_url)
        if missing:
            raise Problem(f"tables missing: {', '.join(missing)}: the schema is behind the code; the owner runs "
                          "'childindex db upgrade'") from None  # fmt: skip
        raise Warning_(_not_allowed(settings.index_url, "alembic_version") + "; every table the code expects is "
                       "there") from None  # fmt: skip
    if current != head:
        raise Problem(f"schema at {current or 'nothing'}, code expects {head}: run 'childindex db upgrade'")
    return f"at {head}, the newest migration"


def _missing_tables(url: str) -> list[str]:
    from sqlalchemy import inspect

    from childindex.index.db import engine_for
    from childindex.index.models import Base

    with engine_for(url).connect() as conn:
        present = set(inspect(conn).get_table_names())
    return sorted(set(Base.metadata.tables) - present)


def _epoch(settings: Settings) -> str:
    from childindex.errors import KeyMismatch
    from childindex.keys.epochs import verify_key
    from childindex.staging.pseudonymise import key_id

    try:
        epoch = verify_key(settings.index_url, settings.key)
    except KeyMismatch as exc:
        raise Problem(str(exc)) from None
    if epoch is None:
        return f"no key recorded yet: the first intake records {key_id(settings.key)}"
    return f"the configured key is the index's (epoch {epoch})"


def _registry(settings: Settings) -> str:
    from childindex.errors import RegistryError

    try:
        registry = settings.registry
    except RegistryError as exc:
        raise Problem(str(exc)) from None
    return (
        f"{settings.organisations_file}: {len(registry.organisations)} organisations in "
        f"{len(registry.areas)} areas (version {registry.version})"
    )


def _folders(settings: Settings) -> list[tuple[str, Path]]:
    return [
        ("data", settings.data_dir),
        ("drop root", settings.drop_root),
        ("outbox root", settings.outbox_root),
        ("quarantine", settings.quarantine_dir),
        ("archive", settings.archive_dir),
        ("staging", settings.staging_dir),
        ("reports", settings.reports_dir),
    ]


def _organisation_folders(settings: Settings) -> str:
    """Each organisation's drop folder and outbox, summarised (hundreds of them)."""
    from childindex.intake.discovery import unregistered_drops

    codes = [o.code for o in settings.registry.organisations]
    missing = [c for c in codes if not settings.drop_folder(c).is_dir() or not settings.outbox(c).is_dir()]
    present = [f for c in codes for f in (settings.drop_folder(c), settings.outbox(c)) if f.is_dir()]
    closed = [f for f in present if not os.access(f, os.R_OK | os.W_OK | os.X_OK)]
    if closed:
        raise Problem(f"{len(closed)} organisation folders are not readable and writable by this user: "
                      + ", ".join(str(f) for f in closed[:5]))  # fmt: skip
    warnings = []
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        warnings.append(f"{len(missing)} organisations have no drop folder or outbox yet ({shown}): "
                        "'childindex intake' creates them")  # fmt: skip
    # Drop folders hold the extracts as sent: never open to the machine's other users.
    open_ = [f for f in present if f.stat().st_mode & 0o007]
    if open_:
        warnings.append(f"{len(open_)} organisation folders are open to every user of this machine: "
                        f"chmod o-rwx {' '.join(str(f) for f in open_[:5])}")  # fmt: skip
    stray = unregistered_drops(settings)
    if stray:
        warnings.append(f"{len(stray)} folders under the drop root belong to no registered organisation "
                        f"({', '.join(d.folder for d in stray[:5])}): register it or remove them")  # fmt: skip
    if warnings:
        raise Warning_("; ".join(warnings))
    return f"{len(codes)} drop folders and outboxes present; nothing unregistered under the drop root"


def _folder(path: Path) -> str:
    if not path.is_dir():
        raise Problem(f"{path} does not exist: create it (any childindex command that writes does)")
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise Problem(f"{path} is not readable and writable by this user")
    if path.stat().st_mode & 0o007:
        raise Warning_(f"{path} is open to every user of this machine: chmod o-rwx {path}")
    return str(path)


PLUGIN_ENTRY_POINT = "childindex.orchestration.plugin:ChildindexPlugin"


def _plugin(group: str = "airflow.plugins") -> str:
    from importlib.metadata import entry_points

    if PLUGIN_ENTRY_POINT not in {e.value for e in entry_points(group=group)}:
        raise Warning_(
            "childindex's Airflow plugin is not registered, so DAG runs do not link to their quality "
            "reports: install the package (uv sync, or pip install .) rather than copying its files"
        )
    return "registered: each DAG run links to its night's quality report in Airflow's UI"


@app.command()
def doctor(as_json: JsonFlag = False) -> None:
    """Check configuration, the index database and schema, the key and every folder; say what to fix.

    Exits 0 when a night can run (warnings included), 1 when something must be fixed first.
    Prints no secret: the key is shown only by its id.
    """
    checks = diagnose()
    failed = [c for c in checks if not c.ok]
    if as_json:
        print_json(
            {"ready": not failed, "checks": [{"check": c.name, "status": c.status, "detail": c.detail} for c in checks]}
        )
    else:
        t = table("check", "status", "detail")
        colour = {"ok": "green", "warn": "yellow", "FAIL": "red"}
        for c in checks:
            t.add_row(escape(c.name), f"[{colour[c.status]}]{c.status}[/]", escape(c.detail))
        show(t)
    if failed:
        err.print(f"[red]{len(failed)} check(s) failed[/red]: fix them before the next night")
        raise typer.Exit(1)
    if not as_json:
        console.print("ready")


@app.command("settings")
def show_settings(as_json: JsonFlag = False) -> None:
    """Show the resolved settings (secrets masked) and where they came from."""
    from childindex.settings import configuration_sources

    resolved = cli_settings(need_key=False)
    values = json.loads(resolved.model_dump_json())
    if as_json:
        print_json(values)
        return
    show(fields_table(_flatten(values), title="childindex settings (secrets masked)"))
    plain(f"from: {configuration_sources()}")


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested settings as ``group.name`` and the value's text, in the settings' order."""
    rows: list[tuple[str, str]] = []
    for name, value in values.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{name}.")
        else:
            rows.append((f"{prefix}{name}", "" if value is None else str(value)))
    return rows
