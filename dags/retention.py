"""Retention: delete what is past its period, and write a deletion certificate.

Daily. Each rule runs in its own transaction; counts only go to the certificate. Trigger
with ``{"dry_run": true}`` to see what would go without deleting anything.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, task

from childindex import orchestration as orch


@dag(
    dag_id="retention",
    schedule="30 4 * * *",
    **orch.dag_defaults(),
    params={"dry_run": Param(False, type="boolean", description="Count, do not delete.")},
    tags=[*orch.TAGS, "retention"],
    doc_md=__doc__,
)
def retention() -> None:
    @task(queue=orch.retention_queue())
    def apply_retention(**context: Any) -> dict[str, Any]:
        return orch.retention(orch.context_day(context), bool(context["params"]["dry_run"]))

    apply_retention()


retention()
