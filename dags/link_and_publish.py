"""Linkage and notices: link every staged file into the index, as one transaction, then
tell every organisation involved with a child on whom the night made a new co-involvement
(and retract what a split made untrue).

Scheduled on the staging Asset, which intake updates once per night's wave of files (every
organisation's), so linkage runs once per wave, never once per file; a late or quarantined
organisation never blocks the others. What is pending is read from the file ledger, not
from the triggering events, so a rerun or a missed trigger loses nothing; so are the
notices (records whose child changed). Updates the index Asset once the notices are out.
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
    @task(pool=orch.linkage_pool())
    def link(**context: Any) -> dict[str, Any]:
        return orch.link(orch.context_night(context))

    @task(outlets=[orch.INDEX])
    def notify(**context: Any) -> dict[str, Any]:
        return orch.notify(orch.context_night(context))

    link() >> notify()


link_and_publish()
