"""A small night through the real DAGs with Airflow's own runner, checked against ground truth.

Also the personal-data canary test: records carrying unique canary names and identifiers go
through the whole night (accepted, rejected and quarantined), then every log, XCom,
receipt, report, exception and database file is scanned for them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from childindex.contracts import load_contract
from childindex.whitelist import SECTORS
from tests.conftest import TEST_REGISTRY
from tests.helpers import CONTRACT, ORG, nhs, upn
from tests.system.test_report_browser import PLOTS
from tests.system.test_report_browser import chromium as chromium  # a fixture

pytestmark = pytest.mark.airflow

NIGHT = date(2026, 11, 24)
CHILDREN = 400
EVENTS: list[dict] = []  # what the night's runner told the demo's console (progress)

# Canary values: unique strings that must never leak.
CANARY_NAMES = [
    "Qzcanaryfirst",
    "Qzcanarylast",
    "Qzcanaryrejected",
    "Qzcanaryquarantined",
    "QZCANARYEXTRA",
    "1 Qzcanary Street",
]
CANARY_IDS = ["HQZ0000001", "PQZ0001", "77700001", nhs(900_001), upn(777), "HQZ0000002"]


def _append_canaries(settings) -> None:
    """Append canary rows (one accepted, one rejected) to each organisation's file, and drop a
    second social-care file that is rejected as a whole."""
    for sector in SECTORS:
        c = load_contract(CONTRACT[sector])
        [path] = [p for p in settings.drop_folder(ORG[sector]).iterdir() if c.match_name(p.name)]
        raw = path.read_bytes().decode(c.file.encoding)
        header = next(csv.reader(io.StringIO(raw.splitlines()[0]), delimiter=c.file.delimiter))
        local = {"health": "HQZ0000001", "education": "PQZ0001", "social_care": "77700001"}[sector]
        dob = date(2015, 6, 7).strftime(c.date_format)
        values = {
            "local_id": local,
            "nhs_number": CANARY_IDS[3],
            "upn": CANARY_IDS[4],
            "given_name": "Qzcanaryfirst",
            "family_name": "Qzcanarylast",
            "date_of_birth": dob,
            "sex": next(iter(c.sex_codes)),
            "postcode": "LS6 2AB",
            "service": c.services[0],
            "contact_route": "0113 496 0999",
            "involvement_start": "",
            "involvement_end": "",
            "sensitive": "",
        }
        by_name = {col.name: values[col.field] for col in c.columns}
        good = [by_name.get(h, "QZCANARYEXTRA" if "ADDRESS" not in h.upper() else "1 Qzcanary Street") for h in header]
        bad = dict(by_name)
        bad[c.column_for("local_id").name] = local + "R"
        bad[c.column_for("given_name").name] = "Qzcanaryrejected"
        # A service outside the contract's codes rejects the row (a malformed date of birth
        # would only be set aside: missing_identity: stage).
        bad[c.column_for("service").name] = "not-a-service"
        bad_row = [bad.get(h, "QZCANARYEXTRA") for h in header]
        out = io.StringIO()
        w = csv.writer(out, delimiter=c.file.delimiter, lineterminator="\n")
        w.writerow(good)
        w.writerow(bad_row)
        path.write_bytes((raw + out.getvalue()).encode(c.file.encoding))
    sc = settings.drop_folder(ORG["social_care"]) / "sc_extract_20261123.txt"
    sc.write_bytes(b"PERSON_ID|FIRST_NAME\nHQZ0000002|Qzcanaryquarantined\n")
    (sc.parent / (sc.name + ".done")).touch()


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory):
    from childindex.index.db import migrate
    from childindex.settings import load_settings
    from childindex.simulation import demo
    from childindex.simulation.synthetic import generate_night

    data_dir = tmp_path_factory.mktemp("night") / "data"
    paths, env = demo.prepare(data_dir)
    env["CHILDINDEX_ORGANISATIONS_FILE"] = str(TEST_REGISTRY)  # three organisations: a fast night
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        settings = load_settings()
        settings.ensure_dirs()
        generate_night(
            settings.drop_root,
            paths.truth_dir,
            registry=settings.registry,
            children=CHILDREN,
            seed=7,
            first_night=NIGHT,
        )
        _append_canaries(settings)
        migrate(settings.index_url)
        EVENTS.append({"event": "fixture_started", "at": datetime.now(UTC).isoformat()})
        demo.run_dags(env, NIGHT, paths.log_file, progress=EVENTS.append)
        yield settings, paths, env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _index(settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.index_url.split("///", 1)[1])


def test_every_dag_succeeded_and_files_were_processed(night) -> None:
    settings, paths, _ = night
    log = paths.log_file.read_text()
    from childindex.simulation.demo import DEMO_ORDER

    for dag_id in DEMO_ORDER:
        assert (
            f"childindex demo: {dag_id} finished: success" in log
            or f"childindex demo: {dag_id} finished: DagRunState.SUCCESS" in log
        )
    con = _index(settings)
    ledger = dict(con.execute("SELECT file_name, status FROM file_ledger").fetchall())
    assert ledger["sc_extract_20261123.txt"] == "quarantined"
    assert sorted(v for k, v in ledger.items() if k != "sc_extract_20261123.txt") == ["linked"] * 3
    assert not any(
        p.is_file() and not p.name.startswith(".") for c in ORG.values() for p in settings.drop_folder(c).iterdir()
    )


def test_the_runner_tells_each_task_as_it_ends_and_writes_its_log(night) -> None:
    """The demo's console is told of every task of every DAG as it ends (state, seconds); each
    task's log is in Airflow's log folder, where the UI reads it; runs last seconds, not days."""
    from childindex.simulation.demo import DEMO_ORDER

    _, paths, _ = night
    began = datetime.fromisoformat(EVENTS[0]["at"])
    done = [(e["dag_id"], e["task_id"]) for e in EVENTS if e["event"] == "task_finished"]
    assert sorted(set(done)) == sorted(
        [
            ("intake", "discover"),
            ("intake", "process"),
            ("intake", "publish_staged"),
            ("link_and_publish", "link"),
            ("link_and_publish", "notify"),
            ("night_summary", "report"),
            ("night_summary", "summarise"),
            ("retention", "apply_retention"),
            ("train_linkage_model", "train"),
        ]
    )
    # One mapped task per file (three extracts and the quarantined one), labelled by organisation.
    process = [e for e in EVENTS if e["event"] == "task_finished" and e["task_id"] == "process"]
    assert sorted(e["map_index"] for e in process) == [0, 1, 2, 3]
    assert sorted(e["label"] for e in process) == sorted([*ORG.values(), ORG["social_care"]])
    assert all(e["state"] == "success" and 0 < e["seconds"] < 600 for e in EVENTS if e["event"] == "task_finished")
    assert [e["dag_id"] for e in EVENTS if e["event"] == "dag_finished"] == list(DEMO_ORDER)
    started = [e for e in EVENTS if e["event"] == "task_started"]
    assert len(started) == len(done)
    for e in started:
        log = (paths.airflow_home / "logs" / e["log"]).read_text()
        assert f"starting task_id={e['task_id']} map_index={e['map_index']}" in log, e["log"]
    # The DAG runs' start and end as they happened (dag.test() started them at the logical date).
    con = sqlite3.connect(paths.airflow_home / "airflow.db")
    runs = con.execute("SELECT dag_id, start_date, end_date FROM dag_run").fetchall()
    assert sorted(r[0] for r in runs) == sorted(DEMO_ORDER)
    for dag_id, start, end in runs:
        start_at, end_at = (datetime.fromisoformat(t).replace(tzinfo=UTC) for t in (start, end))
        assert began <= start_at < end_at <= datetime.now(UTC), dag_id
        assert (end_at - start_at).total_seconds() < 600, dag_id


def test_linkage_meets_the_accuracy_floor(night) -> None:
    """Against the generator's truth, at its default noise: no false merge, few missed links.
    (400 children: a few hundred true pairs, so the recall floor is looser than the 0.99
    that tests/test_linkage_accuracy.py holds on thousands.)"""
    from childindex.linkage.evaluation import accuracy

    settings, paths, _ = night
    acc = accuracy(settings, paths.truth_dir)
    assert acc["precision"] >= 0.999
    assert acc["recall"] >= 0.98
    assert acc["bcubed_precision"] >= 0.999 and acc["bcubed_recall"] >= 0.99


def test_the_summary_reports_the_night(night) -> None:
    import json

    from childindex.reports import summary_path

    settings, _, _ = night
    s = json.loads(summary_path(settings, NIGHT).read_text())
    con = _index(settings)
    assert s["children"] == con.execute("SELECT count(*) FROM child").fetchone()[0]
    assert s["sectors"]["health"]["rows_rejected"] == s["organisations"][ORG["health"]]["rows_rejected"] == 1
    # The quarantined file was for night 23.
    assert s["sectors"]["social_care"]["files"] == s["organisations"][ORG["social_care"]]["files"] == 1
    assert (s["organisations_registered"], s["organisations_sending"], s["organisations_silent"]) == (3, 3, [])
    assert s["unregistered_drops"] == []
    assert s["rows_read"] == s["rows_accepted"] + s["rows_rejected"]
    assert 0.999 <= s["accuracy"]["precision"] <= 1.0
    assert s["linkage"]["model_version"] in (0, 1) and s["linkage"]["records"] > 0
    assert s["linkage"]["review_queue_open"] == s["linkage"]["review_items"]
    assert s["retention"] is None or set(s["retention"]["rules"]) >= {"involvement_ended", "staging"}
    # The night_summary DAG's report task wrote the night's quality report.
    report = settings.reports_dir / "quality" / f"night-{NIGHT}.html"
    assert report.exists() and 'id="plot-rows_read"' in report.read_text()
    cert = settings.reports_dir / "retention" / f"certificate-{NIGHT.replace(day=25)}.json"
    assert cert.exists()
    # Inside Airflow the retention DAG also cleans Airflow's metadata (nothing is old yet).
    rules = {r["rule"]: r for r in json.loads(cert.read_text())["rules"]}
    assert rules["airflow_metadata"]["skipped"] is None
    assert rules["airflow_metadata"]["rows_deleted"].get("airflow.dag_run") == 0


def test_the_night_tells_every_organisation_involved_and_it_is_true(night) -> None:
    """The link_and_publish DAG's notices: one per organisation and child known to several,
    in both formats, counted in the summary and the report, and true against the truth."""
    from childindex.notices.files import notice_paths
    from childindex.reports import summary_path

    settings, _, _ = night
    s = json.loads(summary_path(settings, NIGHT).read_text())
    n = s["notices"]
    con = _index(settings)
    # Organisations currently involved (open, or ended within the 365-day look-back) per child.
    current = (
        "SELECT child_id, count(DISTINCT organisation) k FROM involvement "
        f"WHERE end_date IS NULL OR end_date >= '{NIGHT - timedelta(days=365)}' GROUP BY 1"
    )
    shared = con.execute(f"SELECT count(*) FROM ({current}) WHERE k > 1").fetchone()[0]
    per_child = con.execute(f"SELECT sum(k) FROM ({current}) WHERE k > 1").fetchone()[0]
    assert shared > 50 and n["notices_sent"] == per_child and n["notices_organisations"] == 3
    assert sum(e["notices_sent"] for e in s["organisations"].values()) == per_child
    assert n["precision"] >= 0.999 and n["recall"] >= 0.98 and n["false"] <= 1 and n["retractions_sent"] == 0
    for code in ORG.values():
        json_path, csv_path = notice_paths(settings.outbox(code), NIGHT)
        document = json.loads(json_path.read_text())
        assert document["schema"] == "childindex-notices/1" and document["organisation"]["code"] == code
        assert s["organisations"][code]["notices_sent"] == len(document["notices"])
        assert csv_path.read_text().startswith("night,notice_id,kind,reference,new,")
    report = (settings.reports_dir / "quality" / f"night-{NIGHT}.html").read_text()
    assert 'id="plot-notices"' in report and 'id="notice-accuracy"' in report


def test_a_rerun_of_the_night_gives_the_same_index(night) -> None:
    from childindex.simulation import demo

    settings, paths, env = night
    dump = "SELECT * FROM child ORDER BY 1; SELECT * FROM source_record ORDER BY 1"

    def snapshot() -> list:
        con = _index(settings)
        return [con.execute(q).fetchall() for q in dump.split("; ")]

    notices = sorted(p for p in settings.outbox_root.rglob("notices-*"))

    def files() -> list[bytes]:
        return [p.read_bytes() for p in notices]

    before, told = snapshot(), files()
    demo.run_dags(env, NIGHT, paths.log_file, ("intake", "link_and_publish"))
    assert snapshot() == before
    assert notices and files() == told, "a rerun of the night adds no notice"


@pytest.fixture(scope="module")
def api_server(night):
    """Airflow's api-server on the night's metadata, as a data engineer runs it; its log
    stays in the Airflow home, where the canary test scans it."""
    import signal
    import socket
    import subprocess
    import time
    import uuid

    import httpx

    from childindex.simulation import demo

    _, paths, env = night
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = paths.airflow_home / "logs" / "api-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    # An analyst who may only read (Airflow's "viewer" role), with a password of this run's own.
    passwords = paths.airflow_home / "passwords.json"
    password = uuid.uuid4().hex
    passwords.write_text(json.dumps({"analyst": password}))
    # As `childindex demo --serve` starts it, but with a login instead of admin for all.
    server_env = {
        **demo.ui_env(env),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "analyst:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }
    with log.open("w") as out:
        proc = subprocess.Popen(
            demo.ui_command(port), env=server_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        login = {"username": "analyst", "password": password}
        token = httpx.post(f"{base}/auth/token", json=login, timeout=30).json()["access_token"]
        yield base, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _latest_run(base: str, token: str, dag_id: str) -> str:
    import httpx

    runs = httpx.get(
        f"{base}/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after&limit=1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()["dag_runs"]
    return runs[0]["dag_run_id"]


def test_every_dag_run_links_to_its_nights_report(night, api_server) -> None:
    from urllib.parse import quote

    import httpx

    settings, _, _ = night
    base, token = api_server
    auth = {"Authorization": f"Bearer {token}"}
    plugins = httpx.get(f"{base}/api/v2/plugins", headers=auth, timeout=30).json()["plugins"]
    (plugin,) = [p for p in plugins if p["name"] == "childindex"]
    assert {v["destination"]: v["name"] for v in plugin["external_views"]} == {
        "dag_run": "Quality report",
        "nav": "Quality reports",
    }
    report = settings.reports_dir / "quality" / f"night-{NIGHT}.html"
    assert report.exists()
    for dag_id in ("night_summary", "intake", "link_and_publish"):
        run_id = _latest_run(base, token, dag_id)
        # As the UI fills in the tab's href: each id URI-encoded.
        link = f"{base}/childindex/reports/run/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"
        assert httpx.get(link, timeout=30).status_code == 401
        hop = httpx.get(link, headers=auth, timeout=30)
        assert hop.status_code == 307 and hop.headers["location"] == f"../../night-{NIGHT}.html", dag_id
        page = httpx.get(link, headers=auth, timeout=30, follow_redirects=True)
        assert page.status_code == 200 and str(page.url) == f"{base}/childindex/reports/night-{NIGHT}.html"
        assert page.text.count('<figure class="plot"') == len(PLOTS)
    missing = httpx.get(f"{base}/childindex/reports/run/night_summary/no-such-run", headers=auth, timeout=30)
    assert missing.status_code == 404


def test_the_report_tab_of_a_dag_run_in_airflows_ui(night, api_server, chromium) -> None:
    """The data engineer's path: a DAG run's page in Airflow's UI, its "Quality report" tab,
    the night's report inside, every plot drawn; a screenshot is kept."""
    from playwright.sync_api import sync_playwright

    from tests.system.test_report_browser import ARTIFACTS, CHROMIUM_ARGS

    base, token = api_server
    run_id = _latest_run(base, token, "night_summary")
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.add_cookies([{"name": "_token", "value": token, "url": base}])  # the UI's own session cookie
            page = context.new_page()
            # A request the page cancels itself (Airflow's UI aborts its own polling as it
            # re-renders: net::ERR_ABORTED) is no failure, except for the report's own files.
            page.on(
                "requestfailed",
                lambda r: (
                    problems.append(f"request failed: {r.url} ({r.failure})")
                    if r.failure != "net::ERR_ABORTED" or "/childindex/" in r.url
                    else None
                ),
            )
            # Airflow's own page may log what it likes; the report's frame must raise nothing.
            csp = ("Content Security Policy", "childindex")
            page.on("console", lambda m: problems.append(m.text) if any(w in m.text for w in csp) else None)
            page.goto(f"{base}/dags/night_summary/runs/{run_id}/plugin/quality-report", wait_until="load")
            tab = page.get_by_role("tab", name="Quality report").or_(page.get_by_text("Quality report").first)
            tab.first.wait_for(timeout=60_000)
            frame = page.frame_locator("iframe")
            frame.locator("#headline").wait_for(timeout=60_000)
            images = frame.locator("figure.plot img").evaluate_all(
                "imgs => imgs.map(i => [i.complete, i.naturalWidth])"
            )
            receipts = frame.locator("a.receipt").evaluate_all("links => links.map(a => a.href)")
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "airflow-quality-report-tab.png"
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert problems == []
    assert len(images) == len(PLOTS) and all(done and width > 300 for done, width in images), images
    assert receipts and all(r.startswith(f"{base}/childindex/reports/receipts/") for r in receipts), receipts
    assert shot.stat().st_size > 30_000


