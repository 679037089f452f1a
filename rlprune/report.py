"""Results as JSON, a Markdown table and a plot of the metric against sparsity.

Every file is written atomically (temporary file, then rename), so an interrupted run
never leaves half a report behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlprune.io import atomic_write, atomic_write_text

__all__ = ["markdown_table", "plot_metric_vs_sparsity", "pyplot", "save_figure", "write_json"]


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A Markdown table of the given columns; floats get 3 significant decimals."""
    def fmt(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Writes a figure as PNG atomically and releases it."""
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    finally:
        pyplot().close(fig)


def plot_metric_vs_sparsity(rows: Sequence[dict[str, Any]], path: str | os.PathLike,
                            metric: str = "mean", ci: str = "ci95",
                            title: str = "", ylabel: str = "episode return",
                            x: str = "sparsity", xlabel: str = "parameter sparsity") -> Path:
    """One line per method (rows with key ``method``) against ``x`` (sparsity, or measured
    speed-up); the dense row is a reference band."""
    fig, ax = pyplot().subplots(figsize=(6, 4))
    dense = [r for r in rows if r["method"] == "dense"]
    if dense:
        d = dense[0]
        ax.axhline(d[metric], color="k", lw=1, label="dense")
        ax.axhspan(d[metric] - d[ci], d[metric] + d[ci], color="k", alpha=0.1)
    for method in dict.fromkeys(r["method"] for r in rows if r["method"] != "dense"):
        mine = sorted((r for r in rows if r["method"] == method and r.get(x) is not None),
                      key=lambda r: r[x])
        ax.errorbar([r[x] for r in mine], [r[metric] for r in mine],
                    yerr=[r[ci] for r in mine], marker="o", capsize=3, label=method)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_kept_channels(channels: dict[str, int], removed: dict[str, Sequence[int]],
                       path: str | os.PathLike) -> Path:
    """Bars of the channels each group keeps over its dense width: where the cut fell."""
    groups = list(channels)
    kept = [channels[g] - len(removed.get(g, ())) for g in groups]
    fig, ax = pyplot().subplots(figsize=(7, 0.35 * len(groups) + 1.2))
    ax.barh(groups, [channels[g] for g in groups], color="#d9d9d9", label="dense")
    ax.barh(groups, kept, color="#3a6ea5", label="kept")
    ax.invert_yaxis()
    ax.set_xlabel("channels")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)
