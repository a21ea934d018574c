"""What the DAGs share: Assets, default arguments, the night of a run, and task bodies.

Task bodies here take plain values and return counts and paths only (they go to XCom),
so they are unit-tested without Airflow. Heavy libraries are imported inside them, never
at DAG-parse time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

from airflow.sdk import Asset

from childindex.contracts.contract import AGENCIES

# One Asset per agency's staging area, and one for the published index.
STAGED = {agency: Asset(f"childindex://staging/{agency}", group="childindex") for agency in AGENCIES}
INDEX = Asset("childindex://index", group="childindex")

DEFAULT_ARGS = {
    "owner": "childindex",
    # Transient failures (a locked database, a full disk) are retried with backoff; a bad
    # extract never raises, it is quarantined. The demo sets 0 to fail fast.
    "retries": int(os.environ.get("CHILDINDEX_TASK_RETRIES", "2")),
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=20),
}

# Retention deletes as its own database role: with the CeleryExecutor its task goes to a
# queue whose workers hold that role's credentials (docs/production.md).
RETENTION_QUEUE = os.environ.get("CHILDINDEX_RETENTION_QUEUE", "default")

# Linkage writes the whole index in one transaction: a pool (create it with one slot,
# e.g. `airflow pools set childindex_linkage 1 "one linkage at a time"`) keeps it alone.
LINKAGE_POOL = os.environ.get("CHILDINDEX_LINKAGE_POOL", "default_pool")


def _failure_callbacks() -> list:
    """Notifiers for failed tasks: none unless CHILDINDEX_FAILURE_WEBHOOK_CONN is set."""
    conn_id = os.environ.get("CHILDINDEX_FAILURE_WEBHOOK_CONN")
    if not conn_id:
        return []
    from childindex.orchestration.notifiers import FailureWebhookNotifier

    return [FailureWebhookNotifier(conn_id)]


if _callbacks := _failure_callbacks():
    DEFAULT_ARGS["on_failure_callback"] = _callbacks

START = datetime(2026, 1, 1)
TAGS = ["childindex"]
# What every childindex DAG shares: no catch-up (intake picks up every complete file
# whatever its date, so a missed night is processed by the next run) and one run at a time
# (nights touch the same index in order).
DAG_DEFAULTS = {"start_date": START, "catchup": False, "max_active_runs": 1, "default_args": DEFAULT_ARGS}


def night_of(moment: datetime | None) -> date:
    """The night a run serves: extracts named for day D are processed early on D+1."""
    if moment is None:
        raise ValueError("a run needs a logical date or run_after to know its night")
    day = (moment - timedelta(days=1)).date()
    return date(day.year, day.month, day.day)  # a plain date: drivers cannot bind pendulum's


def context_night(context: dict) -> date:
    """Night of the running task, from its logical date or (asset-triggered) run_after."""
    dag_run = context["dag_run"]
    return night_of(context.get("logical_date") or dag_run.run_after)


def context_day(context: dict) -> date:
    """The calendar day a run is for (retention's "today")."""
    return context_night(context) + timedelta(days=1)


# --------------------------------------------------------------------------- task bodies


def discover_files(agency: str) -> list[str]:
    from childindex.intake.process import pending_files
    from childindex.settings import load_settings

    return [str(p) for p in pending_files(load_settings(), agency)]


@contextmanager
def _terminal_key_errors() -> Iterator[None]:
    """A key that is not the index's will not fix itself: fail the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from childindex.errors import KeyMismatch

    try:
        yield
    except KeyMismatch as exc:
        raise AirflowFailException(str(exc)) from None


def intake_one(agency: str, path: str, night: date) -> dict:
    from childindex.contracts.contract import load_contract
    from childindex.index.ledger import Ledger
    from childindex.intake.process import process_file
    from childindex.settings import load_settings

    settings = load_settings()
    settings.ensure_dirs()
    if not Path(path).exists():  # already handled by an earlier try of this task
        return {"agency": agency, "outcome": "gone", "rows_read": 0, "rows_accepted": 0, "rows_rejected": 0}
    with _terminal_key_errors():
        result = process_file(settings, load_contract(agency), Path(path), night, Ledger(settings.index_url))
    return {k: v for k, v in result.as_dict().items() if k != "sha256"}


def totals(results: list[dict]) -> dict:
    keys = ("rows_read", "rows_accepted", "rows_rejected")
    out = {k: sum(int(r.get(k, 0)) for r in results) for k in keys}
    out["files"] = len(results)
    out["files_quarantined"] = sum(r.get("outcome") == "rejected" for r in results)
    return out


def link(night: date) -> dict:
    from childindex.linkage.night import link_pending
    from childindex.settings import load_settings

    with _terminal_key_errors():
        return link_pending(load_settings(), night).as_dict()


def train() -> dict:
    from childindex.linkage.training import train_model
    from childindex.settings import load_settings

    path, report = train_model(load_settings())
    return {"model": str(path), **report}


def summarise(night: date) -> dict:
    from childindex.reports.summary import night_summary, summary_path
    from childindex.settings import load_settings

    settings = load_settings()
    summary = night_summary(settings, night)
    return {
        "night": summary["night"],
        "children": summary["children"],
        "files_in": summary["files_in"],
        "summary_path": str(summary_path(settings, night)),
    }


def quality_report(night: str) -> dict:
    """The night's HTML quality report, after its summary wrote the night's metrics."""
    from childindex.reports import build_report
    from childindex.settings import load_settings

    return {"night": night, "report_path": str(build_report(load_settings(), date.fromisoformat(night)))}


def retention(today: date, dry_run: bool) -> dict:
    from childindex.retention.run import run_retention
    from childindex.settings import load_settings

    cert = run_retention(load_settings(), today, dry_run=dry_run, airflow=True)
    return {"rows_deleted": cert["rows_deleted"], "files_deleted": cert["files_deleted"], "dry_run": dry_run}
