"""The check a prune run ends with: dense and pruned agents scored on the same held-out
episodes (seeds the search never saw), and their paired difference."""

from __future__ import annotations

import numpy as np

from rlprune.adapters.base import AgentAdapter
from rlprune.analysis.statistics import paired_difference, robust_summary
from rlprune.search import Objective, Score

__all__ = ["held_out_comparison"]


def _summary(score: Score) -> dict:
    returns = score.details.get("returns")
    summary = {"metric": score.value, "ci95": score.ci95}
    if returns:
        summary.update(robust_summary(np.asarray(returns)), returns=returns)
    return summary


def held_out_comparison(dense: AgentAdapter, pruned: AgentAdapter,
                        objective: Objective) -> dict:
    """Both agents' scores on ``objective`` and ``pruned - dense``: paired over episodes
    (mean and t-CI of the differences) where the objective plays episodes."""
    before, after = objective(dense), objective(pruned)
    report = {"objective": objective.describe(), "dense": _summary(before),
              "pruned": _summary(after)}
    if "returns" in report["dense"]:
        report["difference"] = paired_difference(report["pruned"]["returns"],
                                                 report["dense"]["returns"])
    else:
        report["difference"] = {"mean": after.value - before.value, "ci95": 0.0}
    return report
