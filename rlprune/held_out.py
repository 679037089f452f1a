"""The check a prune run ends with: dense and pruned agents scored on the same held-out
episodes (seeds the search never saw), and their paired difference."""

from __future__ import annotations

import functools

import numpy as np

from rlprune.adapters.base import AgentAdapter
from rlprune.analysis.stability import stability_report
from rlprune.analysis.statistics import paired_difference, robust_summary
from rlprune.search import Objective, ReturnObjective, Score
from rlprune.units import UnitRunner, run_units

__all__ = ["held_out_comparison"]


def _summary(score: Score) -> dict:
    returns = score.details.get("returns")
    summary = {"metric": score.value, "ci95": score.ci95}
    if returns:
        summary.update(robust_summary(np.asarray(returns)), returns=returns)
    if "per_perturbation" in score.details:  # a robust objective: one mean per system
        summary["per_perturbation"] = score.details["per_perturbation"]
    return summary


def _scored(objective: Objective, job: tuple[AgentAdapter, bool]) -> tuple[Score, list | None]:
    """An agent's held-out score and, when asked for, the episodes it played."""
    agent, with_trajectories = job
    if with_trajectories:
        return objective.scored_trajectories(agent)
    return objective(agent), None


def held_out_comparison(dense: AgentAdapter, pruned: AgentAdapter,
                        objective: Objective, seed: int = 0,
                        runner: UnitRunner | None = None) -> dict:
    """Both agents' scores on ``objective`` and ``pruned - dense``: paired over episodes
    (mean and t-CI of the differences) where the objective plays episodes; with nominal
    episodes (a ``ReturnObjective``), the pruned agent's stability on the dense agent's
    trajectories too (``stability_report``, which says what loop it analyses). A parallel
    ``runner`` plays the two agents' episodes side by side (same scores)."""
    nominal = isinstance(objective, ReturnObjective)
    jobs = [(dense, nominal), (pruned, False)]
    score = functools.partial(_scored, objective)
    scored = {i: result for i, result, _ in run_units(runner, score, jobs)}
    (before, trajectories), (after, _) = scored[0], scored[1]
    report = {"objective": objective.describe(), "dense": _summary(before),
              "pruned": _summary(after)}
    if nominal:
        report["stability"] = stability_report(dense, pruned, trajectories, seed)
    if "returns" in report["dense"]:
        report["difference"] = paired_difference(report["pruned"]["returns"],
                                                 report["dense"]["returns"])
    else:
        report["difference"] = {"mean": after.value - before.value, "ci95": 0.0}
    return report
