"""Grid search over coefficient levels (arXiv 2507.14882's first search method).

Exhaustive over the product of levels where it has at most ``max_exhaustive`` points;
otherwise coordinate-wise sweeps: each unit in turn tries every level with the others
held at the best values so far, for as many passes as the budget allows.
"""

from __future__ import annotations

import itertools

import numpy as np

from rlprune.search.harness import BudgetExhausted, SearchHarness
from rlprune.search.methods import SearchMethod, register_method

__all__ = ["DEFAULT_LEVELS", "grid_search"]

DEFAULT_LEVELS = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Coefficient levels (ours): a factor-of-two ladder around the magnitude baseline."""


def grid_search(harness: SearchHarness, levels: tuple[float, ...] = DEFAULT_LEVELS,
                max_exhaustive: int = 256, population: int = 8) -> None:
    """Scores grid candidates until the grid or the harness budget is exhausted.

    Args:
        levels: coefficient levels per unit.
        max_exhaustive: largest grid searched exhaustively.
        population: exhaustive grid points scored together (in parallel on a pool or
            Ray executor; racing compares each batch with the incumbent before it).
    """
    n = len(harness.units)
    try:
        if len(levels) ** n <= max_exhaustive:
            points = [np.array(p) for p in itertools.product(levels, repeat=n)]
            for start in range(0, len(points), population):
                harness.evaluate_many(points[start:start + population])
            return
        best = np.ones(n)
        best_value = harness.evaluate(best)
        improved = True
        while improved:
            improved = False
            for unit in range(n):
                trials = [best.copy() for _ in levels]
                for trial, level in zip(trials, levels):
                    trial[unit] = level
                for trial, value in zip(trials, harness.evaluate_many(trials)):
                    if value > best_value:
                        best, best_value, improved = trial, value, True
    except BudgetExhausted:
        return


register_method(SearchMethod("grid", lambda harness, visited, seed: grid_search(harness),
                             description="grid over coefficient levels, the paper's"))
