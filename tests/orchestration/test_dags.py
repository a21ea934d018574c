"""DAG integrity: the DAGs load, wire the expected tasks, schedules and Assets, and parse light,
whatever the size of the organisations registry."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_IDS = {"intake", "train_linkage_model", "link_and_publish", "night_summary", "retention"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == DAG_IDS


def test_one_intake_dag_fans_out_over_every_organisations_files(dagbag) -> None:
    from childindex.orchestration import STAGED, intake_parallelism

    dag = dagbag.dags["intake"]
    assert sorted(dag.task_ids) == ["discover", "process", "publish_staged"]
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"
    assert dag.max_active_runs == 1 and dag.catchup is False
    publish = dag.get_task("publish_staged")
    assert [o.uri for o in publish.outlets] == [STAGED.uri]
    # The staging Asset is updated once per run, after every file, even when some failed.
    assert publish.upstream_task_ids == {"process"} and publish.trigger_rule == "all_done"
    process = dag.get_task("process")
    assert process.upstream_task_ids == {"discover"}
    assert process.max_active_tis_per_dagrun == intake_parallelism()
    assert dag.doc_md


def test_linkage_is_scheduled_on_the_staging_asset(dagbag) -> None:
    from childindex.orchestration import INDEX, STAGED

    dag = dagbag.dags["link_and_publish"]
    assert dag.timetable.asset_condition.uri == STAGED.uri
    # The index Asset (which the night summary waits for) once the night's notices are out.
    assert dag.get_task("link").outlets == []
    assert [o.uri for o in dag.get_task("notify").outlets] == [INDEX.uri]
    assert dag.get_task("notify").upstream_task_ids == {"link"}
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
        ("ContractError('unknown contract')", "fail"),
        ("RegistryError('no organisation with code XYZ')", "fail"),
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


# ---------------------------------------------------------------------------------------
# The registry's size: the DAGs' shape does not depend on it, nor does parsing cost


def write_registry(path: Path, education: int = 250, social_care: int = 200, health: int = 50) -> Path:
    """A synthetic registry of England's shape: an area per education authority (DfE numbers
    100...), a children's social care service in most of them (named by the area's GSS code),
    and NHS organisations (five-character ODS codes) serving a handful of areas each."""
    areas = [f"E06{i:06d}" for i in range(1, education + 1)]
    lines = ["version: 1", "areas:"]
    lines += [f"  - {{code: {a}, name: Area {i}, la_number: {100 + i}}}" for i, a in enumerate(areas)]
    lines.append("organisations:")
    for i, area in enumerate(areas):
        lines.append(f'  - {{code: "{100 + i}", name: Education {i}, sector: education, contract: education_mis, '
                     f"areas: [{area}]}}")  # fmt: skip
    for i, area in enumerate(areas[:social_care]):
        contract = ("social_care_cms", "social_care_ehm")[i % 2]
        lines.append(f"  - {{code: {area}, name: Social care {i}, sector: social_care, contract: {contract}, "
                     f"areas: [{area}]}}")  # fmt: skip
    per = max(1, len(areas) // health)
    for i in range(health):
        served = ", ".join(areas[i * per : (i + 1) * per] or areas[-1:])
        contract = ("health_chis", "health_epr")[i % 2]
        lines.append(f"  - {{code: R{i:04d}, name: Health {i}, sector: health, contract: {contract}, "
                     f"areas: [{served}]}}")  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_big_registry_is_valid_and_holds_500_organisations(tmp_path: Path) -> None:
    from childindex.organisations import load_registry

    registry = load_registry(write_registry(tmp_path / "organisations.yaml"))
    assert len(registry.organisations) == 500 and len(registry.areas) == 250
    assert {s: len(registry.in_sector(s)) for s in ("education", "health", "social_care")} == {
        "education": 250,
        "health": 50,
        "social_care": 200,
    }


def test_the_dag_folder_parses_in_under_two_seconds_with_500_organisations(tmp_path: Path) -> None:
    """As a dag-processor parses: a fresh Python with Airflow loaded (its start-up), then every
    DAG file, timed. The registry is never read at parse time, so its size costs nothing, and
    a registry that cannot be read does not take the DAGs down (intake fails at run time)."""
    registry = write_registry(tmp_path / "organisations.yaml")
    code = f"""
