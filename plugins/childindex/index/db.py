"""Engines and migrations for the index database (SQLite embedded, PostgreSQL in production)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)


@cache
def engine_for(url: str) -> Engine:
    """One engine per URL per process.

    ``hide_parameters``: SQLAlchemy otherwise quotes bound values (names, dates of birth)
    in exception messages, and exceptions end up in task logs.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def connection_failure(exc: BaseException, url: str) -> str | None:
    """What went wrong connecting to the index, in words an operator acts on: the connection
    refused, the login failed, the database missing, the host unknown, no answer; None when
    ``exc`` is not a failure to connect. Built from the driver's connection message, which
    names hosts, users and databases (configuration), never a row's value."""
    from sqlalchemy.engine import make_url

    text = str(getattr(exc, "orig", None) or exc).lower()
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if "unable to open database file" in text:
            return f"the SQLite file {u.database} cannot be opened (its folder is missing or not writable)"
        return None
    where = f"{u.host or 'localhost'}:{u.port or 5432}"
    if "connection refused" in text:
        return f"the connection to {where} was refused: is PostgreSQL running there, on that port?"
    if any(w in text for w in ("password authentication failed", "authentication failed", "no pg_hba.conf entry")) or (
        "role" in text and "does not exist" in text
    ):
        return f"the login as {u.username!r} failed at {where}: check the user and its password, and pg_hba.conf"
    if "database" in text and "does not exist" in text:
        return f"database {u.database!r} does not exist on {where}: create it (docs/production.md)"
    if any(w in text for w in ("failed to resolve host", "name or service not known", "could not translate host")):
        return f"host {u.host!r} was not found"
    if "timeout" in text or "timed out" in text:
        return f"no answer from {where} in time"
    return None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # secure_delete overwrites deleted content, so retention leaves no readable remnants.
    for pragma in (
        "journal_mode=WAL",
        "foreign_keys=ON",
        "secure_delete=ON",
        "synchronous=NORMAL",
        "busy_timeout=60000",
    ):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files(__package__) / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@dataclass(frozen=True)
class Upgrade:
    """What ``migrate`` did: the revision before (None: an empty database), the newest, and
    each migration it ran, oldest first, as (revision, title)."""

    before: str | None
    head: str
    ran: tuple[tuple[str, str], ...]

    def lines(self) -> list[str]:
        """For an operator: which revisions ran, or that there was nothing to do."""
        if not self.ran:
            return [f"already at {self.head} (head): nothing to run"]
        return [f"upgraded {self.before or 'an empty database'} -> {self.head}:"] + [
            f"  {revision} {title}" for revision, title in self.ran
        ]


def migrate(url: str) -> Upgrade:
    """Bring the index schema to the newest migration (idempotent), in one transaction.
    Needs the schema owner's rights and nothing else: no key, no registry, no folder."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = alembic_config(url)
    script = ScriptDirectory.from_config(cfg)
    with engine_for(url).begin() as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        head = MigrationContext.configure(conn).get_current_revision()
    assert head is not None  # upgrade to head leaves a revision or raises
    ran = tuple((s.revision, s.doc) for s in reversed(list(script.iterate_revisions(head, before))))
    return Upgrade(before, head, ran)


def apply_sql_file(url: str, path: Path) -> None:
    """Run an SQL script (``sql/01_roles.sql``, ``sql/02_grants.sql``) on a PostgreSQL index
    as psql would: the whole script in one call, autocommit, no client-side parameters."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"SQL scripts are for PostgreSQL; the index is {parsed.get_backend_name()}")
    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(Path(path).read_bytes())


def reclaim(engine: Engine, tables: Iterable[str] = (), full: bool = True) -> None:
    """Make deleted rows unreadable on disk now, not whenever the database gets round to it.

    SQLite (secure_delete) has overwritten them already: a WAL checkpoint and VACUUM return
    the freed pages. PostgreSQL has no secure delete: a deleted tuple stays in its page
    until VACUUM prunes it, and even then its bytes can stay in the page's free space
    (measured: benchmarks/pg_deletion.py). ``VACUUM FULL`` rewrites each table this run
    deleted from, so none of them is left in the table's files (``tables``: names from the
    index's own schema, never input). The write-ahead log and backups keep the bytes for
    their own retention (docs/retention.md).
    """
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("VACUUM")
    elif engine.dialect.name == "postgresql" and tables:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in sorted(tables):
                # VACUUM by a role that may not skips the table with only a notice: say so.
                allowed = conn.execute(
                    text(
                        # CASE: PostgreSQL before 17 does not know the MAINTAIN privilege.
                        "SELECT pg_has_role(current_user, tableowner, 'USAGE') OR CASE WHEN "
                        "current_setting('server_version_num')::int >= 170000 "
                        "THEN has_table_privilege(:t, 'MAINTAIN') ELSE false END "
                        "FROM pg_tables WHERE schemaname = current_schema() AND tablename = :t"
                    ),
                    {"t": table},
                ).scalar()
                if not allowed:
                    log.warning(
                        "retention may not vacuum %s: its deleted rows stay in the table's files until its owner "
                        "runs VACUUM FULL %s (docs/retention.md)",
                        table,
                        table,
                    )
                    continue
                conn.exec_driver_sql(f"VACUUM {'FULL ' if full else ''}{table}")
