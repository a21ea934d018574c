"""The report's plots, drawn with matplotlib and returned as PNG data (no file, no script)."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from childindex.reports.data import NHS_GO_LIVE, NightData, loaded_rows, org_share, org_value, worst
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
        _volume(data),
        _nhs_completeness(data),
        _upn_completeness(data),
        _links_by_organisation(data),
        _probabilities(data),
        _cluster_sizes(data),
        _review_queue(data),
        _cross_authority(data),
        *_model(data),
        _notices(data),
        _retention(data),
    ]


SPAN_FOR_LOG = 100  # a log scale once the largest value is this many times the smallest (loads vs deltas)


def _scale(ax: Axes, values: list[float]) -> None:
    """A log scale where loads and deltas differ by orders of magnitude, else linear from 0."""
    positive = [v for v in values if v > 0 and not math.isnan(v)]
    if positive and max(positive) >= SPAN_FOR_LOG * min(positive):
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)


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
    _scale(ax, [v for sector in SECTORS for v in data.series(f"{sector}:rows_read", NAN)])
    _date_ticks(ax, data)
    ax.set_ylabel("rows read")
    ax.legend(frameon=False, fontsize=8)
    return _png(fig, "rows_read", "Rows read per sector", f"rows read per sector over the {len(data.nights)} nights")


def _rejections(data: NightData, sector: str) -> Figure:
    """The rejection rate (rows rejected / rows in files that loaded: the table's and the
    headline's), the share of those rows breaking each rule (a row can break several), and
    the nights with a quarantined file, whose rows are not in the rate."""
    from matplotlib.ticker import PercentFormatter

    totals: dict[str, float] = {}
    for m in data.metrics.values():
        for name, v in m.items():
            if name.startswith(f"{sector}:rejected:"):
                totals[name.rsplit(":", 1)[1]] = totals.get(name.rsplit(":", 1)[1], 0.0) + v
    rules = sorted(totals, key=lambda r: -totals[r])[:5]
    fig, ax = _axes(height=2.6)
    x = list(range(len(data.nights)))
    loaded = [loaded_rows(data.metrics.get(n, {}), sector) for n in data.nights]
    rate = [r / d if d else 0.0 for r, d in zip(data.series(f"{sector}:rows_rejected", 0.0), loaded, strict=True)]
    ax.bar(x, rate, width=0.8, color="#9ecae1", label="rejection rate")
    for rule in rules:
        broke = data.series(f"{sector}:rejected:{rule}", 0.0)
        share = [r / d if d else NAN for r, d in zip(broke, loaded, strict=True)]
        ax.plot(x, share, marker=".", markersize=4, linewidth=1, label=f"rule {rule}")
    top = max([*rate, 0.01]) * 1.25
    ax.set_ylim(0, top)
    quarantined = [(k, q) for k, q in enumerate(data.series(f"{sector}:rows_quarantined", 0.0))
                   if data.series(f"{sector}:files_quarantined", 0.0)[k]]  # fmt: skip
    if quarantined:
        ax.scatter([k for k, _ in quarantined], [top * 0.94] * len(quarantined), marker="v", color="#d93025", zorder=3,
                   label="file(s) quarantined (rows not loaded, not in the rate)")  # fmt: skip
        for k, q in quarantined:
            ax.annotate(f"{q:.0f}", (k, top * 0.94), xytext=(0, -11), textcoords="offset points", ha="center",
                        fontsize=6, color="#d93025")  # fmt: skip
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    _date_ticks(ax, data)
    ax.set_ylabel("of rows in files\nthat loaded", fontsize=8)
    ax.legend(frameon=False, fontsize=6, ncol=3, loc="upper left")
    rate_now, not_loaded = data.rejection_rate(sector), data.value(f"{sector}:rows_quarantined")
    now = (f"tonight {rate_now:.1%} of rows in files that loaded rejected" if rate_now is not None
           else "tonight no file loaded") + f"; {not_loaded:.0f} row(s) not loaded"  # fmt: skip
    if rate_now is None and not_loaded:
        now += " (file quarantined)"
    return _png(fig, f"rejections_{sector}", f"{sector}: rejection rate, by rule, and quarantined files",
                f"{sector}: {now}. Each night: rows rejected by row rules as a share of rows in files that loaded "
                "(bars), the share breaking each rule (lines), a red mark where a file was quarantined with its "
                "rows not loaded")  # fmt: skip


def _probabilities(data: NightData) -> Figure:
    """Tonight's scored pairs by match probability, with the link threshold and the review
    band linkage used tonight (recorded with its counts: linkage_match_threshold, ...)."""
    fig, ax = _axes()
    match, review = data.value("linkage_match_threshold", NAN), data.value("linkage_review_threshold", NAN)
    first = min(10, int(review * 20)) if not math.isnan(review) else 10
    bins = [b / 20 for b in range(first, 20)]
    counts = [data.value(f"linkage_p_bin_{b:02d}") for b in range(first, 20)]
    ax.bar(bins, counts, width=0.045, align="edge", color="#4c72b0")
    if not math.isnan(match):
        ax.axvspan(review, match, color="#f0ad4e", alpha=0.25, label=f"review band {review:g} to {match:g}")
        ax.axvline(match, color="#d93025", linewidth=1.5, label=f"link threshold {match:g}")
        ax.legend(frameon=False, fontsize=7, loc="upper left")
    else:
        ax.set_title("thresholds not recorded for this night", fontsize=8)
    ax.set_xlabel("match probability of scored pairs")
    ax.set_ylabel("pairs")
    if max(counts, default=0) >= SPAN_FOR_LOG * max(1.0, min((c for c in counts if c), default=1.0)):
        ax.set_yscale("log")
    ax.set_xlim(first / 20, 1.0)
    return _png(fig, "probabilities", "Linkage: match probabilities tonight, with its thresholds",
                "histogram of tonight's scored pairs by match probability, with the review band and the link "
                "threshold linkage used")  # fmt: skip


def _cluster_sizes(data: NightData) -> Figure:
    """Children by number of source records tonight, beside the first night of the window
    that has them (a drifting model grows or shrinks clusters)."""
    fig, ax = _axes(height=2.6)
    sizes = range(1, 11)
    labels = [str(n) for n in sizes[:-1]] + ["10+"]
    tonight = [data.value(f"cluster_size_{n:02d}") for n in sizes]
    ax.bar(range(len(labels)), tonight, color="#8172b3", label=data.night.strftime("%d %b"))
    before = next((n for n in data.nights[:-1] if "cluster_size_01" in data.metrics.get(n, {})), None)
    if before is not None:
        earlier = [data.metrics[before].get(f"cluster_size_{n:02d}", 0.0) for n in sizes]
        ax.step(range(len(labels)), earlier, where="mid", color="#333", linewidth=1, label=before.strftime("%d %b"))
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("source records per child")
    ax.set_ylabel("children")
    if any(tonight):
        ax.set_yscale("log")
    ax.legend(frameon=False, fontsize=7)
    return _png(fig, "cluster_sizes", "Linkage: children by number of source records",
                "children in the index by their number of source records tonight, and on the window's "
                "first night")  # fmt: skip


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


def _panels(data: NightData, codes: list[str], key: str, title: str, alt: str, empty: str,
            draw: Callable[[Axes, str], None]) -> Figure:  # fmt: skip
    """Small multiples: one panel per organisation (at most PANELS: the worst by the measure;
    the table below the charts has every organisation), sharing the nights' axis."""
    import matplotlib.pyplot as plt

    if not codes:
        fig = plt.figure(figsize=(7.5, 0.8))
        fig.text(0.5, 0.5, empty, ha="center", va="center", fontsize=9)
        return _png(fig, key, title, alt)
    alt = f"{alt}. Drawn, worst first: {', '.join(codes)}"
    cols = min(4, len(codes))
    rows = math.ceil(len(codes) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.5, 1.0 + 1.7 * rows), squeeze=False, sharex=True)
    labels = _dates(data)
    for k, ax in enumerate(axes.flat):
        if k >= len(codes):
            ax.set_axis_off()
            continue
        ax.spines[["top", "right"]].set_visible(False)
        draw(ax, codes[k])
        name = data.names.get(codes[k], ("", ""))[0]
        ax.set_title(f"{codes[k]} {name}"[:34], fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_xticks([0, len(labels) - 1], [labels[0], labels[-1]], fontsize=6)
    return _png(fig, key, title, alt)


def _volume(data: NightData) -> Figure:
    """Rows read per organisation and night, with the row-count band intake checked its file
    against; the organisations furthest outside (or nearest the edge of) their band."""

    def score(code: str) -> float | None:
        rows, low, high = (org_value(data, code, k) for k in ("rows_read", "row_band_low", "row_band_high"))
        if rows is None or not org_value(data, code, "files"):
            return None
        quarantined = 100.0 if org_value(data, code, "files_quarantined") else 0.0
        if low is None or high is None:
            return quarantined
        return quarantined + max(math.log((low + 1) / (rows + 1)), math.log((rows + 1) / (high + 1)))

    def draw(ax: Axes, code: str) -> None:
        x = range(len(data.nights))
        rows = [org_value(data, code, "rows_read", n) for n in data.nights]
        files = [org_value(data, code, "files", n) for n in data.nights]
        read = [r if r is not None and f else NAN for r, f in zip(rows, files, strict=True)]
        low = [v if (v := org_value(data, code, "row_band_low", n)) is not None else NAN for n in data.nights]
        high = [v if (v := org_value(data, code, "row_band_high", n)) is not None else NAN for n in data.nights]
        ax.fill_between(x, low, high, step="mid", color="#1b9e77", alpha=0.18, linewidth=0)
        ax.plot(x, read, marker="o", markersize=2, linewidth=1, color="#333")
        bad = [k for k, n in enumerate(data.nights) if org_value(data, code, "files_quarantined", n)]
        ax.scatter(bad, [read[k] for k in bad], marker="x", color="#d93025", zorder=3, s=18)
        _scale(ax, read + [v for v in low + high if not math.isnan(v)])

    codes = worst(data, data.codes, score)
    empty = "no organisation sent a file tonight"
    alt = (f"rows read each night by the {len(codes)} organisation(s) furthest outside or nearest the edge of the "
           "row-count band intake applies (shaded); a cross marks a quarantined file") if codes else empty  # fmt: skip
    return _panels(data, codes, "volume", "Rows read per organisation, with the row-count band", alt, empty, draw)


def _completeness(data: NightData, key: str, label: str, num: str, sectors: set[str], line: float | None) -> Figure:
    """Per organisation of ``sectors``, the share of its staged rows with the identifier each
    night (rows_with_nhs_number or rows_with_upn over rows_staged, from the staging files);
    the organisations lowest tonight."""
    codes = [c for c in data.codes if data.names.get(c, ("", ""))[1] in sectors]

    def score(code: str) -> float | None:
        share = org_share(data, code, num, "rows_staged")
        return None if share is None else 1.0 - share

    def draw(ax: Axes, code: str) -> None:
        share = [s if (s := org_share(data, code, num, "rows_staged", n)) is not None else NAN for n in data.nights]
        ax.plot(range(len(data.nights)), share, marker="o", markersize=2, linewidth=1, color="#7570b3")
        if line is not None:
            ax.axhline(line, color="#d93025", linewidth=1, linestyle="--")
        ax.set_ylim(0, 1.02)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))

    from matplotlib.ticker import PercentFormatter

    chosen = worst(data, codes, score)
    ref = f"; the dashed line is {line:.0%} (CP-IS would not go live below it)" if line is not None else ""
    empty = f"no staged rows tonight from {' or '.join(sorted(sectors))}"
    alt = (f"share of staged rows with {label} each night for the {len(chosen)} organisation(s) lowest tonight"
           + ref) if chosen else empty  # fmt: skip
    return _panels(data, chosen, key, f"{label.split(' ', 1)[1]} completeness per organisation", alt, empty, draw)