import json, os, time
import airflow.sdk
from airflow.dag_processing.dagbag import DagBag
start = time.perf_counter()
bag = DagBag(dag_folder={str(DAGS)!r})
seconds = time.perf_counter() - start
timed = {{"seconds": seconds, "dags": sorted(bag.dag_ids), "errors": sorted(bag.import_errors)}}
os.environ["CHILDINDEX_ORGANISATIONS_FILE"] = {str(tmp_path / "missing.yaml")!r}
again = DagBag(dag_folder={str(DAGS)!r})
print(json.dumps({{**timed, "without_registry": sorted(again.dag_ids), "errors_without": sorted(again.import_errors)}}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHILDINDEX_")}
    env["CHILDINDEX_CONFIG_FILE"] = ""  # never a childindex.toml the demo left in the working directory
    env["CHILDINDEX_ORGANISATIONS_FILE"] = str(registry)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    parsed = json.loads(out.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == [] and set(parsed["dags"]) == DAG_IDS
    assert parsed["errors_without"] == [] and set(parsed["without_registry"]) == DAG_IDS
    assert parsed["seconds"] < 2.0, f"parsing the DAG folder took {parsed['seconds']:.2f} s"


SEVERAL = """version: 1
areas:
  - {code: E06000047, name: County Durham, la_number: 840, postcode_districts: [DH1]}
  - {code: E06000005, name: Darlington, la_number: 841, postcode_districts: [DL1]}
organisations:
  - {code: RH1, name: Health one, sector: health, contract: health_chis, areas: [E06000047]}
  - {code: RX1, name: Health two, sector: health, contract: health_epr, areas: [E06000047, E06000005]}
  - {code: "840", name: Education one, sector: education, contract: education_mis, areas: [E06000047]}
  - {code: "841", name: Education two, sector: education, contract: education_mis, areas: [E06000005],
     drop_folder: sftp/darlington-education}
  - {code: E06000005, name: Social care two, sector: social_care, contract: social_care_ehm, areas: [E06000005]}
"""


def test_discover_lists_every_organisations_complete_files_and_no_unregistered_folder(
    dagbag, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy import text

    from childindex.index.db import engine_for, migrate
    from childindex.settings import load_settings
    from tests.helpers import child, drop, render

    registry = tmp_path / "several.yaml"
    registry.write_text(SEVERAL, encoding="utf-8")
    monkeypatch.setenv("CHILDINDEX_ORGANISATIONS_FILE", str(registry))
    settings = load_settings()
    night, later = date(2026, 11, 24), date(2026, 11, 25)
    expected = [
        ("RH1", drop(settings, "RH1", render("health_chis", [child(1)]), night=night)),
        ("RX1", drop(settings, "RX1", render("health_epr", [child(2)]), night=night)),
        ("841", drop(settings, "841", render("education_mis", [child(3, "education")]), night=night)),
        ("E06000005", drop(settings, "E06000005", render("social_care_ehm", [child(4, "social_care")]), night=night)),
    ]
    assert expected[2][1].parent == settings.drop_root / "sftp" / "darlington-education"
    # Uploads still under way (no marker yet; still *.part): not listed.
    drop(settings, "RH1", render("health_chis", [child(5)]), night=later, complete=False)
    drop(settings, "RX1", render("health_epr", [child(6)]), night=later, complete=False)
    # A folder no registered organisation owns, holding what looks like an extract.
    stray = settings.drop_root / "999"
    stray.mkdir(parents=True)
    (stray / "EDU_PUPILS_20261124.csv").write_bytes(render("education_mis", [child(7, "education")]))
    migrate(settings.index_url)  # the waiting files are recorded as the night's metrics
    discover = dagbag.dags["intake"].get_task("discover")
    with caplog.at_level(logging.INFO, logger="childindex.orchestration.tasks"):
        jobs = discover.python_callable(logical_date=datetime(2026, 11, 25, 2, tzinfo=UTC), dag_run=None)
    assert jobs == [{"organisation": code, "path": str(path)} for code, path in expected]
    assert all(not Path(job["path"]).is_relative_to(stray) for job in jobs)
    logged = [r.getMessage() for r in caplog.records]
    assert any("'999'" in m and "no registered organisation" in m and "1 file(s)" in m for m in logged), logged
    # The uploads under way are counted in the task's log, by organisation, never named.
    assert "RH1: 1 file waiting for its completion marker (oldest 0 min)" in logged
    assert "RX1: 1 file waiting to be renamed from .part (the upload's last step) (oldest 0 min)" in logged
    assert not any("2026-11-25" in m or "20261125" in m for m in logged), "no file name in the log"
    with engine_for(settings.index_url).connect() as conn:
        recorded = dict(conn.execute(text("SELECT name, value FROM night_metric WHERE night = :n"), {"n": night}).all())
    codes = ("RH1", "RX1", "840", "841", "E06000005")
    waiting = {f"intake_waiting:{code}:files": float(code in ("RH1", "RX1")) for code in codes}
    assert {k: v for k, v in recorded.items() if k.endswith(":files")} == waiting
    json.dumps(jobs)  # XCom carries codes and paths only
