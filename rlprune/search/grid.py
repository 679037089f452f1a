"""Grid search over coefficient levels (arXiv 2507.14882's first search method).

Exhaustive over the product of levels where it has at most ``max_exhaustive`` points;
otherwise coordinate-wise sweeps: each unit in turn tries every level with the others
held at the best values so far, for as many passes as the budget allows.
"""

from __future__ import annotations

import itertools

import numpy as np

from rlprune.search.harness import BudgetExhausted, SearchHarness

__all__ = ["DEFAULT_LEVELS", "grid_search"]

DEFAULT_LEVELS = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Coefficient levels (ours): a factor-of-two ladder around the magnitude baseline."""


def grid_search(harness: SearchHarness, levels: tuple[float, ...] = DEFAULT_LEVELS,
                max_exhaustive: int = 256) -> None:
    """Scores grid candidates until the grid or the harness budget is exhausted."""
    n = len(harness.units)
    try:
        if len(levels) ** n <= max_exhaustive:
            for point in itertools.product(levels, repeat=n):
                harness.evaluate(np.array(point))
            return
        best = np.ones(n)
        harness.evaluate(best)
        improved = True
        while improved:
            improved = False
            for unit in range(n):
                for level in levels:
                    trial = best.copy()
                    trial[unit] = level
                    if harness.evaluate(trial) > harness.evaluate(best):
                        best, improved = trial, True
    except BudgetExhausted:
        return
