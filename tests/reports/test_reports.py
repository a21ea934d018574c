"""Quality reports: a multi-night report from the metrics history, self-contained, every
plot there, every file linked to its receipt, and no child's data anywhere in it."""

from __future__ import annotations

import re
from datetime import date, timedelta

from childindex.intake.process import run_intake
from childindex.linkage import link_pending
from childindex.reports import build_report, night_summary
from childindex.retention import run_retention
from tests.helpers import ORG, child, drop, nhs, render

NIGHT = date(2026, 11, 24)
CANARY = {"given_name": "Zqreportgiven", "family_name": "Zqreportfamily", "postcode": "ZZ9 9ZZ"}


def _nights(settings, n: int = 4) -> date:
    for k in range(n):
        night = NIGHT + timedelta(days=k)
        health = [child(100 * k + i) for i in range(1, 8)] + [child(100 * k + 9, service="Q")]
        if k == 1:
            health.append(child(777, nhs_number=nhs(777), **CANARY))
        drop(settings, "health", render("health", health), night=night)
        drop(settings, "social_care", render("social_care", [child(100 * k + 1, "social_care", upn=None)]), night=night)
        if k == n - 1:  # the last night: education's file is unusable
            drop(settings, "education", render("education", [child(5, "education", service="Q")]), night=night)
        for sector in ("health", "social_care", "education"):
            run_intake(settings, ORG[sector], night)
        link_pending(settings, night)
        night_summary(settings, night)
        run_retention(settings, night + timedelta(days=1))
    return NIGHT + timedelta(days=n - 1)


def test_a_multi_night_report_is_complete_and_self_contained(settings) -> None:
    last = _nights(settings)
    path = build_report(settings, last)
    html = path.read_text(encoding="utf-8")
    # Every plot, as embedded PNG data.
    plots = re.findall(
        r'<figure class="plot" id="plot-([a-z_]+)"><img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html
    )
    rejections = {f"rejections_{s}" for s in ("education", "health", "social_care")}
    assert {p for p, _ in plots} == {
        "rows_read",
        *rejections,
        "probabilities",
        "review_queue",
        "cross_authority",
        "notices",
        "retention",
    }
    assert all(len(data) > 2000 for _, data in plots)
    # Offline: nothing fetched from anywhere.
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<script" not in html
    # The headline says what needs attention.
    assert "Needs attention" in html and "education: 1 file(s) quarantined" in html
    # The organisations that need a look, by code, with why.
    table = html[html.index('id="organisations"') : html.index("</table>", html.index('id="organisations"'))]
    assert f"<td>{ORG['education']}</td>" in table and "1 file(s) quarantined" in table
    assert f"<td>{ORG['social_care']}</td>" not in table
    # The files that need a look (a quarantined one, one with a rejected row), each linked to
    # its receipt, relative to the report; the clean one is counted.
    links = re.findall(r'<a class="receipt" href="([^"]+receipt\.json)">receipt</a>', html)
    assert len(links) == 2 and all((path.parent / link).resolve().exists() for link in links)
    assert "1 other file(s) were accepted with every row." in html
    index = (path.parent / "index.html").read_text()
    assert f'href="night-{last}.html"' in index


def test_no_childs_data_reaches_a_report(settings) -> None:
    last = _nights(settings)
    for k in range(4):
        build_report(settings, NIGHT + timedelta(days=k))
    needles = [*CANARY.values(), nhs(777), "H0000777"]
    for page in (settings.reports_dir / "quality").glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not [n for n in needles if n.lower() in text.lower()], page.name
    assert (settings.reports_dir / "quality" / f"night-{last}.html").exists()


def test_a_quiet_night_reports_success(settings) -> None:
    drop(settings, "health", render("health", [child(i) for i in range(1, 6)]))
    drop(settings, "social_care", render("social_care", [child(1, "social_care", upn=None)]))
    drop(settings, "education", render("education", [child(2, "education")]))
    for sector in ("health", "social_care", "education"):
        run_intake(settings, ORG[sector], NIGHT)
    link_pending(settings, NIGHT)
    night_summary(settings, NIGHT)
    html = build_report(settings, NIGHT).read_text()
    assert 'class="ok" id="headline"' in html and "Needs attention" not in html


def test_the_report_command_needs_no_key(settings, monkeypatch) -> None:
    from typer.testing import CliRunner

    from childindex.cli import app

    _nights(settings, n=1)
    monkeypatch.delenv("CHILDINDEX_PSEUDONYMISATION_KEY")
    result = CliRunner().invoke(app, ["report", "--night", NIGHT.isoformat()], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert f"night-{NIGHT}.html" in result.output
