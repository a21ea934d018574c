"""The quality reports inside Airflow's UI (childindex.orchestration.webui), mounted as the api-server
mounts a plugin's app, with Airflow's own auth manager and real JWTs: who may read them,
what is served and what never is. The route from a DAG run to its night, and the tab in
Airflow's UI, are exercised against a real api-server in test_end_to_end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from childindex.orchestration.plugin import PREFIX, ChildindexPlugin
from childindex.orchestration.webui import served_receipt_links
from childindex.reports import build_report
from tests.helpers import ORG
from tests.reports.test_reports import _nights
from tests.system.test_report_browser import PLOTS


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory):
    """Airflow's default (simple) auth manager with this module's own JWT secret."""

    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    # Token checks read Airflow's metadata (revoked tokens): this session's own SQLite one.
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = uuid.uuid4().hex * 2
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(tmp_path_factory.mktemp("am") / "pw.json")
    manager = create_auth_manager()
    manager.init()

    def token(role: str | None) -> str:
        return manager.generate_jwt(SimpleAuthManagerUser(username=f"u-{role}", role=role))

    yield token
    os.environ.pop("AIRFLOW__API_AUTH__JWT_SECRET")
    os.environ.pop("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")


@pytest.fixture()
def client() -> TestClient:
    # As Airflow's api-server does with a plugin's fastapi_apps.
    parent = FastAPI()
    (entry,) = ChildindexPlugin.fastapi_apps
    parent.mount(entry["url_prefix"], entry["app"])
    return TestClient(parent, follow_redirects=False)


def test_the_plugin_puts_a_report_tab_on_every_dag_run() -> None:
    views = {v["destination"]: v for v in ChildindexPlugin.external_views}
    assert views["dag_run"]["href"] == "childindex/reports/run/{DAG_ID}/{RUN_ID}"  # relative: no leading slash
    assert views["nav"]["href"] == "childindex/reports/"
    assert PREFIX == "/childindex"


def test_reports_need_an_airflow_login_with_read_access(settings, auth, client) -> None:
    build_report(settings, _nights(settings, n=2))
    url = "/childindex/reports/"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403
    # A user whom Airflow grants nothing.
    assert client.get(url, headers={"Authorization": f"Bearer {auth(None)}"}).status_code == 403
    # The UI's session cookie, or a bearer token, of a user who may read DAG runs.
    assert client.get(url, headers={"Authorization": f"Bearer {auth('viewer')}"}).status_code == 200
    client.cookies.set("_token", auth("viewer"))
    assert client.get(url).status_code == 200


def test_a_night_is_served_with_its_receipts(settings, auth, client) -> None:
    night = _nights(settings)
    build_report(settings, night)
    client.cookies.set("_token", auth("viewer"))
    index = client.get("/childindex/reports/index.html")
    assert index.status_code == 200 and f'href="night-{night}.html"' in index.text
    page = client.get(f"/childindex/reports/night-{night}.html")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'none'; img-src data:")
    assert page.headers["cache-control"] == "no-store"
    assert set(re.findall(r'<figure class="plot" id="([a-z_-]+)"', page.text)) == PLOTS
    assert len(re.findall(r'<figure class="plot"', page.text)) == len(PLOTS)
    links = re.findall(r'<a class="receipt" href="([^"]*)">', page.text)
    # Each to its receipt's text form, for a person to read; its JSON twin is served beside it.
    assert len(links) == 2 and all(re.fullmatch(r"receipts/[A-Z0-9]+/[^/]+\.receipt\.txt", link) for link in links)
    # The files that need a look: education's quarantined file, health's with a rejected row.
    assert {link.split("/")[1] for link in links} == {ORG["education"], ORG["health"]}
    for link in links:
        text = client.get(f"/childindex/reports/{link}")
        assert text.status_code == 200 and text.headers["content-type"] == "text/plain; charset=utf-8"
        assert text.headers["x-content-type-options"] == "nosniff"
        code, name = link.split("/")[1:]
        assert text.text.startswith("childindex receipt for ") and f"({code})" in text.text.splitlines()[0]
        receipt = client.get(f"/childindex/reports/{link[: -len('txt')]}json")
        assert receipt.status_code == 200 and receipt.headers["content-type"] == "application/json"
        body = json.loads(receipt.text)
        assert body["organisation"] == code and name.startswith(body["file_name"] + "." + body["sha256"][:8])


def test_nothing_but_reports_and_receipts_is_served(settings, auth, client) -> None:
    night = _nights(settings, n=1)
    build_report(settings, night)
    client.cookies.set("_token", auth("viewer"))
    # Beside the receipts: a file that is not one, and one above the outboxes.
    health = ORG["health"]
    outbox = settings.outbox(health)
    (outbox / "notes.txt").write_text("not a receipt")
    (settings.outbox_root / "x.receipt.json").write_text("{}")
    # A folder in the outbox root that is no registered organisation's, holding a receipt.
    (settings.outbox_root / "XYZ").mkdir()
    (settings.outbox_root / "XYZ" / "a.csv.1234abcd.receipt.json").write_text("{}")
    for path in (
        "night-latest.html",
        f"receipts/{health}/notes.txt",
        "receipts/elsewhere/x.receipt.json",
        "receipts/XYZ/a.csv.1234abcd.receipt.json",
        "receipts/health/a.csv.1234abcd.receipt.json",  # a sector is not an organisation
        f"receipts/{health}/%2E%2E%2Fx.receipt.json",
        f"receipts/{health}/..%2Fx.receipt.json",
        f"receipts/{health}/missing.receipt.json",
        "receipts/%2E%2E/x.receipt.json",
        "../../etc/passwd",
        "%2E%2E/%2E%2E/etc/passwd",
    ):
        assert client.get(f"/childindex/reports/{path}").status_code == 404, path
    missing = client.get("/childindex/reports/night-2020-01-01.html")
    assert missing.status_code == 404 and "childindex report --night 2020-01-01" in missing.text


def test_receipt_links_that_leave_the_outboxes_lose_their_target(tmp_path: Path) -> None:
    reports, outbox = tmp_path / "reports" / "quality", tmp_path / "outbox" / "RH1"
    for folder in (reports, outbox, tmp_path / "outbox" / "XYZ"):
        folder.mkdir(parents=True)
    page = (
        '<a class="receipt" href="../../outbox/RH1/a.csv.1234abcd.receipt.json">receipt</a>'
        '<a class="receipt" href="../../outbox/a.receipt.json">receipt</a>'
        '<a class="receipt" href="../../outbox/RH1/key.txt">receipt</a>'
        '<a class="receipt" href="../../outbox/XYZ/a.csv.1234abcd.receipt.json">receipt</a>'
        '<a class="receipt" href="/etc/passwd">receipt</a>'
    )
    served = served_receipt_links(page, reports, {"RH1": outbox})
    assert served == (
        '<a class="receipt" href="receipts/RH1/a.csv.1234abcd.receipt.json">receipt</a>'
        + '<a class="receipt">receipt</a>' * 4
    )
