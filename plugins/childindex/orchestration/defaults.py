"""What every childindex DAG shares: its Assets, default arguments and retry policy.

Read when Airflow parses the DAG files, so it stays light: settings come from
:func:`childindex.settings.load_settings` (environment or config file, no database, no
Airflow Variable or Connection), and nothing heavy is imported.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, ExceptionRetryPolicy, RetryAction, RetryRule

from childindex.errors import TerminalError, TransientError
from childindex.settings import Settings, load_settings

# The staging area (updated once per intake run: one night's wave of every organisation's
# files), and the published index. Linkage runs once per wave, never once per file.
STAGED = Asset("childindex://staging", group="childindex")
INDEX = Asset("childindex://index", group="childindex")

START = datetime(2026, 1, 1)
TAGS = ["childindex"]


def retry_policy() -> ExceptionRetryPolicy:
    """Retries chosen by the exception's type (childindex.errors): a terminal error (a bad
    extract, a contract or key mismatch, a configuration error) fails at once, a transient
    one (the index unreachable or locked) is retried with the task's backoff; anything else
    keeps Airflow's default (retried: an unforeseen error may be a passing one)."""
    return ExceptionRetryPolicy(
        rules=[
            RetryRule(exception=TerminalError, action=RetryAction.FAIL, reason="terminal: retrying cannot help"),
            RetryRule(exception=TransientError, action=RetryAction.RETRY, reason="transient: retried with backoff"),
        ]
    )


def default_args(settings: Settings) -> dict[str, Any]:
    """Task defaults: retries with exponential backoff (``CHILDINDEX_TASK_RETRIES``; the demo
    sets 0 to fail fast), the retry policy, and the failure notifier when one is configured."""
    args: dict[str, Any] = {
        "owner": "childindex",
        "retries": settings.task_retries,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=20),
        "retry_policy": retry_policy(),
    }
    if settings.failure_webhook_conn:
        from childindex.orchestration.notifiers import FailureWebhookNotifier

        args["on_failure_callback"] = [FailureWebhookNotifier(settings.failure_webhook_conn)]
    return args


def dag_defaults(settings: Settings | None = None) -> dict[str, Any]:
    """Arguments every childindex DAG takes: no catch-up (intake picks up every complete file
    whatever its date, so a missed night is processed by the next run) and one run at a time
    (nights touch the same index in order)."""
    settings = settings or load_settings()
    return {"start_date": START, "catchup": False, "max_active_runs": 1, "default_args": default_args(settings)}


def linkage_pool(settings: Settings | None = None) -> str:
    """Linkage writes the whole index in one transaction: a pool of one slot keeps it alone
    (``airflow pools set childindex_linkage 1 "one linkage at a time"``)."""
    return (settings or load_settings()).linkage_pool


def intake_parallelism(settings: Settings | None = None) -> int:
    """Files of one intake run checked at once (each a mapped task: a worker slot)."""
    return (settings or load_settings()).intake_parallelism


def retention_queue(settings: Settings | None = None) -> str:
    """Retention deletes as its own database role: with the CeleryExecutor its task goes to a
    queue whose workers hold that role's credentials (docs/production.md)."""
    return (settings or load_settings()).retention_queue
