"""Intake: pick up every registered organisation's complete extracts, check, pseudonymise, stage.

One DAG for every organisation, whatever the registry holds: ``discover`` lists the complete
files in all drop folders, each file is processed in its own mapped task (quarantine or
stage, plus a receipt in its organisation's outbox), and ``publish_staged`` then updates
the staging Asset once, which schedules linkage once for the night's whole wave. The DAG's
shape does not depend on the registry, so parsing it reads no registry file and costs the
same for 3 organisations as for 500. A late, silent or quarantined organisation blocks no
other: its files simply are not in tonight's list, or fail in their own task. XComs carry
codes, paths and counts only.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from childindex import orchestration as orch


@dag(
    dag_id="intake",
    schedule="0 2 * * *",
    **orch.dag_defaults(),
    tags=[*orch.TAGS, "intake"],
    doc_md=__doc__,
)
def intake() -> None:
    @task
    def discover(**context: Any) -> list[dict[str, str]]:
        return orch.discover_files(orch.context_night(context))

    # One file per mapped task, labelled in the UI by its organisation's code.
    @task(max_active_tis_per_dagrun=orch.intake_parallelism(), map_index_template="{{ job.organisation }}")
    def process(job: dict[str, str], **context: Any) -> dict[str, Any]:
        context["job"] = job
        return orch.intake_one(job["organisation"], job["path"], orch.context_night(context))

    @task(outlets=[orch.STAGED], trigger_rule="all_done")
    def publish_staged(results: list[dict[str, Any]], **context: Any) -> dict[str, int]:
        # Index, don't iterate: iterating a lazy XCom sequence probes one past its end.
        counts = orch.totals([results[i] for i in range(len(results))])
        context["outlet_events"][orch.STAGED].extra = {"night": orch.context_night(context).isoformat(), **counts}
        return counts

    publish_staged(process.expand(job=discover()))


intake()
