"""The report's plots, drawn with matplotlib and returned as PNG data (no file, no script)."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from childindex.reports.data import NightData
from childindex.whitelist import SECTORS

if TYPE_CHECKING:  # matplotlib is imported only when a report is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as MplFigure

NAN = float("nan")  # a night without the metric: a gap in the line
COLOURS = {"education": "#1b9e77", "health": "#7570b3", "social_care": "#d95f02"}


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    alt: str  # what the plot shows, for screen readers and a failed image
    png_base64: str


def night_figures(data: NightData) -> list[Figure]:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    return [
        _rows_read(data),
        *(_rejections(data, sector) for sector in SECTORS),
        _probabilities(data),
        _review_queue(data),
        _cross_authority(data),
        _notices(data),
        _retention(data),
    ]


def _png(fig: MplFigure, key: str, title: str, alt: str) -> Figure:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=96)
    plt.close(fig)
    return Figure(key, title, alt, base64.b64encode(buffer.getvalue()).decode("ascii"))


def _axes(width: float = 7.5, height: float = 2.8) -> tuple[MplFigure, Axes]:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _dates(data: NightData) -> list[str]:
    return [n.strftime("%d %b") for n in data.nights]


def _rows_read(data: NightData) -> Figure:
    fig, ax = _axes()
    x = range(len(data.nights))
    for sector in SECTORS:
        ax.plot(x, data.series(f"{sector}:rows_read", NAN), marker="o", markersize=3, label=sector,
                color=COLOURS[sector])  # fmt: skip
    _date_ticks(ax, data)
    ax.set_ylabel("rows read")
    ax.legend(frameon=False, fontsize=8)
    return _png(fig, "rows_read", "Rows read per sector", f"rows read per sector over the {len(data.nights)} nights")


def _rejections(data: NightData, sector: str) -> Figure:
    from matplotlib.ticker import PercentFormatter

    rules = sorted({name.rsplit(":", 1)[1] for m in data.metrics.values() for name in m
                    if name.startswith(f"{sector}:rejected:")})  # fmt: skip
    fig, ax = _axes(height=2.4)
    x = list(range(len(data.nights)))
    bottom = [0.0] * len(x)
    read = data.series(f"{sector}:rows_read", 0.0)
    for rule in rules:
        share = [r / n if n else 0.0 for r, n in zip(data.series(f"{sector}:rejected:{rule}", 0.0), read, strict=True)]
        ax.bar(x, share, bottom=bottom, label=rule, width=0.8)
        bottom = [b + s for b, s in zip(bottom, share, strict=True)]
    if not rules:
        ax.text(0.5, 0.5, "no row rejected in this window", ha="center", va="center", transform=ax.transAxes)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    _date_ticks(ax, data)
    ax.set_ylabel("rows rejected")
    if rules:
        ax.legend(frameon=False, fontsize=7, ncol=min(len(rules), 4))
    return _png(fig, f"rejections_{sector}", f"{sector}: rejection rate by rule",
                f"share of the {sector} sector's rows rejected each night, by rule")  # fmt: skip


def _probabilities(data: NightData) -> Figure:
    fig, ax = _axes()
    bins = [b / 20 for b in range(10, 20)]
    counts = [data.value(f"linkage_p_bin_{b:02d}") for b in range(10, 20)]
    ax.bar(bins, counts, width=0.045, align="edge", color="#4c72b0")
    ax.set_xlabel("match probability of scored pairs")
    ax.set_ylabel("pairs")
    ax.set_xlim(0.5, 1.0)
    return _png(fig, "probabilities", "Linkage: match probabilities tonight",
                "histogram of tonight's scored pairs by match probability, 0.5 to 1")  # fmt: skip


def _review_queue(data: NightData) -> Figure:
    fig, ax = _axes(height=2.4)
    ax.plot(range(len(data.nights)), data.series("review_queue_open", NAN), marker="o", markersize=3, color="#c44e52")
    _date_ticks(ax, data)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("open review items")
    return _png(fig, "review_queue", "Linkage: review queue", "open clerical review items each night")


def _cross_authority(data: NightData) -> Figure:
    fig, ax = _axes(height=2.4)
    ax.plot(range(len(data.nights)), data.series("children_in_several_areas", NAN), marker="o", markersize=3,
            color="#8172b3")  # fmt: skip
    _date_ticks(ax, data)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("children")
    return _png(fig, "cross_authority", "Children known in more than one authority area",
                "children in the index with involvements in two or more authority areas, each night")  # fmt: skip


def _notices(data: NightData) -> Figure:
    fig, ax = _axes(height=2.4)
    x = range(len(data.nights))
    ax.plot(x, data.series("notices_notices_sent", NAN), marker="o", markersize=3, color="#55a868", label="notices")
    ax.plot(x, data.series("notices_retractions_sent", NAN), marker="o", markersize=3, color="#c44e52",
            label="retractions")  # fmt: skip
    _date_ticks(ax, data)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("notices")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    return _png(fig, "notices", "Notices and retractions sent",
                "notices (one per organisation and child) and retractions sent each night")  # fmt: skip


def _retention(data: NightData) -> Figure:
    fig, ax = _axes(height=3.2)
    rules = [r["rule"] for r in data.retention]
    ax.barh(rules, [r["rows_deleted"] for r in data.retention], color="#55a868", label="rows")
    ax.barh(rules, [r["files_deleted"] for r in data.retention], left=[r["rows_deleted"] for r in data.retention],
            color="#8172b3", label="files")  # fmt: skip
    if not rules:
        ax.text(0.5, 0.5, "no retention run for this day", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(frameon=False, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.invert_yaxis()  # the policy's order, top down
    ax.set_xlim(0, max([1] + [r["rows_deleted"] + r["files_deleted"] for r in data.retention]) * 1.05)
    ax.set_xlabel(f"deleted by the retention run of {data.night.isoformat()}")
    return _png(fig, "retention", "Retention: deleted by rule", "rows and files deleted by each retention rule")


def _date_ticks(ax: Axes, data: NightData) -> None:
    labels = _dates(data)
    step = max(1, len(labels) // 8)
    ax.set_xticks(range(0, len(labels), step), labels[::step], fontsize=7)
