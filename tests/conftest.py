"""Shared fixtures: isolated settings per test, a throwaway PostgreSQL database."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Airflow reads its configuration at import: give the test session its own home first.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="childindex-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(_AIRFLOW_HOME / "plugins")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"

# No test reads the childindex.toml that `childindex demo` leaves in the working directory
# (set empty: no configuration file), module-scoped fixtures included.
os.environ["CHILDINDEX_CONFIG_FILE"] = ""

# pytest-xdist's workers inherit COLUMNS=80, which rich's consoles (created at import) would
# keep for good; tests that need a width pass COLUMNS to the command they invoke.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

TEST_KEY = "test-only-key-" + "0123456789abcdef" * 3  # synthetic data only
TEST_REFERENCE_KEY = "test-only-reference-key-" + "fedcba9876543210" * 3
# One area, one organisation per sector (tests/helpers.py ORG names them); tests of many
# organisations set CHILDINDEX_ORGANISATIONS_FILE themselves.
TEST_REGISTRY = Path(__file__).with_name("organisations.yaml")

PG_ADMIN_URL = os.environ.get("CHILDINDEX_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own CHILDINDEX_* settings, nor the childindex.toml that
    `childindex demo` leaves in the working directory (set empty: no configuration file)."""
    for name in list(os.environ):
        if name.startswith("CHILDINDEX_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CHILDINDEX_CONFIG_FILE", "")


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "data"
    monkeypatch.setenv("CHILDINDEX_DATA_DIR", str(d))
    monkeypatch.setenv("CHILDINDEX_PSEUDONYMISATION_KEY", TEST_KEY)
    monkeypatch.setenv("CHILDINDEX_REFERENCE_KEY", TEST_REFERENCE_KEY)
    monkeypatch.setenv("CHILDINDEX_ORGANISATIONS_FILE", str(TEST_REGISTRY))
    return d


@pytest.fixture()
def settings(data_dir: Path):
    from childindex.index.db import migrate
    from childindex.settings import load_settings

    s = load_settings()
    s.ensure_dirs()
    migrate(s.index_url)
    return s


def pg_admin():
    """An engine on PostgreSQL's admin database (autocommit), or skip the test where none is
    reachable."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means: skip
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {make_url(PG_ADMIN_URL).render_as_string()}: {type(exc).__name__}")
    return admin


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; skips where none is reachable."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    admin = pg_admin()
    name = f"childindex_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        from childindex.index.db import engine_for

        url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        engine_for(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
