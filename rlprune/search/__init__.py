"""Coefficient search: ``search(...)`` runs any method under one harness and budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rlprune.adapters.base import AgentAdapter
from rlprune.grouping import ComponentGrouper
from rlprune.importance import ChannelStats
from rlprune.ranking import ChannelRanking
from rlprune.search.baselines import BASELINES, baseline_plan, importance_scores
from rlprune.search.cmaes import cmaes_search
from rlprune.search.gradient import gradient_search
from rlprune.search.grid import DEFAULT_LEVELS, grid_search
from rlprune.search.harness import SearchHarness, SearchResult
from rlprune.search.objective import Objective, PSNRObjective, ReturnObjective, Score

__all__ = [
    "BASELINES",
    "DEFAULT_LEVELS",
    "METHODS",
    "Objective",
    "PSNRObjective",
    "ReturnObjective",
    "Score",
    "SearchResult",
    "baseline_plan",
    "importance_scores",
    "search",
]

METHODS = ("magnitude", "random", "grid", "gradient", "cmaes")


def search(agent: AgentAdapter, objective: Objective, rho: float, eps: float,
           method: str = "grid", budget: int = 50, seed: int = 0,
           criterion: str = "l2", scope: str = "component",
           components: list[str] | None = None, round_to: int = 1,
           stats: ChannelStats | None = None, run_dir: str | Path | None = None,
           progress: bool = True) -> SearchResult:
    """Finds soft coefficients that keep the objective high at sparsity rho +- eps.

    Args:
        agent: the dense agent (left unchanged).
        objective: scores a masked agent (``ReturnObjective``, ``PSNRObjective``...).
        rho: target parameter sparsity of the chosen components.
        eps: tolerance on the achieved sparsity.
        method: ``magnitude`` / ``random`` (baselines: one evaluation), ``grid``,
            ``gradient`` (surrogate descent, snapshots ranked on the objective), ``cmaes``.
        budget: maximum scored candidates.
        seed: seeds random importance and CMA-ES.
        criterion: base importance for grid/cmaes (``l2``, ``activation``...; data-aware
            criteria need ``stats``).
        scope: one coefficient per ``component`` or per ``group``.
        components: components to prune (default: the adapter's choice).
        round_to: kept channels per group are a multiple of this.
        run_dir: keep resumable state here.
    """
    if method not in METHODS:
        raise ValueError(f"unknown search method {method!r}; choose one of {METHODS}")
    grouper = ComponentGrouper(agent, components)
    base = BASELINES.get(method, criterion)
    ranking = ChannelRanking(grouper, importance_scores(grouper, base, seed=seed, stats=stats),
                             round_to=round_to)
    harness = SearchHarness(agent, grouper, ranking, objective, rho, eps,
                            budget=1 if method in BASELINES else budget, scope=scope,
                            run_dir=run_dir, progress=progress)
    if method in BASELINES:
        harness.evaluate(np.ones(len(harness.units)))
    elif method == "grid":
        grid_search(harness)
    elif method == "gradient":
        inputs, env_steps = objective.surrogate_inputs(agent)
        harness.extra_env_steps += env_steps
        gradient_search(harness, inputs, seed=seed)
    else:
        cmaes_search(harness, seed=seed)
    return harness.result(method)
