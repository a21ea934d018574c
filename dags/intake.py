"""Intake, one DAG per agency: pick up complete extracts, check, pseudonymise, stage.

Each run lists the files whose upload is complete in the agency's drop folder, processes
each in its own mapped task (quarantine or stage, plus a receipt in the agency's outbox)
and then updates the agency's staging Asset, which schedules linkage. XComs carry paths
and counts only.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, dag, task

from childindex import orchestration as orch
from childindex.contracts import AGENCIES


def build(agency: str) -> DAG:
    @dag(
        dag_id=f"intake_{agency}",
        schedule="0 2 * * *",
        **orch.dag_defaults(),
        tags=[*orch.TAGS, "intake", agency],
        doc_md=__doc__,
    )
    def intake() -> None:
        @task
        def discover() -> list[str]:
            return orch.discover_files(agency)

        @task(max_active_tis_per_dagrun=2)
        def process(path: str, **context: Any) -> dict[str, Any]:
            return orch.intake_one(agency, path, orch.context_night(context))

        @task(outlets=[orch.STAGED[agency]])
        def publish_staged(results: list[dict[str, Any]], **context: Any) -> dict[str, int]:
            # Index, don't iterate: iterating a lazy XCom sequence probes one past its end.
            counts = orch.totals([results[i] for i in range(len(results))])
            context["outlet_events"][orch.STAGED[agency]].extra = {
                "night": orch.context_night(context).isoformat(),
                **counts,
            }
            return counts

        publish_staged(process.expand(path=discover()))

    return intake()


for _agency in AGENCIES:
    globals()[f"intake_{_agency}"] = build(_agency)