def _nhs_completeness(data: NightData) -> Figure:
    return _completeness(data, "nhs_completeness", "an NHS number", "rows_with_nhs_number", {"health", "social_care"},
                         NHS_GO_LIVE)  # fmt: skip


def _upn_completeness(data: NightData) -> Figure:
    return _completeness(data, "upn_completeness", "a UPN", "rows_with_upn", {"education"}, None)


def _links_by_organisation(data: NightData) -> Figure:
    """Per organisation, the share of its records tonight linked to another record and the
    share that made a new child; the organisations whose link rate moved most from their
    recent median."""
    import statistics

    def rate(code: str, n: date | None = None) -> float | None:
        return org_share(data, code, "records_linked_to_another", "records_tonight", n)

    def score(code: str) -> float | None:
        now = rate(code)
        if now is None:
            return None
        before = [r for n in data.nights[:-1][-7:] if (r := rate(code, n)) is not None]
        return abs(now - statistics.median(before)) if before else 1.0 - now

    def draw(ax: Axes, code: str) -> None:
        x = range(len(data.nights))
        linked = [r if (r := rate(code, n)) is not None else NAN for n in data.nights]
        new = [s if (s := org_share(data, code, "records_new_child", "records_tonight", n)) is not None else NAN
               for n in data.nights]  # fmt: skip
        ax.plot(x, linked, marker="o", markersize=2, linewidth=1, color="#1b9e77", label="linked")
        ax.plot(x, new, marker="o", markersize=2, linewidth=1, color="#d95f02", label="new child")
        ax.set_ylim(0, 1.02)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))

    from matplotlib.ticker import PercentFormatter

    chosen = worst(data, data.codes, score)
    empty = "no organisation's records were linked tonight"
    alt = (f"for the {len(chosen)} organisation(s) whose link rate moved most from its recent median: the share of "
           "its records tonight linked to another record (green) and the share that made a new child (orange)"
           ) if chosen else empty  # fmt: skip
    return _panels(data, chosen, "links_by_organisation", "Link rate and new-children share per organisation", alt,
                   empty, draw)  # fmt: skip


