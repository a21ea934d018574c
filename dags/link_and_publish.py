"""Linkage: link every staged file into the index, as one transaction.

Scheduled on any agency's staging Asset, so a late or quarantined agency never blocks
the others; what is pending is read from the file ledger, not from the triggering events,
so a rerun or a missed trigger loses nothing. Updates the index Asset.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from childindex import orchestration as orch


@dag(
    dag_id="link_and_publish",
    schedule=orch.STAGED["education"] | orch.STAGED["health"] | orch.STAGED["social_care"],
    **orch.dag_defaults(),
    tags=[*orch.TAGS, "linkage"],
    doc_md=__doc__,
)
def link_and_publish() -> None:
    @task(outlets=[orch.INDEX], pool=orch.linkage_pool())
    def link(**context: Any) -> dict[str, Any]:
        return orch.link(orch.context_night(context))

    link()


link_and_publish()