def _scan(paths: list[Path], needles: list[str]) -> list[tuple[str, str]]:
    found = []
    for p in paths:
        data = p.read_bytes()
        for n in needles:
            for enc in ("utf-8", "utf-16-le"):
                if n.encode(enc) in data:
                    found.append((str(p), n))
    return found


def test_no_canary_leaks_anywhere(night) -> None:
    settings, paths, _ = night
    data = settings.data_dir
    every_file = [p for p in data.rglob("*") if p.is_file()]
    originals = {
        p
        for p in every_file
        if p.is_relative_to(settings.archive_dir)
        or (p.is_relative_to(settings.quarantine_dir) and p.name != "quarantine.json")
    }
    assert originals, "the originals are kept"
    # The canaries did go through: the accepted canary child is in the index.
    con = _index(settings)
    assert con.execute("SELECT count(*) FROM child WHERE given_name = 'Qzcanaryfirst'").fetchone()[0] >= 1
    # Names may be in the index and staging (that is the index's purpose); nowhere else.
    holders = {p for p in every_file if p.name.startswith("index.sqlite") or p.is_relative_to(settings.staging_dir)}
    # A notice names the child by its organisation's own reference (its local id), and nothing
    # else of any record: the other organisations' ids, names and addresses never.
    notices = {p for p in every_file if p.parent.name == "notices" and p.is_relative_to(settings.outbox_root)}
    logs_and_reports = [p for p in every_file if p not in originals and p not in holders and p not in notices]
    assert any(p.is_relative_to(paths.airflow_home) and p.suffix == ".log" for p in logs_and_reports)
    assert any(p.name == "airflow.db" for p in logs_and_reports), "XComs are scanned"
    assert any(p.is_relative_to(settings.outbox_root) for p in logs_and_reports)
    assert _scan(logs_and_reports, CANARY_NAMES + CANARY_IDS) == []
    own = {"health": "HQZ0000001", "education": "PQZ0001", "social_care": "77700001"}
    for sector, reference in own.items():
        mine = sorted(p for p in notices if p.is_relative_to(settings.outbox(ORG[sector])))
        assert {p.suffix for p in mine} == {".json", ".csv"}, sector
        assert {n for _, n in _scan(mine, [reference])} == {reference}, f"{sector} is told of the canary child"
        others = [n for n in CANARY_NAMES + CANARY_IDS if n != reference]
        assert _scan(mine, others) == [], sector
    # Identifiers appear nowhere but in the organisations' own files: the index holds HMACs only.
    assert _scan(sorted(holders), CANARY_IDS) == []
    # Non-whitelisted values never reach the index or staging.
    assert (
        _scan(sorted(holders), ["QZCANARYEXTRA", "1 Qzcanary Street", "Qzcanaryrejected", "Qzcanaryquarantined"]) == []
    )


