"""Coefficient search: ``search(...)`` runs any method under one harness and budget."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from rlprune.adapters.base import AgentAdapter
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.importance import ChannelStats, collect_channel_stats, needs_stats
from rlprune.pruning.ranking import ChannelRanking, Measure
from rlprune.search.baselines import baseline_plan, importance_scores
from rlprune.search.cmaes import cmaes_search
from rlprune.search.executors import (
    Executor,
    InProcessExecutor,
    ProcessExecutor,
    RayExecutor,
    make_executor,
)
from rlprune.search.gradient import gradient_search
from rlprune.search.grid import DEFAULT_LEVELS, grid_search
from rlprune.search.harness import SearchHarness, SearchResult
from rlprune.search.methods import METHODS, SearchMethod, register_method
from rlprune.search.objective import (
    OBJECTIVES,
    Objective,
    PerturbedReturnObjective,
    PSNRObjective,
    ReturnObjective,
    Score,
    aggregate,
    objective_for,
    register_objective,
)
from rlprune.search.visited import VisitedInputs
from rlprune.settings import SearchSettings, Target

__all__ = [
    "DEFAULT_LEVELS",
    "METHODS",
    "OBJECTIVES",
    "Executor",
    "InProcessExecutor",
    "ProcessExecutor",
    "RayExecutor",
    "Objective",
    "PSNRObjective",
    "PerturbedReturnObjective",
    "ReturnObjective",
    "Score",
    "SearchMethod",
    "SearchResult",
    "VisitedInputs",
    "aggregate",
    "baseline_plan",
    "importance_scores",
    "cmaes_search",
    "gradient_search",
    "grid_search",
    "make_executor",
    "objective_for",
    "register_method",
    "register_objective",
    "search",
]


def search(agent: AgentAdapter, objective: Objective, rho: float, eps: float,
           method: str = "grid", budget: int = 50, seed: int = 0,
           criterion: str = "l2", scope: str = "auto",
           components: list[str] | None = None, interfaces: tuple[str, ...] = (),
           round_to: int = 1, stats: ChannelStats | None = None,
           run_dir: str | Path | None = None, progress: bool = True,
           executor: Executor | None = None,
           visited: VisitedInputs | None = None,
           measure: Callable[[ComponentGrouper], Measure] | None = None) -> SearchResult:
    """Finds soft coefficients that keep the objective high at sparsity rho +- eps.

    Args:
        agent: the dense agent (left unchanged).
        objective: scores a masked agent (``ReturnObjective``, ``PSNRObjective``...).
        rho: target parameter sparsity of the chosen components.
        eps: tolerance on the achieved sparsity.
        method: ``magnitude`` / ``random`` (baselines: one evaluation), ``grid``,
            ``gradient`` (surrogate descent, snapshots ranked on the objective), ``cmaes``.
        budget: maximum scored candidates (``gradient`` scores its final snapshot first
            and uses at most 1 + its 4 snapshots: a budget of 1 is its cheapest run).
        seed: seeds random importance and CMA-ES.
        criterion: base importance for grid/gradient/cmaes (``l2``, ``activation``...).
            Data-aware criteria read statistics of the dense agent's visited states: from
            ``stats`` if given, else measured on the objective's own episodes.
        scope: one coefficient per ``component`` or per ``group``; ``auto``: per
            component, per group when only one component is pruned (a pruned interface
            always gets its own).
        components: components to prune (default: the adapter's choice).
        interfaces: prunable interfaces to shrink as well (e.g. ``("latent",)``).
        round_to: kept channels per group are a multiple of this.
        run_dir: keep resumable state here (search history and the visited states).
        executor: where candidates are scored (``InProcessExecutor`` by default,
            ``ProcessExecutor`` or ``RayExecutor`` for populations in parallel); the
            result does not depend on it.
        visited: the dense agent's visited-state inputs, to share with other searches
            (default: measured here when needed, kept in ``run_dir``). Their env steps
            count towards every search that uses them.
        measure: what rho counts, built on the search's groups (default: parameter
            sparsity; ``rlprune.pruning.targets.make_measure`` for FLOPs or time).
    """
    Target(rho, eps)
    SearchSettings(method, budget, seed, criterion, scope, round_to=round_to)
    if method not in METHODS:
        raise ValueError(f"unknown search method {method!r}; choose one of {list(METHODS)}")
    chosen = METHODS[method]
    grouper = ComponentGrouper(agent, components, interfaces=interfaces)
    base = chosen.criterion or criterion
    visited = visited or VisitedInputs(objective, agent, run_dir)
    measure_stats = needs_stats(base) and stats is None
    if measure_stats:
        stats = collect_channel_stats(grouper, visited.inputs(), seed=seed)
    ranking = ChannelRanking(grouper, importance_scores(grouper, base, seed=seed, stats=stats),
                             round_to=round_to, measure=measure(grouper) if measure else None)
    ranking.check_reachable(rho, eps)  # before any run state is written
    harness = SearchHarness(agent, grouper, ranking, objective, rho, eps,
                            budget=1 if chosen.is_baseline else budget, scope=scope,
                            run_dir=run_dir, progress=progress, executor=executor,
                            method=method)
    try:
        if chosen.is_baseline:  # the plan is the ranking itself: one evaluation
            harness.evaluate(np.ones(len(harness.units)))
        else:
            chosen.run(harness, visited, seed)
    finally:
        harness.close()
    if measure_stats or chosen.uses_states:
        harness.extra_env_steps += visited.env_steps
    return harness.result()
