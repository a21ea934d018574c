"""The quality report as a person sees it: a multi-night report opened in headless Chromium
(Debian's package; scripts/test.sh installs it where it can). Every plot renders, the page
logs no error, and a screenshot is kept in test-artifacts/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from childindex.reports import build_report
from tests.reports.test_reports import _nights

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Every plot of a night's report (reports/plots.py), by its figure's id.
PLOTS = {
    f"plot-{key}"
    for key in (
        "rows_read",
        "rejections_education",
        "rejections_health",
        "rejections_social_care",
        "probabilities",
        "review_queue",
        "cross_authority",
        "notices",
        "retention",
    )
}
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

    path = build_report(settings, _nights(settings))
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.goto(path.as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "figure.plot img", "imgs => imgs.map(i => [i.closest('figure').id, i.complete, i.naturalWidth])"
            )
            headline = page.inner_text("#headline")
            receipts = page.eval_on_selector_all("#files a", "links => links.map(a => a.href)")
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "quality-report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert {figure for figure, _, _ in images} == PLOTS and len(images) == len(PLOTS), images
    assert all(done and width > 300 for _, done, width in images), images
    assert "Needs attention" in headline and "education" in headline
    # The files that need a look (a quarantined one, one with a rejected row), each to its receipt.
    assert len(receipts) == 2 and all(r.startswith("file://") and r.endswith(".receipt.json") for r in receipts)
    assert shot.stat().st_size > 50_000
