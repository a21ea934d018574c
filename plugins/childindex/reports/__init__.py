"""Quality reports: one self-contained HTML file per night, and an index of all nights.

Built from the metrics history (``night_metric``: counts only) and the file ledger, never
from rows: a report names sectors, organisations, files, rules and counts. Plots are drawn with
matplotlib and embedded as PNG data, so a report opens offline with no script or font
from anywhere. ``REPORTS_DIR/quality/night-YYYY-MM-DD.html`` and ``index.html``.
"""

from childindex.reports.build import build_report, report_dir, report_name, report_path
from childindex.reports.data import NightData, load_night
from childindex.reports.summary import night_summary, summary_path

__all__ = [
    "NightData",
    "build_report",
    "load_night",
    "night_summary",
    "report_dir",
    "report_name",
    "report_path",
    "summary_path",
]
