"""childindex's Airflow plugin: the quality reports in Airflow's UI.

Registered through the ``airflow.plugins`` entry point (pyproject.toml), so installing the
package is enough; no file goes into Airflow's plugins folder. It adds

- a "Quality report" tab on every DAG run, showing the report of the run's night;
- a "Quality reports" item under Browse, showing the index of nights;

both served by ``childindex.orchestration.webui`` inside the api-server, behind Airflow's own login.
The api-server needs read access to REPORTS_DIR and the outboxes (CHILDINDEX_DATA_DIR or
the folders' own settings); it never needs the pseudonymisation key or the index.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

PREFIX = "/childindex"


class LazyReportsApp:
    """An ASGI app that imports ``childindex.orchestration.webui`` (and FastAPI) on its first request.

    Every process that loads plugins imports this module, each task's runner included;
    importing FastAPI here would cost them ~0.3 s for a UI that only the api-server serves."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from childindex.orchestration.webui import app

        await app(scope, receive, send)


class ChildindexPlugin(AirflowPlugin):
    name = "childindex"
    fastapi_apps = [{"app": LazyReportsApp(), "url_prefix": PREFIX, "name": "childindex quality reports"}]
    # hrefs without a leading slash: the UI resolves them against its own base URL, so they
    # hold when Airflow is served under a prefix. The UI fills in {DAG_ID} and {RUN_ID}.
    external_views = [
        {
            "name": "Quality report",
            "href": f"{PREFIX[1:]}/reports/run/{{DAG_ID}}/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "quality-report",
        },
        {
            "name": "Quality reports",
            "href": f"{PREFIX[1:]}/reports/",
            "destination": "nav",
            "category": "browse",
            "url_route": "quality-reports",
        },
    ]
