"""Task bodies: plain values in, counts and paths out (they go to XCom).

Each runs one stage under :func:`childindex.errors.stage_errors`, so its errors carry the
stage and the night and a database that is unreachable or locked becomes a transient error
(retried); the DAGs' retry policy reads the type. Unit-tested without Airflow. Heavy
libraries are imported inside the stages, never here.
"""

from __future__ import annotations

import logging
import os
from datetime import date
from pathlib import Path
from typing import Any

from childindex.errors import stage_errors
from childindex.settings import load_settings

log = logging.getLogger(__name__)


def _index_url() -> str:
    """For stage_errors, to say how connecting to the index failed (refused, the login, the
    database missing) as the command line does."""
    return load_settings().index_url


def discover_files(night: date) -> list[dict[str, str]]:
    """Every registered organisation's complete files ({organisation, path}: one mapped task
    each). Folders that belong to no registered organisation are logged, never read. Files
    still waiting for their completion are logged per organisation (count and oldest wait,
    never a name) and recorded as the night's metrics for the night summary."""
    from childindex.intake.discovery import scan_drop_folder, unregistered_drops
    from childindex.intake.process import record_waiting

    with stage_errors("intake", night, index_url=_index_url):
        settings = load_settings()
        for drop in unregistered_drops(settings):
            log.warning("drop folder %r belongs to no registered organisation: %d file(s) left unread",
                        drop.folder, drop.files)  # fmt: skip
        jobs, waiting = [], {}
        for org in settings.registry.organisations:
            folder = scan_drop_folder(settings, org.code)
            waiting[org.code] = folder.waiting
            jobs += [{"organisation": org.code, "path": str(path)} for path in folder.complete]
            if folder.waiting.files:
                (log.warning if folder.waiting.stuck else log.info)("%s: %s", org.code, folder.waiting.describe())
        record_waiting(settings, night, waiting)
        return jobs


def intake_one(organisation: str, path: str, night: date) -> dict[str, Any]:
    from childindex.index.ledger import Ledger
    from childindex.intake.process import process_file

    with stage_errors("intake", night, index_url=_index_url):
        settings = load_settings()
        # Already handled by an earlier try of this task (a dangling link is still there).
        if not os.path.lexists(path):
            return {"organisation": organisation, "outcome": "gone", "rows_read": 0, "rows_accepted": 0,
                    "rows_rejected": 0}  # fmt: skip
        result = process_file(settings, organisation, Path(path), night, Ledger(settings.index_url))
    return {k: v for k, v in result.as_dict().items() if k != "sha256"}


def totals(results: list[dict[str, Any]]) -> dict[str, int]:
    keys = ("rows_read", "rows_accepted", "rows_rejected")
    out = {k: sum(int(r.get(k, 0)) for r in results) for k in keys}
    out["files"] = len(results)
    out["files_quarantined"] = sum(r.get("outcome") == "rejected" for r in results)
    out["organisations"] = len({r.get("organisation") for r in results})
    return out


def link(night: date) -> dict[str, Any]:
    from childindex.linkage.night import link_pending

    with stage_errors("linkage", night, index_url=_index_url):
        return link_pending(load_settings(), night).as_dict()


def notify(night: date) -> dict[str, Any]:
    """Tonight's notices and retractions, into each organisation's outbox: counts out."""
    from childindex.notices.night import send_notices

    with stage_errors("notices", night, index_url=_index_url):
        return send_notices(load_settings(), night).as_dict()


def train() -> dict[str, Any]:
    """Train and save the next model; skipped (the current model stays) on a tiny index."""
    from airflow.sdk.exceptions import AirflowSkipException

    from childindex.errors import NotEnoughRecords
    from childindex.linkage.training import train_model

    try:
        with stage_errors("linkage", index_url=_index_url):
            path, report = train_model(load_settings())
    except NotEnoughRecords as exc:  # a tiny first night: keep the current model
        raise AirflowSkipException(str(exc)) from None
    return {"model": str(path), **report}


def summarise(night: date) -> dict[str, Any]:
    from childindex.reports.summary import night_summary, summary_path

    with stage_errors("reports", night, index_url=_index_url):
        settings = load_settings()
        summary = night_summary(settings, night)
    return {
        "night": summary["night"],
        "children": summary["children"],
        "files_in": summary["files_in"],
        "summary_path": str(summary_path(settings, night)),
    }


def quality_report(night: str) -> dict[str, Any]:
    """The night's HTML quality report, after its summary wrote the night's metrics."""
    from childindex.reports.build import build_report

    day = date.fromisoformat(night)
    with stage_errors("reports", day, index_url=_index_url):
        return {"night": night, "report_path": str(build_report(load_settings(), day))}


def retention(today: date, dry_run: bool) -> dict[str, Any]:
    from childindex.retention.run import run_retention

    with stage_errors("retention", today, index_url=_index_url):
        cert = run_retention(load_settings(), today, dry_run=dry_run, airflow=True)
    return {"rows_deleted": cert["rows_deleted"], "files_deleted": cert["files_deleted"], "dry_run": dry_run}
