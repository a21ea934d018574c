"""The quality reports inside Airflow's UI.

A small FastAPI app that Airflow's api-server mounts at ``/childindex`` (registered by
``childindex.orchestration.plugin``). It serves what ``childindex report`` wrote, nothing else:

- ``reports/`` and ``reports/index.html``: the index of nights;
- ``reports/night-YYYY-MM-DD.html``: a night's report, with its receipt links pointed at
- ``reports/receipts/<organisation>/<file>.receipt.json|txt``: an organisation's receipts;
- ``reports/run/<dag_id>/<run_id>``: redirects a DAG run to the report of its night; the
  "Quality report" tab on every DAG run opens this.

Airflow does not protect plugin endpoints itself, so every route asks Airflow's auth
manager: the caller's token (the UI's cookie or an ``Authorization: Bearer`` header) must
belong to a user who may read the runs of ``night_summary`` (the DAG that writes the
reports) and, for ``run/``, of the run's own DAG. Reports hold counts, file names and
rules only; the responses forbid caching and every fetch (the pages are self-contained).

Every file is read with :func:`childindex.safe_paths.read_inside`: from ``REPORTS_DIR``, or
from the folder that holds an organisation's outbox, through real folders only, and only if
it is a regular file with one name. A link anywhere below (a file, the outbox, ``quality/``)
or a hard link gets 404, never the file it leads to.

Airflow's security module costs about a second to import, so it is imported on the first
request rather than wherever plugins are loaded.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from datetime import date
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from childindex.errors import UnsafePath
from childindex.safe_paths import read_inside
from childindex.settings import Settings

log = logging.getLogger(__name__)

REPORTS_DAG = "night_summary"
# A report is one file: inline styles and PNG data only. No script, no fetch, no form.
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
RECEIPT_NAME = re.compile(r"[^/\\]+\.receipt\.(json|txt)")
RECEIPT_LINK = re.compile(r'<a class="receipt" href="([^"]*)">')

app = FastAPI(title="childindex quality reports", docs_url=None, redoc_url=None, openapi_url=None)


# ----------------------------------------------------------------------------- access


async def _authorise(request: Request, *dag_ids: str) -> None:
    """401 without a valid Airflow token; 403 unless its user may read each DAG's runs."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    # Airflow's own resolution: a bearer header wins over the UI's session cookie.
    user = await get_user(request, None, await bearer_scheme(request))

    def allowed(dag_id: str) -> bool:
        from airflow.configuration import conf
        from airflow.models.dag import DagModel

        # As Airflow's own checks do, where DAGs can belong to teams.
        team = DagModel.get_team_name(dag_id) if conf.getboolean("core", "multi_team", fallback=False) else None
        details = DagDetails(id=dag_id, team_name=team)
        return get_auth_manager().is_authorized_dag(
            method="GET", access_entity=DagAccessEntity.RUN, details=details, user=user
        )

    for dag_id in dag_ids:
        # A team lookup reads Airflow's database: off the event loop.
        if not await asyncio.to_thread(allowed, dag_id):
            raise HTTPException(status_code=403, detail="Forbidden")


# ----------------------------------------------------------------------------- files


def _settings() -> Settings:
    from childindex.settings import load_settings

    return load_settings()


async def _read(root: Path, path: Path) -> bytes | None:
    """The file's bytes, None if there is none; 404 for anything :func:`read_inside` refuses
    (the response says no more: the log says which file and why)."""
    try:
        return await asyncio.to_thread(read_inside, root, path)
    except FileNotFoundError:
        return None
    except UnsafePath as exc:
        log.warning("not served: %s", exc.message)
        raise HTTPException(status_code=404, detail="Not Found") from None


def _html(text: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status_code, headers=HEADERS)


def _missing(night: date | None) -> HTMLResponse:
    what = f"night {night.isoformat()}" if night else "any night"
    how = f" Rebuild it with <code>childindex report --night {night.isoformat()}</code>." if night else ""
    return _html(
        "<!doctype html><meta charset='utf-8'><title>No quality report</title>"
        f"<p>No quality report for {what} yet. The <code>night_summary</code> DAG's report task writes one "
        f"after each night.{how}</p><p><a href='index.html'>All nights</a></p>",
        status_code=404,
    )


def served_receipt_links(page: str, report_folder: Path, outboxes: dict[str, Path]) -> str:
    """Point a report's receipt links (relative file paths, for reading it from disk) at
    ``receipts/<organisation>/<name>``. A link that does not resolve to a receipt in an outbox
    loses its target rather than being served."""

    def rewrite(match: re.Match) -> str:
        target = (report_folder / html.unescape(match.group(1))).resolve()
        for code, outbox in outboxes.items():
            if target.parent == outbox.resolve() and RECEIPT_NAME.fullmatch(target.name):
                return f'<a class="receipt" href="receipts/{quote(code)}/{html.escape(quote(target.name))}">'
        return '<a class="receipt">'

    return RECEIPT_LINK.sub(rewrite, page)


# ----------------------------------------------------------------------------- routes


@app.get("/reports/")
@app.get("/reports/index.html")
async def index(request: Request) -> HTMLResponse:
    await _authorise(request, REPORTS_DAG)
    from childindex.reports.build import report_dir

    settings = _settings()
    page = await _read(settings.reports_dir, report_dir(settings) / "index.html")
    if page is None:
        return _missing(None)
    return _html(page.decode("utf-8", errors="replace"))


@app.get("/reports/night-{night}.html")
async def night_report(request: Request, night: str) -> HTMLResponse:
    await _authorise(request, REPORTS_DAG)
    try:
        day = date.fromisoformat(night)
    except ValueError:
        raise HTTPException(status_code=404, detail="Not Found") from None
    from childindex.reports.build import report_path

    settings = _settings()
    path = report_path(settings, day)
    page = await _read(settings.reports_dir, path)
    if page is None:
        return _missing(day)
    outboxes = {o.code: settings.outbox(o.code) for o in settings.registry.organisations}
    return _html(served_receipt_links(page.decode("utf-8", errors="replace"), path.parent, outboxes))


@app.get("/reports/receipts/{organisation}/{name}")
async def receipt(request: Request, organisation: str, name: str) -> Response:
    await _authorise(request, REPORTS_DAG)
    settings = _settings()
    if organisation not in settings.registry.by_code or not RECEIPT_NAME.fullmatch(name):
        raise HTTPException(status_code=404, detail="Not Found")
    outbox = settings.outbox(organisation)
    # The folder holding the outbox is the root: the outbox itself must be a real folder.
    body = await _read(outbox.parent, outbox / name)
    if body is None:
        raise HTTPException(status_code=404, detail="Not Found")
    media = "application/json" if name.endswith(".json") else "text/plain; charset=utf-8"
    return Response(body, media_type=media, headers=HEADERS)


@app.get("/reports/run/{dag_id}/{run_id}")
async def run_report(request: Request, dag_id: str, run_id: str) -> RedirectResponse:
    await _authorise(request, dag_id, REPORTS_DAG)
    from childindex.reports.build import report_name

    night = await asyncio.to_thread(_night_of_run, dag_id, run_id)
    # Relative, so it holds behind a proxy that mounts Airflow under a prefix.
    return RedirectResponse(f"../../{report_name(night)}", status_code=307, headers=HEADERS)


def _night_of_run(dag_id: str, run_id: str) -> date:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from childindex.orchestration.nights import night_of

    with create_session() as session:
        row = session.execute(
            select(DagRun.logical_date, DagRun.run_after).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        ).first()
    if row is None:
        raise HTTPException(status_code=404, detail="No such DAG run")
    return night_of(row.logical_date or row.run_after)
