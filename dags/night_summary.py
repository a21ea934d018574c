"""Night summary and quality report: files in, rows accepted and rejected, the index's size
and accuracy, and the night's HTML report with 30 nights of trends.

Scheduled on the index Asset. Writes REPORTS_DIR/night-YYYY-MM-DD.json, the night_metric
table and REPORTS_DIR/quality/night-YYYY-MM-DD.html; counts only.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from childindex.orchestration import tasks as orch


@dag(
    dag_id="night_summary",
    schedule=orch.INDEX,
    **orch.DAG_DEFAULTS,
    tags=[*orch.TAGS, "report"],
    doc_md=__doc__,
)
def night_summary() -> None:
    @task
    def summarise(**context) -> dict:  # noqa: ANN003
        return orch.summarise(orch.context_night(context))

    @task
    def report(summary: dict) -> dict:
        return orch.quality_report(summary["night"])

    report(summarise())


night_summary()
