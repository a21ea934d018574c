"""Building a night's quality report and the index page of every night's."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from childindex.reports.data import load_night, night_statuses
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
    nights = sorted({n for p in reports if (n := _night_of(p.stem)) is not None}, reverse=True)
    statuses = night_statuses(settings, nights)
    rows = [{"night": n.isoformat(), **statuses[n]} for n in nights]
    write_inside(settings.reports_dir, out / "index.html", render_index(rows))
    return path


def _night_of(stem: str) -> date | None:
    """The night a report's name gives; None for a name no report has (never listed)."""
    try:
        return date.fromisoformat(stem.removeprefix("night-"))
    except ValueError:
        return None
