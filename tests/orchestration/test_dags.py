"""DAG integrity: the DAGs load, wire the expected tasks, schedules and Assets, and parse light."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from childindex.contracts import AGENCIES

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {
        *(f"intake_{a}" for a in AGENCIES),
        "train_linkage_model",
        "link_and_publish",
        "night_summary",
        "retention",
    }


@pytest.mark.parametrize("agency", AGENCIES)
def test_intake_dag(dagbag, agency: str) -> None:
    from childindex.orchestration import STAGED

    dag = dagbag.dags[f"intake_{agency}"]
    assert sorted(dag.task_ids) == ["discover", "process", "publish_staged"]
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"
    assert dag.max_active_runs == 1 and dag.catchup is False
    publish = dag.get_task("publish_staged")
    assert [o.uri for o in publish.outlets] == [STAGED[agency].uri]
    assert dag.get_task("process").upstream_task_ids == {"discover"}
    assert dag.doc_md


def test_linkage_is_scheduled_on_any_agency_asset(dagbag) -> None:
    from childindex.orchestration import INDEX, STAGED

    dag = dagbag.dags["link_and_publish"]
    cond = dag.timetable.asset_condition
    assert type(cond).__name__ == "AssetAny"
    assert {a.uri for a in cond.objects} == {STAGED[a].uri for a in AGENCIES}
    assert [o.uri for o in dag.get_task("link").outlets] == [INDEX.uri]
    assert dag.max_active_runs == 1


def test_summary_and_retention(dagbag) -> None:
    from childindex.orchestration import INDEX

    summary = dagbag.dags["night_summary"]
    assert summary.timetable.asset_condition.uri == INDEX.uri
    assert summary.task_ids == ["report", "summarise"] or summary.task_ids == ["summarise", "report"]
    assert summary.get_task("report").upstream_task_ids == {"summarise"}
    retention = dagbag.dags["retention"]
    assert retention.task_ids == ["apply_retention"]
    assert retention.params["dry_run"] is False
    assert type(retention.timetable).__name__ == "CronTriggerTimetable"


def test_tasks_retry_with_backoff(dagbag) -> None:
    for dag in dagbag.dags.values():
        for t in dag.tasks:
            assert t.retry_exponential_backoff and t.retries >= 1, (dag.dag_id, t.task_id)
            assert t.retry_policy is not None, (dag.dag_id, t.task_id)


@pytest.mark.parametrize(
    ("error", "action"),
    [
        ("FileRejected('encoding', 'not UTF-8')", "fail"),
        ("KeyMismatch('the index has another key')", "fail"),
        ("SettingsError('CHILDINDEX_INDEX_URL: invalid')", "fail"),
        ("ContractError('unknown agency')", "fail"),
        ("IndexUnavailable('locked')", "retry"),
        ("RuntimeError('unforeseen')", "default"),
    ],
)
def test_the_retry_policy_decides_by_error_type(dagbag, error: str, action: str) -> None:
    from childindex import errors

    exc = eval(error, vars(errors))  # noqa: S307 - the test's own literals
    for dag in dagbag.dags.values():
        for t in dag.tasks:
            decision = t.retry_policy.evaluate(exc, try_number=1, max_tries=3)
            assert decision.action.value == action, (dag.dag_id, t.task_id, error)


def test_database_errors_that_may_pass_become_transient() -> None:
    import sqlite3

    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    from childindex.errors import IndexUnavailable, stage_errors

    night = date(2026, 11, 24)
    locked = OperationalError("UPDATE child", {}, sqlite3.OperationalError("database is locked"))
    with pytest.raises(IndexUnavailable) as info, stage_errors("linkage", night):
        raise locked
    assert info.value.stage == "linkage" and info.value.night == night and info.value.__cause__ is locked
    # A missing table will not appear by retrying: it stays what it was.
    engine = create_engine("sqlite://")
    with pytest.raises(OperationalError), stage_errors("linkage", night), engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
    # PostgreSQL refusing connections (nothing listens on port 9): transient.
    pg = create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none", connect_args={"connect_timeout": 2})
    with pytest.raises(IndexUnavailable), stage_errors("intake", night), pg.connect():
        pass


HEAVY = ["great_expectations", "splink", "pandas", "duckdb", "pyarrow", "numpy", "scipy", "matplotlib", "fastapi"]


@pytest.fixture(scope="module")
def parsed() -> dict:
    """Every DAG file run once in a fresh Python, as a dag-processor parses it, with every
    database driver and Airflow's Connection and Variable lookups watched (DuckDB: it must
    not even be imported); then which heavy libraries parsing imported."""
    code = f"""
import json, runpy, sqlite3, sys
import airflow.sdk, psycopg
before = set(sys.modules)
from sqlalchemy import event
from sqlalchemy.engine import Engine

seen = []
def watch(name):
    def refuse(*args, **kwargs):
        seen.append(name)
        raise RuntimeError(name + " at parse time")
    return refuse

event.listen(Engine, "before_cursor_execute", lambda *a, **k: seen.append("sqlalchemy query"))
sqlite3.connect = watch("sqlite3.connect")
psycopg.connect = watch("psycopg.connect")
airflow.sdk.Variable.get = staticmethod(watch("Variable.get"))
airflow.sdk.Connection.get = classmethod(lambda cls, *a, **k: watch("Connection.get")())
from airflow.models.variable import Variable
Variable.get = staticmethod(watch("models.Variable.get"))
from airflow.sdk.bases.hook import BaseHook
BaseHook.get_connection = classmethod(lambda cls, *a, **k: watch("BaseHook.get_connection")())
files = 0
for f in {sorted(p.name for p in DAGS.glob("*.py"))!r}:
    runpy.run_path({str(DAGS)!r} + "/" + f)
    files += 1
heavy = [m for m in {HEAVY!r} if m in sys.modules and m not in before]
print(json.dumps({{"seen": seen, "files": files, "heavy": heavy}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_parsing_queries_no_database_and_looks_up_no_connection_or_variable(parsed: dict) -> None:
    """As Airflow's own test_example_dags: a DAG file is parsed often, by every scheduler and
    dag-processor loop; it must not query a database or look up a Connection or Variable."""
    assert parsed["seen"] == [] and parsed["files"] == len(list(DAGS.glob("*.py"))) == 5


def test_dag_files_import_no_heavy_libraries_at_parse_time(parsed: dict) -> None:
    assert parsed["heavy"] == []