def test_the_demo_command_twice_gives_the_same_index(tmp_path: Path) -> None:
    """`childindex demo` as a user runs it: a summary with every figure, and an idempotent rerun."""
    import subprocess
    import sys

    data = tmp_path / "demo"
    dags = Path(__file__).resolve().parents[2] / "dags"
    demo = ["demo", "--children", "300", "--data-dir", str(data), "--dags-folder", str(dags)]
    cmd = [sys.executable, "-m", "childindex.cli", *demo]
    # A user's shell in a folder of its own (the demo writes childindex.toml there).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHILDINDEX_", "AIRFLOW"))}
    env["COLUMNS"] = "200"
    env["CHILDINDEX_ORGANISATIONS_FILE"] = str(TEST_REGISTRY)  # three organisations: a fast demo
    first = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    # Progress: a line per task as it ends, and per DAG run.
    assert re.search(r"^  intake +process\[E06000047\] +success +\d+\.\d s$", first.stdout, re.M), first.stdout
    assert re.search(r"^link_and_publish: success in \d+\.\d s$", first.stdout, re.M)
    assert "linkage: model linkage-model-v0001.json, " in first.stdout  # trained, then used
    for expected in (
        "rows read",
        "accepted",
        "rejected",
        "children in the index",
        "records linked",
        "notices: ",
        "notices against ground truth",
        "precision",
        "recall",
        "time taken",
        "index: sqlite:///",
        "receipts:",
    ):
        assert expected in first.stdout, expected

    def dump() -> list:
        con = sqlite3.connect(data / "index.sqlite")
        return [
            con.execute(q).fetchall()
            for q in (
                "SELECT * FROM child ORDER BY 1",
                "SELECT * FROM source_record ORDER BY 1",
                "SELECT * FROM involvement ORDER BY 1",
            )
        ]

    before = dump()
    # Every other command run in that folder, with no CHILDINDEX_* variable, finds the demo's data.
    alone = {k: v for k, v in env.items() if not k.startswith("CHILDINDEX_")} | {"COLUMNS": "400"}
    out = {}
    for command in (["doctor"], ["summary", "--night", "2026-11-24"]):
        done = subprocess.run(
            [sys.executable, "-m", "childindex.cli", *command],
            env=alone,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        out[command[0]] = done.stdout
    assert f"configuration file {tmp_path / 'childindex.toml'} (found in the working directory)" in out["doctor"]
    assert f"{TEST_REGISTRY}: 3 organisations" in out["doctor"] and str(data / "drop") in out["doctor"]
    assert "300" in out["summary"]  # the demo's children, from the demo's index
    assert not (tmp_path / "childindex-data").exists()
    second = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stdout[-2000:]
    assert dump() == before
    assert "3 duplicate file(s), loaded before" in second.stdout  # every organisation's file, recognised
    # The second demo trained v0002, but the night's records were scored by v0001: say so.
    assert "linkage: model linkage-model-v0001.json; newest now linkage-model-v0002.json, for later nights" in (
        second.stdout
    )
    key = data / "secrets" / "pseudonymisation.key"
    assert (key.stat().st_mode & 0o777) == 0o600


def test_served_demo_runs_what_is_triggered_with_its_logs_and_stops_on_sigterm(night, tmp_path: Path) -> None:
    """`childindex demo --serve-only` on the night's data folder, without running a night: the
    api-server, a scheduler and a dag-processor; a run triggered through the API (as the UI's
    Trigger does, unpausing the DAG) executes, its task logs are readable through the API, its
    duration is real; SIGTERM stops every process. Last in this module: it adds a run."""
    import signal
    import socket
    import subprocess
    import sys
    import time
    from urllib.parse import quote

    import httpx
    import psutil

    _, paths, _ = night
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHILDINDEX_", "AIRFLOW"))}
    env["CHILDINDEX_ORGANISATIONS_FILE"] = str(TEST_REGISTRY)
    dags = Path(__file__).resolve().parents[2] / "dags"
    cmd = [sys.executable, "-m", "childindex.cli", "demo", "--serve-only", "--serve", str(port)]
    served = subprocess.Popen(
        [*cmd, "--data-dir", str(paths.data_dir), "--dags-folder", str(dags)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base, log = f"http://127.0.0.1:{port}", paths.airflow_home / "serve.log"
    try:
        deadline = time.monotonic() + 240
        while True:  # every component reports in
            try:
                health = httpx.get(f"{base}/api/v2/monitor/health", timeout=5).json()
                if all(health[c]["status"] == "healthy" for c in ("metadatabase", "scheduler", "dag_processor")):
                    break
            except (httpx.TransportError, ValueError, KeyError):
                pass
            assert served.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        processes = psutil.Process(served.pid).children(recursive=True)
        commands = {" ".join(p.cmdline()) for p in processes}
        assert {c for c in ("api_server", "scheduler", "dag-processor") if any(c in x for x in commands)} == {
            "api_server",
            "scheduler",
            "dag-processor",
        }, commands
        auth = {"Authorization": f"Bearer {httpx.get(f'{base}/auth/token', timeout=30).json()['access_token']}"}
        api = f"{base}/api/v2/dags/night_summary"
        assert httpx.patch(api, json={"is_paused": False}, headers=auth, timeout=30).status_code == 200
        run = httpx.post(f"{api}/dagRuns", json={"logical_date": None}, headers=auth, timeout=30).json()
        run_url = f"{api}/dagRuns/{quote(run['dag_run_id'], safe='')}"
        while (state := httpx.get(run_url, headers=auth, timeout=30).json())["state"] not in ("success", "failed"):
            assert time.monotonic() < deadline, (state, log.read_text()[-3000:])
            time.sleep(2)
        assert state["state"] == "success" and 0 < state["duration"] < 240, state
        task_log = httpx.get(f"{run_url}/taskInstances/summarise/logs/1", headers=auth, timeout=30).json()
        events = " ".join(str(line.get("event", "")) for line in task_log["content"])
        assert "Done. Returned value was" in events, events[-2000:]
    finally:
        served.send_signal(signal.SIGTERM)
        code = served.wait(timeout=120)
    assert code == 0, served.stdout.read() if served.stdout else ""
    alive = psutil.wait_procs(processes, timeout=30)[1]
    assert alive == [], f"still running after SIGTERM: {alive}"
