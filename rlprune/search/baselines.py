"""Baselines: every coefficient equal to 1 over a base criterion.

``magnitude`` (L2 group norm, all c_g = 1) is torch-pruning's global magnitude pruning;
``random`` ranks channels by seeded random scores (the paper compares against both);
``activation`` ranks them by their mean |activation| on states the agent visits (a
data-aware baseline: weight magnitude ignores which neurons a controller really uses).
"""

from __future__ import annotations

import torch

from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.importance import ChannelStats, make_importance
from rlprune.pruning.ranking import ChannelRanking, Coefficients, Measure, PruningPlan
from rlprune.search.methods import METHODS, SearchMethod, register_method

__all__ = ["baseline_plan", "importance_scores"]

register_method(SearchMethod("magnitude", criterion="l2",
                             description="global L2 magnitude, as torch-pruning's"))
register_method(SearchMethod("random", criterion="random", description="seeded random"))
register_method(SearchMethod("activation", criterion="activation",
                             description="mean |activation| on visited states"))


def importance_scores(grouper: ComponentGrouper, criterion: str, seed: int = 0,
                      stats: ChannelStats | None = None) -> dict[str, torch.Tensor]:
    """Raw per-channel importance of every group under one criterion."""
    importance = make_importance(criterion, stats=stats, seed=seed)
    return {g.id: importance(g.tp_group) for g in grouper.groups}


def baseline_plan(grouper: ComponentGrouper, method: str, rho: float, eps: float,
                  seed: int = 0, round_to: int = 1,
                  stats: ChannelStats | None = None,
                  measure: Measure | None = None) -> PruningPlan:
    """The plan of a baseline at target sparsity ``rho`` within ``eps`` (of ``measure``:
    parameters by default).

    Raises:
        ValueError: unknown method, or rho/eps out of range.
        InfeasibleTarget: the target cannot be met.
    """
    baselines = sorted(name for name, m in METHODS.items() if m.is_baseline)
    if method not in baselines:
        raise ValueError(f"unknown baseline {method!r}; choose one of {baselines}")
    scores = importance_scores(grouper, METHODS[method].criterion, seed=seed, stats=stats)
    ranking = ChannelRanking(grouper, scores, round_to=round_to, measure=measure)
    return ranking.plan(Coefficients([g.id for g in grouper.groups]), rho, eps)
