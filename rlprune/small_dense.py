"""The baseline that answers "why prune?": a small dense network of the pruned size.

The network has exactly the widths global magnitude pruning leaves at the same sparsity
(the same parameter count), but its weights start afresh and are distilled from the dense
agent on the dense agent's visited states: what a user could get without pruning, by
training a smaller model against the big one (as distilled students are). A sweep row
``distill-small`` beside the searches' rows shows whether keeping trained weights helps.
"""

from __future__ import annotations

import torch

from rlprune.adapters.base import AgentAdapter
from rlprune.finetune import distill
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.physical import prune_physically
from rlprune.search import baseline_plan
from rlprune.search.visited import VisitedInputs
from rlprune.sweep import ExtraMethod

__all__ = ["SMALL_DENSE", "small_dense_baseline"]

SMALL_DENSE = "distill-small"
"""The sweep method name of the baseline."""


def _reinitialise(agent: AgentAdapter, components: list[str], seed: int) -> None:
    """Fresh weights (each layer's own default initialisation) in the given components."""
    torch.manual_seed(seed)
    for name in components:
        for module in agent.components()[name].module.modules():
            if hasattr(module, "reset_parameters") and not list(module.children()):
                module.reset_parameters()


def small_dense_baseline(visited: VisitedInputs, steps: int = 1000, tol: float = 0.01,
                         components: list[str] | None = None) -> ExtraMethod:
    """A sweep method: ``(agent, rho, seed) -> (small dense agent, its sparsity)``.

    Args:
        visited: the dense agent's visited states (the sweep's own, measured once).
        steps: distillation steps (Adam, batches of 256).
        tol: tolerance of the width-giving magnitude plan.
        components: the components that shrink (default: the agent's default ones).
    """
    def method(agent: AgentAdapter, rho: float, seed: int) -> tuple[AgentAdapter, float]:
        grouper = ComponentGrouper(agent, components)
        plan = baseline_plan(grouper, "magnitude", rho, tol, seed)  # the widths only
        small = prune_physically(agent, plan, components)
        names = list(grouper.components)
        _reinitialise(small, names, seed)
        observations, actions = visited.states()
        distill(agent, small, observations, actions, components=names, steps=steps,
                seed=seed)
        return small, plan.sparsity

    return method
