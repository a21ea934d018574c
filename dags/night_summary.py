"""Night summary: files in, rows accepted and rejected, the index's size and accuracy.

Scheduled on the index Asset. Writes REPORTS_DIR/night-YYYY-MM-DD.json and the
night_metric table; counts only.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from childindex import orchestration as orch


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

    summarise()


night_summary()
