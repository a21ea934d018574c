"""Files waiting for their completion marker (or their rename from ``.part``): never read,
never ignored in silence. Intake counts them per organisation with the oldest wait, calls
them stuck past CHILDINDEX_MARKER_WAIT_HOURS, and records both for the night; never a name
or a value."""

from __future__ import annotations

import os
import time
from datetime import date

import pytest
from typer.testing import CliRunner

from childindex.cli import app
from childindex.intake import discovery
from childindex.intake.discovery import Waiting, format_wait, scan_drop_folder
from childindex.intake.process import intake_organisation
from tests.helpers import ORG, child, drop, night_metrics, render

NIGHT = date(2026, 11, 24)
HEALTH, EDUCATION, SOCIAL = ORG["health"], ORG["education"], ORG["social_care"]
CANARY = "Zqwaitingcanary"
HOUR = 3600.0


def test_a_file_without_its_marker_is_counted_with_its_wait_and_never_read(settings) -> None:
    unmarked = drop(settings, "health", render("health", [child(1, given_name=CANARY)]), complete=False)
    before = unmarked.stat()
    folder = scan_drop_folder(settings, HEALTH, now=time.time() + 3 * HOUR)
    assert folder.complete == [] and folder.unfinished == [unmarked]
    assert (folder.waiting.files, folder.waiting.stuck, round(folder.waiting.oldest_hours)) == (1, 0, 3)
    assert folder.waiting.describe() == "1 file waiting for its completion marker (oldest 3 h)"
    # Past CHILDINDEX_MARKER_WAIT_HOURS (6 by default): stuck.
    late = scan_drop_folder(settings, HEALTH, now=time.time() + 30 * HOUR).waiting
    assert (late.files, late.stuck, round(late.oldest_hours)) == (1, 1, 30)
    assert late.describe() == (
        "1 file waiting for its completion marker (oldest 30 h); 1 waiting longer than 6 h "
        "(CHILDINDEX_MARKER_WAIT_HOURS): stuck, ask the sender to finish or resend the upload"
    )
    run = intake_organisation(settings, HEALTH, NIGHT, now=time.time() + 3 * HOUR)
    assert run.results == [] and run.waiting.files == 1
    after = unmarked.stat()
    assert (after.st_atime_ns, after.st_mtime_ns) == (before.st_atime_ns, before.st_mtime_ns), "never read"
    assert not list(settings.outbox(HEALTH).glob("*receipt*")), "no receipt: nothing was read"
    metrics = night_metrics(settings, NIGHT)
    assert metrics[f"intake_waiting:{HEALTH}:files"] == 1 and metrics[f"intake_waiting:{HEALTH}:stuck"] == 0
    assert round(metrics[f"intake_waiting:{HEALTH}:oldest_hours"]) == 3


def test_a_part_file_waits_for_its_rename_and_a_future_clock_counts_as_no_wait(settings) -> None:
    part = drop(settings, "education", render("education", [child(1, "education")]), complete=False)
    assert part.name.endswith(".part")
    # A modification time years ahead (a wrong clock, or a copy keeping its source's) changes
    # nothing: the wait runs from the status-change time, which no upload can set.
    os.utime(part, (time.time() + 400 * 24 * HOUR,) * 2)
    waiting = scan_drop_folder(settings, EDUCATION, now=time.time() + 2 * HOUR).waiting
    assert (waiting.files, waiting.stuck, round(waiting.oldest_hours)) == (1, 0, 2)
    assert waiting.describe() == "1 file waiting to be renamed from .part (the upload's last step) (oldest 2 h)"
    # A clock behind the file's time: no wait, never a negative one.
    assert scan_drop_folder(settings, EDUCATION, now=time.time() - 5 * HOUR).waiting.oldest_hours == 0


def test_complete_hidden_and_marker_files_are_not_waiting(settings) -> None:
    folder = settings.drop_folder(HEALTH)
    complete = drop(settings, "health", render("health", [child(1)]))
    (folder / ".upload.tmp").write_bytes(b"x")  # an upload tool's temporary file
    (folder / "gone.csv.done").touch()  # a marker whose file is gone
    (folder / "sub").mkdir()  # a folder without a marker: left alone
    scanned = scan_drop_folder(settings, HEALTH)
    assert scanned.complete == [complete]
    assert scanned.waiting == Waiting("marker", stuck_after_hours=6.0)
    assert scanned.waiting.describe() == "no file waiting for its completion"


@pytest.mark.parametrize(("hours", "said"), [(0.4, "24 min"), (3.2, "3 h"), (47, "47 h"), (80, "3 days")])
def test_a_wait_reads_in_minutes_hours_or_days(hours: float, said: str) -> None:
    assert format_wait(hours) == said


def test_intake_says_which_organisations_files_wait_and_which_are_stuck(settings, monkeypatch) -> None:
    waiting = drop(settings, "health", render("health", [child(1, given_name=CANARY)]), complete=False)
    drop(settings, "health", render("health", [child(2, given_name=CANARY)]), night=date(2026, 11, 23), complete=False)
    runner = CliRunner()
    monkeypatch.setenv("CHILDINDEX_MARKER_WAIT_HOURS", "24")
    monkeypatch.setattr(discovery, "_now", lambda: time.time() + 3 * HOUR)
    out = runner.invoke(app, ["intake", "--night", NIGHT.isoformat()], env={"COLUMNS": "400"})
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines == [
        "no complete file in the drop folders of 3 organisation(s)",
        f"{HEALTH}: 2 files waiting for their completion markers (oldest 3 h)",
    ], "nobody else's"
    assert CANARY not in out.output and waiting.name not in out.output, "counts and ages, never a name or value"

    # Two days on, the same files are stuck (past CHILDINDEX_MARKER_WAIT_HOURS, 24 here).
    monkeypatch.setattr(discovery, "_now", lambda: time.time() + 49 * HOUR)
    out = runner.invoke(app, ["intake", "--organisation", HEALTH, "--night", NIGHT.isoformat()])
    assert out.exit_code == 0, out.output
    assert out.output == "no complete file in the drop folders of 1 organisation(s)\n" + (
        f"{HEALTH}: 2 files waiting for their completion markers (oldest 2 days); 2 waiting longer than 24 h "
        "(CHILDINDEX_MARKER_WAIT_HOURS): stuck, ask the sender to finish or resend the upload\n"
    ), "one line, never wrapped"
    metrics = night_metrics(settings, NIGHT)
    assert (metrics[f"intake_waiting:{HEALTH}:files"], metrics[f"intake_waiting:{HEALTH}:stuck"]) == (2, 2)


def test_an_empty_drop_folder_prints_nothing_and_records_no_wait(settings) -> None:
    out = CliRunner().invoke(app, ["intake", "--organisation", EDUCATION, "--night", NIGHT.isoformat()])
    assert out.exit_code == 0 and out.output == "no complete file in the drop folders of 1 organisation(s)\n"
    metrics = night_metrics(settings, NIGHT)
    assert {k: v for k, v in metrics.items() if k.startswith("intake_waiting:")} == {
        f"intake_waiting:{EDUCATION}:files": 0,
        f"intake_waiting:{EDUCATION}:stuck": 0,
        f"intake_waiting:{EDUCATION}:oldest_hours": 0,
    }
