"""Physical pruning: remove the planned channels so the networks really get smaller."""

from __future__ import annotations

import torch_pruning as tp

from rlprune.adapters.base import AgentAdapter
from rlprune.grouping import ComponentGrouper
from rlprune.ranking import PruningPlan

__all__ = ["prune_physically"]


def prune_physically(agent: AgentAdapter, plan: PruningPlan,
                     components: list[str] | None = None) -> AgentAdapter:
    """A pruned copy of ``agent``: the plan's channels removed by torch-pruning.

    Groups are rebuilt on the copy and matched by id, so the plan may come from any
    grouper over the same components. The original agent is not touched.

    Raises:
        ValueError: the plan names a group the agent does not have.
    """
    pruned = agent.clone()
    grouper = ComponentGrouper(pruned, components)
    by_id = {g.id: g for g in grouper.groups}
    unknown = set(plan.removed) - set(by_id)
    if unknown:
        raise ValueError(f"plan removes channels of unknown groups {sorted(unknown)}")
    for gid, idxs in plan.removed.items():
        group = by_id[gid]
        if len(idxs) >= group.channels:
            raise ValueError(f"plan removes every channel of {gid}")
        root = grouper.module(group.component, group.root)
        graph = grouper.graphs[group.component]
        graph.get_pruning_group(root, tp.prune_linear_out_channels, idxs=list(idxs)).prune()
    return pruned
