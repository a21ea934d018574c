"""Night summary and quality report: files in, rows accepted and rejected, the index's size
and accuracy, and the night's HTML report with 30 nights of trends.

Scheduled on the index Asset. Writes REPORTS_DIR/night-YYYY-MM-DD.json, the night_metric
table and REPORTS_DIR/quality/night-YYYY-MM-DD.html; counts only.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from childindex import orchestration as orch


@dag(
    dag_id="night_summary",
    schedule=orch.INDEX,
    **orch.dag_defaults(),
    tags=[*orch.TAGS, "report"],
    doc_md=__doc__,
)
def night_summary() -> None:
    @task
    def summarise(**context: Any) -> dict[str, Any]:
        return orch.summarise(orch.context_night(context))

    @task
    def report(summary: dict[str, Any]) -> dict[str, Any]:
        return orch.quality_report(summary["night"])

    report(summarise())


night_summary()
