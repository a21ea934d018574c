"""Airflow glue: Assets, DAG defaults and retry policy, the night of a run, task bodies,
failure notifiers, and the plugin that shows the quality reports in Airflow's UI.

DAG files import this package only; it imports nothing heavy (a test checks).
"""

from childindex.orchestration.defaults import (
    INDEX,
    STAGED,
    TAGS,
    dag_defaults,
    default_args,
    intake_parallelism,
    linkage_pool,
    retention_queue,
    retry_policy,
)
from childindex.orchestration.nights import context_day, context_night, night_of
from childindex.orchestration.tasks import (
    discover_files,
    intake_one,
    link,
    notify,
    quality_report,
    retention,
    summarise,
    totals,
    train,
)

__all__ = [
    "INDEX",
    "STAGED",
    "TAGS",
    "context_day",
    "context_night",
    "dag_defaults",
    "default_args",
    "discover_files",
    "intake_parallelism",
    "intake_one",
    "link",
    "linkage_pool",
    "night_of",
    "notify",
    "quality_report",
    "retention",
    "retention_queue",
    "retry_policy",
    "summarise",
    "totals",
    "train",
]
