"""The night summary and the report tell an organisation whose file waits for its completion
marker (still arriving, or stuck past CHILDINDEX_MARKER_WAIT_HOURS) from one that sent
nothing: from what intake recorded for the night, counts and ages only."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest

from childindex.intake.process import intake_organisation
from childindex.reports import build_report, night_summary
from childindex.reports.data import load_night
from childindex.reports.summary import delivery, summary_path
from tests.helpers import ORG, child, drop, night_metrics, render

NIGHT = date(2026, 11, 24)
HEALTH, EDUCATION, SOCIAL = ORG["health"], ORG["education"], ORG["social_care"]
CANARY = "Zqwaitcanary"
HOUR = 3600.0


def test_waiting_stuck_and_silent_organisations_are_told_apart(settings) -> None:
    # Health: a file without its marker for 3 hours (still arriving); its name is the
    # sender's own choice, and neither it nor the content may show anywhere.
    health_file = drop(
        settings, "health", render("health", [child(1, given_name=CANARY)]), name=f"{CANARY}.csv", complete=False
    )
    # Social care: a file without its marker for 30 hours (stuck: over 6 h). Education: nothing.
    drop(settings, "social_care", render("social_care", [child(2, "social_care", given_name=CANARY)]), complete=False)
    intake_organisation(settings, HEALTH, NIGHT, now=time.time() + 3 * HOUR)
    intake_organisation(settings, EDUCATION, NIGHT, now=time.time() + 3 * HOUR)
    intake_organisation(settings, SOCIAL, NIGHT, now=time.time() + 30 * HOUR)

    summary = night_summary(settings, NIGHT)
    orgs = summary["organisations"]
    assert orgs[HEALTH]["delivery"] == "waiting: 1 file, 3 h"
    assert orgs[EDUCATION]["delivery"] == "sent no file"
    assert orgs[SOCIAL]["delivery"] == "stuck: 1 file, 30 h"
    assert (orgs[HEALTH]["files_waiting"], orgs[HEALTH]["files_stuck"], round(orgs[HEALTH]["waiting_hours"])) == (
        1,
        0,
        3,
    )
    assert (orgs[SOCIAL]["files_waiting"], orgs[SOCIAL]["files_stuck"]) == (1, 1)
    assert summary["organisations_silent"] == [EDUCATION], "a waiting or stuck file is not 'sent no file'"
    assert summary["organisations_waiting"] == [HEALTH] and summary["organisations_stuck"] == [SOCIAL]
    assert summary["organisations_sending"] == 0
    sectors = summary["sectors"]
    assert [sectors[s]["organisations_silent"] for s in ("health", "education", "social_care")] == [0, 1, 0]
    assert (sectors["health"]["organisations_waiting"], sectors["social_care"]["organisations_stuck"]) == (1, 1)
    assert round(sectors["social_care"]["waiting_hours"]) == 30

    metrics = night_metrics(settings, NIGHT)
    assert metrics[f"org:{HEALTH}:files_waiting"] == 1 and metrics[f"org:{SOCIAL}:files_stuck"] == 1
    assert metrics["health:organisations_silent"] == 0 and metrics["education:organisations_silent"] == 1
    assert metrics["social_care:organisations_stuck"] == 1 and metrics["health:organisations_waiting"] == 1

    data = load_night(settings, NIGHT)
    reasons = {o["code"]: o["reasons"] for o in data.organisations}
    assert reasons == {
        HEALTH: ["waiting: 1 file, 3 h (still arriving: not yet complete)"],
        EDUCATION: ["sent no file"],
        SOCIAL: [
            "stuck: 1 file, 30 h (waiting for completion longer than CHILDINDEX_MARKER_WAIT_HOURS: "
            "no completion marker, or still .part)"
        ],
    }
    assert "social_care: 1 organisation(s) with a file stuck waiting for completion (oldest 30 h)" in data.attention
    assert "health: 1 organisation(s) with no complete file yet, one still arriving" in data.attention
    assert "education: 1 organisation(s) sent no file" in data.attention
    assert not any(a.startswith(("health: 1 organisation(s) sent", "social_care: 1 organisation(s) sent")) for a in
                   data.attention)  # fmt: skip

    from typer.testing import CliRunner

    from childindex.cli import app

    shown = CliRunner().invoke(app, ["summary", "--night", NIGHT.isoformat()])
    assert shown.exit_code == 0, shown.output
    said = shown.output.splitlines()
    assert [f"  {SOCIAL}: stuck: 1 file, 30 h", f"  {HEALTH}: waiting: 1 file, 3 h"] == [
        line for line in said if line.startswith("  ") and ": " in line and line.split()[0].rstrip(":") in ORG.values()
    ]
    assert f"sent no file: {EDUCATION}" in said and CANARY not in shown.output

    html = build_report(settings, NIGHT).read_text(encoding="utf-8")
    assert "stuck: 1 file, 30 h" in html and "waiting: 1 file, 3 h" in html
    written = summary_path(settings, NIGHT).read_text(encoding="utf-8")
    for text_ in (html, written, json.dumps(sorted(metrics))):
        assert CANARY.lower() not in text_.lower(), "counts and ages only: never a name or a value"

    # The sender withdraws the file: a rerun of the night replaces what was recorded.
    health_file.unlink()
    intake_organisation(settings, HEALTH, NIGHT)
    again = night_summary(settings, NIGHT)["organisations"][HEALTH]
    assert (again["delivery"], again["files_waiting"], again["waiting_hours"]) == ("sent no file", 0, 0)
    metrics = night_metrics(settings, NIGHT)
    assert metrics[f"org:{HEALTH}:files_waiting"] == 0 and metrics["health:organisations_silent"] == 1


@pytest.mark.parametrize(
    ("files", "waiting", "stuck", "hours", "said"),
    [
        (0, 0, 0, 0.0, "sent no file"),
        (2, 0, 0, 0.0, "sent 2 files"),
        (1, 1, 0, 2.0, "sent 1 file"),  # tomorrow's upload under way: nothing to say
        (0, 2, 0, 0.5, "waiting: 2 files, 30 min"),
        (0, 1, 1, 30.0, "stuck: 1 file, 30 h"),
        (1, 3, 1, 75.0, "sent 1 file; stuck: 3 files, 3 days"),
    ],
)
def test_what_an_organisation_delivered_in_words(files: int, waiting: int, stuck: int, hours: float, said: str) -> None:
    assert delivery(files, waiting, stuck, hours) == said
