"""The comparison's bar chart (needs matplotlib: ``pip install '.[bench]'``).

Top: every time or rate figure relative to floor[uvloop], so that higher is better everywhere
(log scale). Bottom: the fresh-process and per-actor resource figures, absolute (log scale
 when they span more than 20x).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

BASELINE = "floor[uvloop]"
RELATIVE = [
    ("w1_us", "W1 sync\nround trip"),
    ("w3_seq_us", "W3 async\nsequential"),
    ("w2_calls_per_s", "W2\npipelined"),
    ("w3_gather_calls_per_s", "W3 async\ngather"),
    ("w4_calls_per_s", "W4\ngroups"),
    ("w6_calls_per_s", "W6\nfan-in"),
    ("w5_overhead_ms", "W5 overhead\nover 1.0 s"),
    ("w7_us_per_actor", "W7 create\n+call+kill"),
    ("w1_us:sleep0", "W1 sync\nsleep(0) body"),
    ("w9_sync_us", "W9 actor\n->actor"),
    ("w9_async_us", "W9 actor->actor\nasync caller"),
    ("w10_calls_per_s", "W10\nmixed"),
]
ABSOLUTE = [
    ("w7_fresh_s", "W7 fresh process:\nimport..first result (s)"),
    ("w7_fresh_rss_mb", "W7 fresh process:\nRSS (MB)"),
    ("w8_idle_mb_per_actor", "W8 MB per actor,\nnever called"),
    ("w8_used_mb_per_actor", "W8 MB per actor,\n3 groups called once"),
]
COLORS = {
    "pyactors[uvloop]": "#1f77b4",
    "pyactors[asyncio]": "#aec7e8",
    "floor[uvloop]": "#ff7f0e",
    "floor[asyncio]": "#ffbb78",
    "rct[uvloop]": "#2ca02c",
    "ray": "#d62728",
    "pyactors-ray": "#ff9896",
    "pykka": "#9467bd",
}


def _relative(result: dict, column: str, row) -> float | None:
    value, base = result.get(column, {}).get(row.metric), result.get(BASELINE, {}).get(row.metric)
    if value is None or base is None or value <= 0 or base <= 0:
        return None
    return base / value if row.lower_is_better else value / base


def _bars(ax, groups: list[str], columns: list[str], values, annotate: bool = False) -> None:
    width = 0.8 / len(columns)
    shown = []
    for i, column in enumerate(columns):
        xs, ys = [], []
        for g, _ in enumerate(groups):
            v = values(column, g)
            if v is not None and math.isfinite(v) and v > 0:
                xs.append(g - 0.4 + width * (i + 0.5))
                ys.append(v)
        bars = ax.bar(xs, ys, width, label=column, color=COLORS.get(column))
        shown += ys
        if annotate:
            ax.bar_label(bars, labels=[f"{y:.3g}" for y in ys], fontsize=6, rotation=90, padding=2)
    ax.set_xticks(range(len(groups)))
    if shown and max(shown) / min(shown) > 20:
        ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def draw(result: dict, columns: list[str], rows: list, path: Path, title: str = "") -> None:
    by_metric = {row.metric: row for row in rows}
    relative = [
        (by_metric[m], label)
        for m, label in RELATIVE
        if any(result.get(c, {}).get(m) is not None for c in columns)
    ]
    absolute = [
        (m, label)
        for m, label in ABSOLUTE
        if any(result.get(c, {}).get(m) is not None for c in columns)
    ]
    fig = plt.figure(figsize=(12, 8.5), dpi=80)
    grid = fig.add_gridspec(2, max(len(absolute), 1), height_ratios=[1.5, 1], hspace=0.45)
    top = fig.add_subplot(grid[0, :])
    _bars(
        top,
        [label for _, label in relative],
        columns,
        lambda c, g: _relative(result, c, relative[g][0]),
    )
    top.set_yscale("log")
    top.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    top.set_xticklabels([label for _, label in relative], fontsize=8)
    top.axhline(1.0, color="black", linewidth=0.8)
    top.set_ylabel(f"relative to {BASELINE}\n(higher is better)")
    top.legend(ncol=len(columns), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.13))
    top.grid(axis="y", which="major", alpha=0.3)
    for i, (metric, label) in enumerate(absolute):
        ax = fig.add_subplot(grid[1, i])
        _bars(ax, [label], columns, lambda c, g, m=metric: result.get(c, {}).get(m), annotate=True)
        ax.margins(y=0.25)
        ax.set_xticklabels([label], fontsize=8)
        ax.grid(axis="y", which="major", alpha=0.3)
        ax.tick_params(axis="y", labelsize=7)
    if title:
        fig.suptitle(title, fontsize=8, y=0.995)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def draw_progress(reached: list[tuple[str, float]], path: Path, title: str = "") -> None:
    """One bar per target: the figure measured over the figure needed, oriented so that 1 is
    the target met exactly and higher is better (benchmarks.processes.progress)."""
    import textwrap

    fig, ax = plt.subplots(figsize=(12, 4.5), dpi=80)
    values = [value for _, value in reached]
    bars = ax.bar(
        range(len(reached)),
        values,
        color=["#2ca02c" if value >= 1 else "#d62728" for value in values],
    )
    ax.bar_label(bars, labels=[f"{value:.2f}" for value in values], fontsize=7, padding=2)
    ax.set_xticks(range(len(reached)))
    ax.set_xticklabels([textwrap.fill(text, 22) for text, _ in reached], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylim(min([0.1, *values]) * 0.8, max([2.0, *values]) * 1.3)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylabel("measured / needed\n(>= 1: target met)")
    ax.grid(axis="y", which="major", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=8)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    """Redraw a chart from the JSON that `python -m benchmarks.compare --json` wrote."""
    import argparse
    import json

    from benchmarks.compare import PINGPONG, ROWS

    parser = argparse.ArgumentParser(prog="python -m benchmarks.chart", description=main.__doc__)
    parser.add_argument("json", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    data = json.loads(args.json.read_text())
    medians = {
        column: {
            k: math.inf if v is None and k.endswith("teardown_s") else v for k, v in values.items()
        }
        for column, values in data["medians"].items()
    }
    draw(
        medians,
        [c for c in medians if c != PINGPONG],
        ROWS,
        args.png,
        title=args.title or data.get("title", ""),
    )


if __name__ == "__main__":
    main()
