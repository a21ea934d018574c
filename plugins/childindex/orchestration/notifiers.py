"""Failure notifications through Airflow's notifier interface, off unless configured.

``CHILDINDEX_FAILURE_WEBHOOK_CONN`` names an Airflow Connection (for example
``AIRFLOW_CONN_CHILDINDEX_ALERTS='https://hooks.example.org/services/T0KEN'``); every
childindex task that fails then posts a short JSON message to its URL: which DAG, task,
run and try failed, the exception's type and the log's URL. Never an exception's text (it
could hold a value), never a row. Any other Airflow notifier (Slack, SMTP, ...) can be
attached the same way in a deployment's own DAG defaults.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseNotifier, Context

log = logging.getLogger(__name__)


def failure_message(context: Mapping[str, Any]) -> dict[str, Any]:
    """What a failure notification says: identifiers and types only."""
    ti = context.get("task_instance") or context.get("ti")
    exc = context.get("exception")
    return {
        "event": "childindex task failed",
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(ti, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "map_index": getattr(ti, "map_index", None),
        "exception_type": type(exc).__name__ if exc is not None else None,
        "log_url": getattr(ti, "log_url", None),
    }


def post_json(url: str, payload: dict[str, Any], timeout: float = 10) -> int:
    request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own connection
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return response.status


class FailureWebhookNotifier(BaseNotifier):
    """Posts :func:`failure_message` to the URL of Airflow Connection ``conn_id``."""

    template_fields = ()

    def __init__(self, conn_id: str) -> None:
        super().__init__()
        self.conn_id = conn_id

    def notify(self, context: Context) -> None:
        from airflow.sdk import Connection

        url = Connection.get(self.conn_id).get_uri()  # looked up when a task fails, never at parse time
        try:
            post_json(url, failure_message(context))
        except OSError as exc:  # a notification must never hide the failure it reports
            log.warning("failure notification to connection %s failed: %s", self.conn_id, type(exc).__name__)
