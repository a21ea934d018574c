"""The production stack, for real: Airflow's metadata and the index on PostgreSQL, the
CeleryExecutor on Redis, and Airflow's own components as processes (api-server, scheduler,
dag-processor, two Celery workers warmed by childindex's Celery configuration). A night of
the demo's 30 organisations in 12 authority areas is triggered through Airflow's REST API;
every DAG run must succeed, both workers must take files, and the index in PostgreSQL must
hold the night. Skips, saying why, where
PostgreSQL or Redis is not reachable; every process it starts is stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from childindex.orchestration import night_of
from childindex.organisations import load_registry
from childindex.settings import REGISTRY_FILE
from tests.conftest import PG_ADMIN_URL, TEST_KEY, TEST_REFERENCE_KEY
from tests.system.test_report_browser import PLOTS

REDIS = ("127.0.0.1", 6379)
REDIS_DB = 9  # this test's own database number, flushed before and after
NIGHT_DAGS = ("intake",)  # one intake DAG, mapped over every organisation's files
ALL_DAGS = (*NIGHT_DAGS, "link_and_publish", "night_summary")
CHILDREN = 1000
WORKERS = ("worker1", "worker2")


def _redis_or_skip() -> None:
    try:
        with socket.create_connection(REDIS, timeout=2) as s:
            s.sendall(f"SELECT {REDIS_DB}\r\nFLUSHDB\r\n".encode())
            reply = s.recv(64)
    except OSError as exc:
        pytest.skip(f"Redis not reachable at {REDIS[0]}:{REDIS[1]}: {type(exc).__name__}")
    assert reply.startswith(b"+OK"), reply


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, base: str) -> None:
        self.base, self.token = base, None

    def __call__(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")


def _wait(what: str, probe, timeout: float, logs: Path):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(2)
    tails = {p.name: p.read_text(errors="replace")[-1500:] for p in logs.glob("*.log")}
    raise AssertionError(f"{what} did not happen in {timeout:.0f} s (last: {last}); logs: {tails}")


def test_a_night_on_postgresql_and_celery_through_the_rest_api(pg_url, tmp_path) -> None:
    _redis_or_skip()
    started = time.monotonic()
    home, logs = tmp_path / "airflow", tmp_path / "logs"
    logs.mkdir()
    meta = f"childindex_airflow_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{meta}"'))
    meta_url = make_url(PG_ADMIN_URL).set(database=meta)
    port = _free_port()
    bin_dir = Path(sys.executable).parent
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CHILDINDEX_"))},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).resolve().parents[2] / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url.render_as_string(hide_password=False),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": meta_url.set(
            drivername="postgresql+psycopg_async"
        ).render_as_string(hide_password=False),
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{REDIS_DB}",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + meta_url.render_as_string(hide_password=False),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # a test's own throwaway Airflow
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "CHILDINDEX_CONFIG_FILE": "",  # never a childindex.toml the demo left in the working directory
        "CHILDINDEX_DATA_DIR": str(tmp_path / "data"),
        "CHILDINDEX_PSEUDONYMISATION_KEY": TEST_KEY,
        "CHILDINDEX_REFERENCE_KEY": TEST_REFERENCE_KEY,
        "CHILDINDEX_INDEX_URL": pg_url,
        "CHILDINDEX_TASK_RETRIES": "0",
        "CHILDINDEX_ORGANISATIONS_FILE": str(REGISTRY_FILE),  # the demo's world: 30 organisations, 12 areas
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "childindex.orchestration.celery_config.CELERY_CONFIG",
    }
    codes = sorted(o.code for o in load_registry(REGISTRY_FILE).organisations)
    assert len(codes) >= 20
    procs: list[subprocess.Popen] = []
    try:
        for cmd in (
            [str(bin_dir / "airflow"), "db", "migrate"],
            [str(bin_dir / "childindex"), "db", "upgrade"],
            [str(bin_dir / "childindex"), "generate", "--children", str(CHILDREN)],
        ):
            with (logs / "setup.log").open("a") as out:
                assert (
                    subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False).returncode == 0
                ), cmd
        for name, args in (
            ("api-server", ["api-server", "--port", str(port)]),
            ("scheduler", ["scheduler"]),
            ("dag-processor", ["dag-processor"]),
            *(
                (
                    name,
                    ["celery", "worker", "--concurrency", "1", "--celery-hostname", f"{name}@%h", "--skip-serve-logs"],
                )
                for name in WORKERS
            ),
        ):
            out = (logs / f"{name}.log").open("w")
            procs.append(subprocess.Popen([str(bin_dir / "airflow"), *args], env=env, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True))  # fmt: skip
        api = Api(f"http://127.0.0.1:{port}")

        def healthy() -> bool:
            health = api("GET", "/api/v2/monitor/health")
            return all(health[c]["status"] == "healthy" for c in ("metadatabase", "scheduler", "dag_processor"))

        _wait("a healthy Airflow", healthy, 180, logs)
        api.token = api("GET", "/auth/token")["access_token"]
        _wait(
            "the DAGs parsed", lambda: api("GET", "/api/v2/dags?limit=100")["total_entries"] >= len(ALL_DAGS), 120, logs
        )
        for dag_id in ALL_DAGS:
            api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        triggered = {
            d: api("POST", f"/api/v2/dags/{d}/dagRuns", {"logical_date": "2026-11-25T02:00:00Z"})["dag_run_id"]
            for d in NIGHT_DAGS
        }

        def runs() -> dict[str, list[str]]:
            return {d: [r["state"] for r in api("GET", f"/api/v2/dags/{d}/dagRuns")["dag_runs"]] for d in ALL_DAGS}

        def night_done() -> dict | None:
            states = runs()
            assert not any("failed" in s for s in states.values()), states
            return states if all(s and set(s) == {"success"} for s in states.values()) else None

        states = _wait("every DAG run succeeding", night_done, 420, logs)
        for dag_id, run_id in triggered.items():
            assert api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"] == "success"
        # One linkage per wave of files, never one per file: each intake run (the triggered one,
        # and any the scheduler started on unpausing) updates the staging Asset once.
        assert 1 <= len(states["link_and_publish"]) <= len(states["intake"])
        # A mapped task per organisation's file, each labelled by the organisation's code (in
        # whichever intake run found the files first).
        processed = []
        for run in api("GET", "/api/v2/dags/intake/dagRuns")["dag_runs"]:
            run_path = f"/api/v2/dags/intake/dagRuns/{urllib.parse.quote(run['dag_run_id'], safe='')}"
            tis = api("GET", f"{run_path}/taskInstances?limit=100")["task_instances"]
            processed += [t for t in tis if t["task_id"] == "process" and t["map_index"] >= 0]
        assert sorted(t["rendered_map_index"] for t in processed) == codes
        # Both workers took files; each warmed up once, at start, before taking any.
        for name in WORKERS:
            log = (logs / f"{name}.log").read_text(errors="replace")
            assert "execute_workload" in log and "received" in log, f"{name} took no task"
            assert log.count("GX suites ready in this worker") == 1, name
        seconds = sorted(
            (datetime.fromisoformat(t["end_date"]) - datetime.fromisoformat(t["start_date"])).total_seconds()
            for t in processed
        )
        print(f"intake task seconds: median {seconds[len(seconds) // 2]:.2f}, max {seconds[-1]:.2f}")
        # The night's quality report, from the run's "Quality report" tab (childindex's plugin).
        # Asset-triggered, its night is the day before it ran: the night its report task wrote.
        for run in api("GET", "/api/v2/dags/night_summary/dagRuns")["dag_runs"]:
            night = night_of(datetime.fromisoformat(run["logical_date"] or run["run_after"]))
            report = urllib.request.Request(
                f"{api.base}/childindex/reports/run/night_summary/{urllib.parse.quote(run['dag_run_id'], safe='')}",
                headers={"Authorization": f"Bearer {api.token}"},
            )
            with urllib.request.urlopen(report, timeout=30) as response:  # follows the redirect to the night
                assert response.url.endswith(f"/childindex/reports/night-{night}.html")
                assert response.read().count(b'<figure class="plot"') == len(PLOTS)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{meta}" WITH (FORCE)'))
        admin.dispose()
        _redis_flush()
    # The night is in the index, in PostgreSQL.
    index = create_engine(pg_url)
    with index.connect() as conn:
        children = conn.execute(text("SELECT count(*) FROM child")).scalar_one()
        ledger = dict(conn.execute(text("SELECT status, count(*) FROM file_ledger GROUP BY status")).all())
        senders = {r[0] for r in conn.execute(text("SELECT DISTINCT organisation FROM file_ledger"))}
        # Children who moved: organisations in two authority areas were told of each other,
        # both ways (the old area's of the new one, and the new area's of the old one).
        moved = conn.execute(
            text(
                "SELECT count(*) FROM notice_told t JOIN involvement a ON a.source_key = t.recipient_key "
                "JOIN involvement b ON b.source_key = t.other_key JOIN notice_told back "
                "ON back.recipient_key = t.other_key AND back.other_key = t.recipient_key WHERE a.area <> b.area"
            )
        ).scalar_one()
        told = conn.execute(text("SELECT count(DISTINCT organisation) FROM notice_ledger")).scalar_one()
    index.dispose()
    assert moved > 10 and told >= len(codes) // 2
    assert ledger == {"linked": len(codes)} and senders == set(codes)
    assert CHILDREN * 0.97 <= children <= CHILDREN * 1.03
    assert all(p.returncode is not None for p in procs), "every process stopped"
    print(f"production stack night: {time.monotonic() - started:.0f} s")


def _redis_flush() -> None:
    with socket.create_connection(REDIS, timeout=2) as s:
        s.sendall(f"SELECT {REDIS_DB}\r\nFLUSHDB\r\n".encode())
        s.recv(64)
