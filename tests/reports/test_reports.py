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
STATUS = r'<a href="night-([0-9-]+)\.html">.*?<td class="status">([^<]*)</td>'  # a night on the index page
# Every plot of a night's report, in the page's order (reports/plots.py, night.html.j2).
PLOTS = [
    "rows_read",
    *(f"rejections_{s}" for s in ("education", "health", "social_care")),
    "volume",
    "nhs_completeness",
    "upn_completeness",
    "links_by_organisation",
    "probabilities",
    "cluster_sizes",
    "review_queue",
    "cross_authority",
    "match_weights",
    "m_u",
    "notices",
    "retention",
]
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
    assert [p for p, _ in plots] == PLOTS
    assert all(len(data) > 2000 for _, data in plots)
    # Offline: nothing fetched from anywhere.
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<script" not in html
    # The headline says what needs attention.
    assert "Needs attention" in html and "education: 1 file(s) quarantined (1 row(s) not loaded)" in html
    # The organisations that need a look, by code, with why.
    table = html[html.index('id="organisations"') : html.index("</table>", html.index('id="organisations"'))]
    assert f"<td>{ORG['education']}</td>" in table and "1 file(s) quarantined" in table
    assert f"<td>{ORG['social_care']}</td>" not in table
    # The files that need a look (a quarantined one, one with a rejected row), each linked to
    # its receipt's text form, relative to the report; the clean one is counted.
    links = re.findall(r'<a class="receipt" href="([^"]+receipt\.txt)">receipt</a>', html)
    assert len(links) == 2 and all((path.parent / link).resolve().exists() for link in links)
    assert "1 other file(s) were accepted with every row." in html
    # The model the nights used (none trained here: the bundled one), drawn from its file.
    assert "The night used <code>default_model.json</code> (the bundled model" in html
    # The index: each night with its status as recorded.
    index = (path.parent / "index.html").read_text()
    assert f'href="night-{last}.html"' in index
    statuses = re.findall(STATUS, index, re.S)
    assert statuses == [(str(last), "1 file(s) quarantined")], "only the report built so far is listed"
    for k in range(3):
        build_report(settings, NIGHT + timedelta(days=k))
    index = (path.parent / "index.html").read_text()
    statuses = re.findall(STATUS, index, re.S)
    silent = "1 organisation(s) sent nothing"  # education sends only on the last night
    assert statuses == [(str(last), "1 file(s) quarantined")] + [
        (str(NIGHT + timedelta(days=k)), silent) for k in (2, 1, 0)
    ]


def test_rejected_rows_mean_one_thing_in_the_summary_the_headline_the_tables_and_the_charts(settings) -> None:
    """The last night has a quarantined file (education: its one row broke a rule) and a
    loaded file with a rejected row (health: 1 of 8). A quarantined file's row is "not
    loaded (file quarantined)", never "rejected", in every place the page counts rows."""
    last = _nights(settings)
    summary = night_summary(settings, last)  # a rerun: the same figures
    education, health = summary["sectors"]["education"], summary["sectors"]["health"]
    assert [education[k] for k in ("rows_read", "rows_accepted", "rows_rejected", "rows_quarantined")] == [1, 0, 0, 1]
    assert [health[k] for k in ("rows_read", "rows_accepted", "rows_rejected", "rows_quarantined")] == [8, 7, 1, 0]
    assert education["rejected_by_rule"] == {} and education["quarantined_rows_by_rule"] == {"Provision:code_set": 1}
    assert health["rejected_by_rule"] == {"ServiceCode:code_set": 1}
    assert (summary["rows_read"], summary["rows_rejected"], summary["rows_quarantined"]) == (10, 1, 1)
    assert summary["rows_read"] == summary["rows_accepted"] + summary["rows_rejected"] + summary["rows_quarantined"]
    html = build_report(settings, last).read_text(encoding="utf-8")
    # Headline: the quarantined file with its rows not loaded; health's rate over its loaded rows.
    headline = html[html.index('id="headline"') : html.index("</div>", html.index('id="headline"'))]
    assert "education: 1 file(s) quarantined (1 row(s) not loaded)" in headline
    assert "health: 12.5% of rows in files that loaded rejected by row rules (over 5%)" in headline
    assert "education: " not in headline.replace("education: 1 file(s) quarantined", ""), "no rejection rate"

    def row(table_id: str, first_cell: str) -> list[str]:
        table = html[html.index(f'id="{table_id}"') : html.index("</table>", html.index(f'id="{table_id}"'))]
        rows = [re.findall(r"<td[^>]*>([^<]*)", r) for r in table.split("<tr")]
        return next(r for r in rows if r and r[0].strip() == first_cell)

    # Sectors: rows read, loaded, rejected, not loaded, rejection rate (after the columns of
    # organisations that sent nothing, have a file still arriving or stuck, and files).
    assert row("sectors", "education")[6:11] == ["1", "0", "0", "1", ""]
    assert row("sectors", "health")[6:11] == ["8", "7", "1", "0", "12.5%"]
    # Files: the quarantined file's row is not loaded, not rejected.
    assert row("files", ORG["education"])[3:7] == ["1", "0", "0", "1"]
    assert row("files", ORG["health"])[3:7] == ["8", "7", "1", "0"]
    # Per organisation: the same rate, and the row not loaded.
    assert row("organisations-tonight", ORG["health"])[5:7] == ["0", "12.5%"]
    assert row("organisations-tonight", ORG["education"])[5:7] == ["1", ""]
    # The charts draw the same figures (their text says tonight's, as drawn).
    assert "health: tonight 12.5% of rows in files that loaded rejected; 0 row(s) not loaded" in html
    assert "education: tonight no file loaded; 1 row(s) not loaded (file quarantined)" in html
    # The definition is on the page.
    assert "Rows rejected: refused by a row rule in a file that loaded." in html


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
