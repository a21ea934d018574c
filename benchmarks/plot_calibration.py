"""Calibration plot for docs/linkage.md from ``bench_linkage_public.py``'s results.

Each dataset's scored pairs are binned by the model's match probability; the plot shows the
share of each bin that is truly a match (labels the model never saw: FEBRL's, or the
generator's truth at a seed no model was trained on). A calibrated model lies on the
diagonal; what matters for the match threshold is the top bins, where a pair is linked
without a person looking.

    uv run python benchmarks/plot_calibration.py [--results benchmarks/results/linkage-public.json]
        [--out docs/images/linkage-calibration.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=HERE / "results" / "linkage-public.json")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "images" / "linkage-calibration.png")
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    fig, (ax, axn) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="calibrated")
    for name, r in results["datasets"].items():
        bins = [b for b in r.get("calibration", []) if b["pairs"] >= 5]
        if not bins:
            continue
        x = [b["mean_p"] for b in bins]
        y = [b["match_rate"] for b in bins]
        ax.plot(x, y, marker="o", ms=3, lw=1, label=name)
        axn.plot(x, [b["pairs"] for b in bins], marker="o", ms=3, lw=1, label=name)
    ax.axvline(0.95, color="black", lw=0.8)
    ax.text(0.94, 0.05, "match threshold 0.95", rotation=90, ha="right", fontsize=8)
    ax.set(xlabel="predicted match probability (bin mean)", ylabel="share truly a match", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title("Calibration on held-out labels", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    axn.set(xlabel="predicted match probability (bin mean)", ylabel="pairs in bin", yscale="log", xlim=(0, 1))
    axn.set_title("Pairs per bin (bins of fewer than 5 pairs left out)", fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()
