"""Component-aware pruning groups on torch-pruning's dependency graph (arXiv 2507.14882, step 1).

One DependencyGraph is traced **per component**, so a group never couples networks that
only meet through an interface tensor (latent, action). Each group is labelled with its
component, its layers and the parameters and FLOPs one of its channels carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn

from rlprune.adapters.base import AgentAdapter, Component

__all__ = ["ComponentGrouper", "LayerRef", "PruningGroup"]

_OUT_FNS = (tp.prune_linear_out_channels,)
_IN_FNS = (tp.prune_linear_in_channels,)
_NORM_FNS = (tp.prune_layernorm_out_channels,)


@dataclass(frozen=True)
class LayerRef:
    """How one layer takes part in a group: the channel dimension it loses.

    Args:
        name: module name inside the component.
        role: ``"out"`` (Linear rows), ``"in"`` (Linear columns) or ``"norm"`` (LayerNorm).
        idxs: the layer's channel indices, aligned with the group's channels.
    """

    name: str
    role: str
    idxs: tuple[int, ...]


@dataclass
class PruningGroup:
    """Channels that must be removed together, within one component.

    Args:
        id: ``"component/root_layer"``, stable across copies of the agent.
        component: component name.
        root: module name of the layer whose output channels define the group.
        channels: number of prunable channels.
        layers: every layer the group touches.
    """

    id: str
    component: str
    root: str
    channels: int
    layers: tuple[LayerRef, ...]
    tp_group: object = field(repr=False, default=None)


class ComponentGrouper:
    """Builds the pruning groups of an agent's components.

    Args:
        agent: any ``AgentAdapter``.
        components: names to prune (default: the adapter's ``default_components`` if it
            declares them, else all of its components).
    """

    def __init__(self, agent: AgentAdapter, components: list[str] | None = None) -> None:
        available = agent.components()
        if components is None:
            components = getattr(agent, "default_components", None) or list(available)
        names = list(components)
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ValueError(f"unknown components {unknown}; the agent has {list(available)}")
        if not names:
            raise ValueError("choose at least one component to prune")
        self.agent = agent
        self.components: dict[str, Component] = {n: available[n] for n in names}
        self.graphs: dict[str, tp.DependencyGraph] = {}
        self.groups: list[PruningGroup] = []
        for component in self.components.values():
            self.groups.extend(self._component_groups(component))
        if not self.groups:
            raise ValueError(f"components {names} have no prunable hidden layers "
                             "(only protected output layers)")

    def _component_groups(self, component: Component) -> list[PruningGroup]:
        module = component.module
        was_training = module.training
        module.eval()
        with torch.enable_grad():
            graph = tp.DependencyGraph().build_dependency(
                module, example_inputs=component.example_input, verbose=False)
        module.train(was_training)
        self.graphs[component.name] = graph
        names = {m: n for n, m in module.named_modules()}
        groups = []
        for group in graph.get_all_groups(ignored_layers=list(component.output_layers),
                                          root_module_types=[nn.Linear]):
            root_module = group[0].dep.target.module
            refs = []
            for item in group:
                dep, idxs = item.dep, item.idxs
                role = _role(dep.handler)
                if role is None:
                    if any(True for _ in dep.target.module.parameters(recurse=False)):
                        raise NotImplementedError(
                            f"{component.name}: layer {names[dep.target.module]} "
                            f"({type(dep.target.module).__name__}) is coupled to a pruning "
                            "group; rlprune prunes Linear and LayerNorm layers only")
                    continue
                refs.append(LayerRef(names[dep.target.module], role, tuple(int(i) for i in idxs)))
            channels = len(group[0].idxs)
            root = names[root_module]
            groups.append(PruningGroup(f"{component.name}/{root}", component.name, root,
                                       channels, tuple(refs), group))
        return groups

    def module(self, component: str, name: str) -> nn.Module:
        return self.components[component].module.get_submodule(name)

    def summary(self) -> list[dict]:
        """One row per group: component, root layer, channels, layers, params and FLOPs."""
        from rlprune.accounting import group_costs

        costs = group_costs(self)
        return [{"group": g.id, "component": g.component, "channels": g.channels,
                 "layers": [f"{r.name}:{r.role}" for r in g.layers],
                 "params_per_channel": costs[g.id]["params"],
                 "flops_per_channel": costs[g.id]["flops"]} for g in self.groups]


def _role(handler) -> str | None:
    if handler in _OUT_FNS:
        return "out"
    if handler in _IN_FNS:
        return "in"
    if handler in _NORM_FNS:
        return "norm"
    return None
