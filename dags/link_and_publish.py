"""Linkage: link every staged file into the index, as one transaction.

Scheduled on the staging Asset, which intake updates once per night's wave of files (every
organisation's), so linkage runs once per wave, never once per file; a late or quarantined
organisation never blocks the others. What is pending is read from the file ledger, not
from the triggering events, so a rerun or a missed trigger loses nothing. Updates the
index Asset.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from childindex import orchestration as orch


@dag(
    dag_id="link_and_publish",
    schedule=orch.STAGED,
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
