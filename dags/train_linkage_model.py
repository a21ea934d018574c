"""Train the linkage model on the index's records and save the next version.

Not part of a night: trigger it after the first load, and again when the agencies' data
changes in character (the night summary's accuracy or review queue will show it). Nights
use the newest model in CHILDINDEX_LINKAGE__MODEL_DIR, or the bundled one until then.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from childindex import orchestration as orch


@dag(
    dag_id="train_linkage_model",
    schedule=None,
    **orch.dag_defaults(),
    tags=[*orch.TAGS, "linkage"],
    doc_md=__doc__,
)
def train_linkage_model() -> None:
    @task
    def train() -> dict[str, Any]:
        return orch.train()

    train()


train_linkage_model()
