"""An upload that never completes is never read, yet holds a child's data: it goes after
CHILDINDEX_RETENTION__DROP_UNFINISHED_DAYS, dated by when it last changed (which no upload
can set), with upload tools' hidden temporary files and markers left without their file.
Complete files, folders and unregistered organisations' folders are never touched."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

from childindex.retention import run_retention
from tests.helpers import ORG, child, drop, render

NIGHT = date(2026, 11, 24)
DAY = 24 * 3600


def test_uploads_that_never_completed_go_after_their_period_and_nothing_else(settings) -> None:
    folder = settings.drop_folder(ORG["health"])
    complete = drop(settings, "health", render("health", [child(1)]))
    unmarked = drop(settings, "health", render("health", [child(2)]), night=NIGHT - timedelta(days=1), complete=False)
    part = drop(settings, "education", render("education", [child(3, "education")]), complete=False)
    hidden = folder / ".health_2026-11-22.csv.Zq81x"  # an upload tool's temporary copy
    hidden.write_bytes(render("health", [child(4)]))
    orphan = folder / "health_2026-11-20.csv.done"  # a marker whose file is gone
    orphan.touch()
    inner = folder / "sub" / "x.csv"  # a folder: intake's to refuse, never retention's
    inner.parent.mkdir()
    inner.write_bytes(b"x")
    stranger = settings.drop_root / "RZZ" / "health_2026-11-24.csv"  # no registered organisation's
    stranger.parent.mkdir()
    stranger.write_bytes(b"x")
    # Modification times lie both ways: a copy keeps its source's (years back), a wrong clock
    # puts one years ahead. Neither moves a file's date for this rule.
    os.utime(part, (datetime(2000, 1, 1, tzinfo=UTC).timestamp(),) * 2)
    os.utime(unmarked, (datetime.now(UTC).timestamp() + 3000 * DAY,) * 2)
    never_completed = [unmarked, part, hidden, orphan]
    kept = [complete, complete.with_name(complete.name + ".done"), inner, stranger]
    today = datetime.now(UTC).date()  # the files changed today: their status-change time

    def deleted(cert: dict) -> int:
        return next(r["files_deleted"] for r in cert["rules"] if r["rule"] == "drop_unfinished")

    assert deleted(run_retention(settings, today + timedelta(days=13))) == 0, "14 days: not yet"
    assert all(p.exists() for p in never_completed + kept)
    assert deleted(run_retention(settings, today + timedelta(days=15), dry_run=True)) == 4
    assert all(p.exists() for p in never_completed), "a dry run deletes nothing"
    assert deleted(run_retention(settings, today + timedelta(days=15))) == 4
    assert [p for p in never_completed if os.path.lexists(p)] == []
    assert all(p.exists() for p in kept)
