"""CMA-ES on the coefficients, directly on the real metric (our addition to the paper).

Searches log-coefficients (so a step doubles or halves a coefficient), starting at the
magnitude baseline (all ones). Infeasible candidates score -inf and CMA-ES moves away.
Each generation is scored as one population (in parallel on a pool or Ray executor).
"""

from __future__ import annotations

import cma
import numpy as np

from rlprune.search.harness import BudgetExhausted, SearchHarness
from rlprune.search.methods import SearchMethod, register_method

__all__ = ["cmaes_search"]


def cmaes_search(harness: SearchHarness, sigma0: float = 0.5, popsize: int | None = None,
                 seed: int = 0, bound: float = 3.0) -> None:
    """Runs CMA-ES until the harness budget is spent.

    Args:
        sigma0: initial step size in log-coefficient space.
        popsize: candidates per generation (default: CMA-ES's 4 + 3 ln n).
        seed: seeds CMA-ES's sampling.
        bound: log-coefficients stay within [-bound, bound].
    """
    n = len(harness.units)
    options = {"seed": seed + 1, "bounds": [-bound, bound], "verbose": -9}
    if popsize:
        options["popsize"] = popsize
    es = cma.CMAEvolutionStrategy(np.zeros(n), sigma0, options)
    try:
        harness.evaluate(np.ones(n))
        while not es.stop():
            candidates = es.ask()
            values = harness.evaluate_many([np.exp(np.asarray(x)) for x in candidates])
            es.tell(candidates, [-v if np.isfinite(v) else 1e12 for v in values])
    except BudgetExhausted:
        return


register_method(SearchMethod("cmaes", lambda harness, visited, seed: cmaes_search(
    harness, seed=seed), description="CMA-ES on log-coefficients, ours"))
