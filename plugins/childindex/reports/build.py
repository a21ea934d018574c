"""Building a night's quality report and the index page of every night's."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from childindex.reports.data import load_night
from childindex.safe_paths import write_inside
from childindex.settings import Settings


def report_dir(settings: Settings) -> Path:
    return settings.reports_dir / "quality"


def report_name(night: date) -> str:
    """A night's report's file name (also its name in Airflow's UI, childindex.orchestration.webui)."""
    return f"night-{night.isoformat()}.html"


def report_path(settings: Settings, night: date) -> Path:
    return report_dir(settings) / report_name(night)


def build_report(settings: Settings, night: date, days: int = 30) -> Path:
    """Write the night's report (and refresh the index page); returns the report's path.

    Raises:
        UnsafePath: ``quality/`` or a page's name in it is a link (nothing is written through one).
    """
    from childindex.reports.plots import night_figures
    from childindex.reports.render import render_index, render_night

    data = load_night(settings, night, days)
    figures = night_figures(data)
    path = report_path(settings, night)
    out = path.parent
    write_inside(settings.reports_dir, path, render_night(data, figures, out))
    # A link under a report's name is never served (childindex.orchestration.webui): not listed.
    reports = (p for p in out.glob("night-*.html") if p.is_file() and not p.is_symlink())
    nights = sorted((p.stem.removeprefix("night-") for p in reports), reverse=True)
    write_inside(settings.reports_dir, out / "index.html", render_index(nights))
    return path
