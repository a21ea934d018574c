"""The quality report as a person sees it: a multi-night report opened in headless Chromium
(Debian's package; scripts/test.sh installs it where it can). Every plot renders, the page
logs no error, and a screenshot is kept in test-artifacts/."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from childindex.reports import build_report
from tests.reports.test_reports import PLOTS as REPORT_PLOTS
from tests.reports.test_reports import _nights

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Every plot of a night's report (reports/plots.py), by its figure's id.
PLOTS = {f"plot-{key}" for key in REPORT_PLOTS}
# The sections analysts read (issue 19): each must be on the page and visible.
SECTIONS = ("#definition", "#organisations-over-time", "#organisations-tonight", "#model", "#model-name")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# As root in a container, without a GPU or network: no sandbox, no background calls.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture()
def chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI: scripts/test.sh installs Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium; scripts/test.sh does it as root)")
    return CHROMIUM


def test_the_report_renders_in_a_real_browser(settings, chromium) -> None:
    from playwright.sync_api import sync_playwright

    last = _nights(settings)
    for k in range(3, -1, -1):  # every night's report, the last one last: the index lists all four
        path = build_report(settings, last - timedelta(days=k))
    problems: list[str] = []
    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.on("request", lambda r: requested.append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "figure.plot img", "imgs => imgs.map(i => [i.closest('figure').id, i.complete, i.naturalWidth])"
            )
            headline = page.inner_text("#headline")
            receipts = page.eval_on_selector_all("#files a", "links => links.map(a => a.href)")
            visible = {s: page.is_visible(s) for s in SECTIONS}
            model = page.inner_text("#model-name")
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "quality-report.png"
            page.screenshot(path=str(shot), full_page=True)
            page.goto((path.parent / "index.html").as_uri(), wait_until="load")
            statuses = page.eval_on_selector_all("#nights td.status", "cells => cells.map(c => c.innerText)")
            # A receipt opens as text a person can read.
            page.goto(receipts[0], wait_until="load")
            receipt = page.inner_text("body")
        finally:
            browser.close()
    assert problems == []
    # Nothing from anywhere but the page's own files: its images are data, its links files.
    assert [u for u in requested if not u.startswith(("file://", "data:"))] == []
    assert {u.split("/")[-1] for u in requested if u.startswith("file://")} >= {path.name, "index.html"}
    assert {figure for figure, _, _ in images} == PLOTS and len(images) == len(PLOTS), images
    assert all(done and width > 300 for _, done, width in images), images
    assert visible == dict.fromkeys(SECTIONS, True)
    assert "default_model.json" in model
    assert "Needs attention" in headline and "education: 1 file(s) quarantined (1 row(s) not loaded)" in headline
    assert statuses == ["1 file(s) quarantined"] + ["1 organisation(s) sent nothing"] * 3
    # The files that need a look (a quarantined one, one with a rejected row), each to its
    # receipt's text form.
    assert len(receipts) == 2 and all(r.startswith("file://") and r.endswith(".receipt.txt") for r in receipts)
    assert receipt.startswith("childindex receipt for "), receipt[:200]
    assert not receipt.lstrip().startswith("{"), "the text form, not the JSON"
    assert shot.stat().st_size > 50_000
