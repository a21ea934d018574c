"""Which organisations a night's report lists as needing attention, from the metrics history:
one table whatever the number of organisations, each with its reasons (counts only)."""

from __future__ import annotations

from datetime import date, timedelta

from childindex.index.store import put_metrics
from childindex.reports.data import load_night
from tests.helpers import ORG

NIGHT = date(2026, 11, 30)


def _org_metrics(code: str, **values: float) -> dict[str, float]:
    base = {"files": 1, "rows_read": 200, "rows_rejected": 0, "rows_staged": 200,
            "rows_with_nhs_number": 190, "rows_with_upn": 0, "files_quarantined": 0, "files_late": 0}  # fmt: skip
    return {f"org:{code}:{k}": float(v) for k, v in {**base, **values}.items()}


def _night(settings, night: date, **per_org: dict[str, float]) -> None:
    metrics: dict[str, float] = {"linkage_files": 1.0}
    for code in ORG.values():
        metrics.update(_org_metrics(code, **per_org.get(code, {})))
    put_metrics(settings.index_url, night, metrics)


def test_a_quiet_history_needs_nothing(settings) -> None:
    for k in range(8):
        _night(settings, NIGHT - timedelta(days=k))
    data = load_night(settings, NIGHT)
    assert data.organisations == [] and data.succeeded


def test_each_kind_of_trouble_is_named_with_its_organisation(settings) -> None:
    health, education, social = ORG["health"], ORG["education"], ORG["social_care"]
    for k in range(1, 8):
        _night(settings, NIGHT - timedelta(days=k), **{education: {"rows_rejected": 2}})
    _night(
        settings,
        NIGHT,
        **{
            # Health: its NHS number completeness fell from 95% to 60%, and a file came late.
            health: {"rows_with_nhs_number": 120, "files_late": 1},
            # Education: rejections rose from 1% to 15%.
            education: {"rows_rejected": 30},
            # Social care: sent nothing.
            social: {"files": 0, "rows_read": 0, "rows_staged": 0, "rows_with_nhs_number": 0},
        },
    )
    data = load_night(settings, NIGHT)
    reasons = {o["code"]: o["reasons"] for o in data.organisations}
    assert reasons[health] == [
        "1 file(s) for an earlier night arrived late",
        "NHS numbers on 60% of rows (recent median 95%)",
    ]
    assert reasons[education] == ["rejection rate rose to 15.0% (recent median 1.0%)"]
    assert reasons[social] == ["sent no file"]
    # Most reasons first, named as the registry names them.
    assert data.organisations[0]["code"] == health and data.organisations[0]["name"]
    assert any("3 organisation(s) need attention" in a for a in data.attention)


def test_a_small_or_steady_organisation_is_not_flagged(settings) -> None:
    education = ORG["education"]
    for k in range(1, 8):
        _night(settings, NIGHT - timedelta(days=k), **{education: {"rows_rejected": 20}})  # 10% every night
    # A tiny night's rates say nothing; a steady 10% rejection rate is not a rise.
    _night(settings, NIGHT, **{education: {"rows_rejected": 22}, ORG["health"]: {"rows_read": 5, "rows_rejected": 3,
                                                                                 "rows_staged": 2}})  # fmt: skip
    assert load_night(settings, NIGHT).organisations == []


def test_a_file_taken_by_a_later_nights_run_counts_as_late(settings) -> None:
    from childindex.intake.process import run_intake
    from childindex.reports import night_summary
    from tests.helpers import child, drop, render

    yesterday = NIGHT - timedelta(days=1)
    drop(settings, "health", render("health", [child(i) for i in range(1, 4)]), night=yesterday)
    drop(settings, "health", render("health", [child(i) for i in range(4, 7)]), night=NIGHT)
    run_intake(settings, ORG["health"], NIGHT)  # tonight's run takes both files
    summary = night_summary(settings, NIGHT)
    assert summary["organisations"][ORG["health"]]["files_late"] == 1
    reasons = {o["code"]: o["reasons"] for o in load_night(settings, NIGHT).organisations}
    assert "1 file(s) for an earlier night arrived late" in reasons[ORG["health"]]


def test_hundreds_of_organisations_make_charts_of_the_worst_and_one_table(settings, monkeypatch, tmp_path) -> None:
    """300 organisations over 4 nights (metrics only): each per-organisation chart draws the
    12 worst by its measure, worst first, and the table lists 100 and counts the rest."""
    import re

    from childindex.reports import build_report
    from tests.registries import org, use_registry

    codes = {"health": "RA{:03d}", "education": "{}", "social_care": "E06000{:03d}"}  # ODS, LA number, GSS
    contracts = {"health": "health_chis", "education": "education_mis", "social_care": "social_care_cms"}
    orgs = [org(codes[s].format(k + (100 if s == "education" else 0)), s, contracts[s])
            for s in codes for k in range(100)]  # fmt: skip
    settings = use_registry(monkeypatch, tmp_path / "registry", orgs)
    from childindex.index.db import migrate

    migrate(settings.index_url)
    for k in range(4):
        metrics = {"linkage_files": 1.0, "rows_read": 1.0, "linkage_model_version": 0.0}
        for o in orgs:
            code, last = o["code"], k == 3
            read = 5000.0 if (last and code == "RA007") else 200.0  # RA007: 25 times its usual rows
            values = {"files": 1, "rows_read": read, "rows_staged": read, "row_band_low": 0, "row_band_high": 600,
                      "rows_with_nhs_number": read * (0.5 if last and code == "E06000042" else 0.99),
                      "rows_with_upn": read * (0.4 if last and code == "113" else 0.9),
                      "records_tonight": 100, "records_linked_to_another": 20 if last and code == "RA099" else 80,
                      "records_new_child": 10}  # fmt: skip
            metrics.update({f"org:{code}:{n}": float(v) for n, v in values.items()})
        put_metrics(settings.index_url, NIGHT - timedelta(days=3 - k), metrics)
    html = build_report(settings, NIGHT).read_text(encoding="utf-8")

    def drawn(key: str) -> list[str]:
        alt = re.search(rf'id="plot-{key}"><img src="data:image/png;base64,[^"]+" alt="([^"]+)"', html)
        assert alt is not None, key
        return alt.group(1).rsplit("Drawn, worst first: ", 1)[1].split(", ")

    for key, first in (("volume", "RA007"), ("nhs_completeness", "E06000042"), ("upn_completeness", "113"),
                       ("links_by_organisation", "RA099")):  # fmt: skip
        codes = drawn(key)
        assert len(codes) == 12 and codes[0] == first, (key, codes)
    assert all(c[0] in "RE" for c in drawn("nhs_completeness")) and all(c.isdigit() for c in drawn("upn_completeness"))
    start = html.index('id="organisations-tonight"')
    table = html[start : html.index("</table>", start)]
    assert table.count("<tr>") == 1 + 100 and "and 200 more (the night summary lists every organisation)." in html