def _model(data: NightData) -> list[Figure]:
    """The model's match weights and m and u probabilities, drawn from its JSON (the
    report loads nothing: no Altair chart, no script)."""
    model = data.model
    if not model or model["missing"]:
        return []
    levels = [(c["name"], lv) for c in model["comparisons"] for lv in c["levels"]]
    names = [f"{name}: {lv['label']}"[:60] for name, lv in levels]
    weights = [math.log2(lv["m"] / lv["u"]) for _name, lv in levels]
    prior = model["prior"]
    import matplotlib.pyplot as plt

    height = 0.9 + 0.16 * (len(levels) + 1)
    fig, ax = plt.subplots(figsize=(7.5, height))
    ax.spines[["top", "right"]].set_visible(False)
    y = list(range(len(levels) + 1))
    values = [math.log2(prior / (1 - prior)), *weights]
    ax.barh(y, values, color=["#888"] + ["#1b9e77" if w >= 0 else "#d93025" for w in weights])
    ax.set_yticks(y, ["prior (two random records match)", *names], fontsize=6)
    ax.invert_yaxis()
    ax.axvline(0, color="#333", linewidth=0.8)
    ax.set_xlabel("match weight (log2 of m / u)", fontsize=8)
    weights_fig = _png(fig, "match_weights", f"Model {model['file']}: match weights",
                       "match weight of each comparison level of the linkage model, and the prior")  # fmt: skip
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.5, height), sharey=True)
    for ax, key, colour, title in ((left, "m", "#4c72b0", "m: among true matches"),
                                   (right, "u", "#dd8452", "u: among non-matches")):  # fmt: skip
        ax.spines[["top", "right"]].set_visible(False)
        ax.barh(range(len(levels)), [lv[key] for _n, lv in levels], color=colour)
        ax.set_xlim(0, 1)
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=6)
    left.set_yticks(range(len(levels)), names, fontsize=6)
    left.invert_yaxis()
    m_u = _png(fig, "m_u", f"Model {model['file']}: m and u probabilities",
               "probability of each comparison level among true matches (m) and among non-matches (u)")  # fmt: skip
    return [weights_fig, m_u]


def _date_ticks(ax: Axes, data: NightData) -> None:
    labels = _dates(data)
    step = max(1, len(labels) // 8)
    ax.set_xticks(range(0, len(labels), step), labels[::step], fontsize=7)
