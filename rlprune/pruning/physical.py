"""Physical pruning: remove the planned channels so the networks really get smaller."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch_pruning as tp
from torch import nn

from rlprune.adapters.base import AgentAdapter
from rlprune.layers import channelwise_layer
from rlprune.pruning.channelwise import ChannelwisePruner
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.ranking import PruningPlan
from rlprune.pruning.recurrent import LSTM_PRUNER

__all__ = ["prune_physically"]

_HANDLERS = {"out": tp.prune_linear_out_channels, "in": tp.prune_linear_in_channels,
             "norm": tp.prune_layernorm_out_channels}
_CONV_HANDLERS = {"out": tp.prune_conv_out_channels, "in": tp.prune_conv_in_channels}


def _prune(module, role: str, idxs: list[int]) -> None:
    if role == "channel":
        ChannelwisePruner(channelwise_layer(module)).prune_out_channels(module, idxs)
    elif isinstance(module, nn.LSTM):
        (LSTM_PRUNER.prune_in_channels if role == "in" else LSTM_PRUNER.prune_out_channels)(
            module, idxs)
    elif isinstance(module, nn.modules.conv._ConvNd):
        _CONV_HANDLERS[role](module, idxs)
    else:
        _HANDLERS[role](module, idxs)


def prune_physically(agent: AgentAdapter, plan: PruningPlan | Mapping[str, Sequence[int]],
                     components: list[str] | None = None) -> AgentAdapter:
    """A pruned copy of ``agent``: the plan's channels removed from every layer they touch.

    ``plan`` is a ``PruningPlan`` or just its ``removed`` map (group id -> channels).

    Groups are rebuilt on the copy and matched by id, so the plan may come from any
    grouper over the same components (and interfaces). All removals of one layer are
    applied in one call, so groups that share a layer cannot shift each other's indices.
    A pruned interface is recorded in ``meta["interface_index"]``: the dense channels
    it keeps, which latent stability needs to compare the pruned latent with the dense
    one. The pruned agent records its new widths in its own configuration
    (``record_widths``). The original agent is not touched.

    Raises:
        ValueError: the plan names a group the agent does not have, or empties a group.
    """
    removed = plan.removed if isinstance(plan, PruningPlan) else plan
    interfaces = [gid.split("/", 1)[1] for gid in removed if gid.startswith("interface/")]
    pruned = agent.clone()
    grouper = ComponentGrouper(pruned, components, interfaces=interfaces)
    by_id = {g.id: g for g in grouper.groups}
    unknown = set(removed) - set(by_id)
    if unknown:
        raise ValueError(f"plan removes channels of unknown groups {sorted(unknown)}")
    removals: dict[tuple[str, str, str], set[int]] = {}
    for gid, idxs in removed.items():
        group = by_id[gid]
        if len(idxs) >= group.channels:
            raise ValueError(f"plan removes every channel of {gid}")
        for ref in group.layers:
            removals.setdefault((ref.component, ref.name, ref.role), set()).update(
                ref.indices(idxs))
        if group.component == "interface":
            _record_interface(pruned, gid.split("/", 1)[1], group.channels, idxs)
    for (component, name, role), idxs in removals.items():
        module = grouper.components[component].module.get_submodule(name)
        _prune(module, role, sorted(idxs))
    pruned.record_widths()
    return pruned


def _record_interface(agent: AgentAdapter, name: str, width: int, removed) -> None:
    """Composes the kept-channel index with any earlier pruning of the same interface."""
    index = agent.meta.get("interface_index", {})
    gone = set(removed)
    kept = [dense for i, dense in enumerate(index.get(name, range(width))) if i not in gone]
    agent.meta["interface_index"] = {**index, name: kept}
