"""Train the linkage model on the index's records and save the next version.

Not part of a night: trigger it after the first load, and again when the agencies' data
changes in character (the night summary's accuracy or review queue will show it). Nights
use the newest model in CHILDINDEX_LINKAGE__MODEL_DIR, or the bundled one until then.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from childindex.orchestration import tasks as orch


@dag(
    dag_id="train_linkage_model",
    schedule=None,
    **orch.DAG_DEFAULTS,
    tags=[*orch.TAGS, "linkage"],
    doc_md=__doc__,
)
def train_linkage_model() -> None:
    @task
    def train() -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from childindex.errors import NotEnoughRecords

        try:
            return orch.train()
        except NotEnoughRecords as exc:  # a tiny first night: keep the current model
            raise AirflowSkipException(str(exc)) from None

    train()


train_linkage_model()
