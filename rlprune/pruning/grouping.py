"""Component-aware pruning groups on torch-pruning's dependency graph (arXiv 2507.14882, step 1).

One DependencyGraph is traced **per component**, so a group never couples networks that
only meet through an interface tensor (latent, action). Each group is labelled with its
component, its layers and the parameters and FLOPs one of its channels carries.

Interface widths are protected by default. On request, a prunable interface (a world
model's latent, an autoencoder's code) becomes one *interface group*: the producers'
output channels and the consumers' input columns, joined across the component graphs,
so every network that writes or reads the latent drops the same dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn
from torch_pruning import _helpers as tp_helpers

from rlprune.adapters.base import AgentAdapter, Component
from rlprune.pruning.channelwise import channelwise_pruners, is_channelwise_handler
from rlprune.pruning.modes import evaluation
from rlprune.pruning.recurrent import LSTM_PRUNER

__all__ = ["ComponentGrouper", "LayerRef", "PruningGroup"]

_OUT_FNS = (tp.prune_linear_out_channels, tp.prune_conv_out_channels)
_IN_FNS = (tp.prune_linear_in_channels, tp.prune_conv_in_channels,
           LSTM_PRUNER.prune_in_channels)
_ROOTS = [nn.Linear, nn.Conv1d, nn.Conv2d, nn.LSTM]
"""Layers whose output channels define a group."""
_NORM_FNS = (tp.prune_layernorm_out_channels,)


@dataclass(frozen=True)
class LayerRef:
    """How one layer takes part in a group: the channel dimension it loses.

    Args:
        component: the component holding the layer.
        name: module name inside the component.
        role: ``"out"`` (Linear rows, convolution filters), ``"in"`` (Linear columns,
            convolution input channels), ``"norm"`` (LayerNorm), ``"channel"`` (a
            channelwise layer, ``rlprune.layers``) or ``"recurrent"`` (LSTM hidden units).
        idxs: the layer's channel indices, aligned with the group's channels unless
            ``roots`` says otherwise.
    """

    component: str
    name: str
    role: str
    idxs: tuple[int, ...]
    roots: tuple[int, ...] = ()
    """The group channel each of ``idxs`` belongs to (a Linear after a flatten reads
    height x width inputs of each convolution channel); empty: ``idxs`` are aligned."""

    def indices(self, channels) -> list[int]:
        """The layer's indices that carry the given group channels."""
        if not self.roots:
            return [self.idxs[c] for c in channels]
        chosen = set(channels)
        return [i for i, root in zip(self.idxs, self.roots) if root in chosen]

    def spread(self, channels: int) -> int:
        """The layer's indices per group channel."""
        return len(self.idxs) // channels


@dataclass
class PruningGroup:
    """Channels that must be removed together, within one component.

    Args:
        id: ``"component/root_layer"`` (``"interface/name"`` for an interface group),
            stable across copies of the agent.
        component: component name (``"interface"`` for an interface group).
        root: module name of the layer whose output channels define the group.
        channels: number of prunable channels.
        layers: every layer the group touches.
        unit: channels are removed in aligned blocks of this size.
        tp_group: torch-pruning group over all channels (importance criteria read it).
    """

    id: str
    component: str
    root: str
    channels: int
    layers: tuple[LayerRef, ...]
    unit: int = 1
    tp_group: object = field(repr=False, default=None)


class ComponentGrouper:
    """Builds the pruning groups of an agent's components.

    Args:
        agent: any ``AgentAdapter``.
        components: names to prune (default: the adapter's ``default_components`` if it
            declares them, else all of its components).
        interfaces: prunable interfaces (e.g. ``["latent"]``) to prune as interface
            groups; all their producers and consumers must be among ``components``.
    """

    def __init__(self, agent: AgentAdapter, components: list[str] | None = None,
                 interfaces: list[str] | tuple[str, ...] = ()) -> None:
        available = agent.components()
        if components is None:
            components = agent.default_components or list(available)
        names = list(components)
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ValueError(f"unknown components {unknown}; the agent has {list(available)}")
        if not names:
            raise ValueError("choose at least one component to prune")
        self.agent = agent
        self.components: dict[str, Component] = {n: available[n] for n in names}
        self.families = {n: c.family or n for n, c in self.components.items()}
        """Component -> the family whose coefficient it shares (its own name by default)."""
        self.graphs: dict[str, tp.DependencyGraph] = {}
        self.groups: list[PruningGroup] = []
        for component in self.components.values():
            self.groups.extend(self._component_groups(component))
        self.interfaces = tuple(interfaces)
        declared = {i.name: i for i in agent.interfaces}
        for name in interfaces:
            self.groups.append(self._interface_group(declared, name))
        if not self.groups:
            raise ValueError(f"{agent.kind} agent: {', '.join(names)} has no hidden units to "
                             "prune (a linear policy, or only protected layers)")

    def _component_groups(self, component: Component) -> list[PruningGroup]:
        module = component.module
        with evaluation(module), torch.enable_grad():
            graph = tp.DependencyGraph().build_dependency(
                module, example_inputs=component.example_input, verbose=False,
                customized_pruners={**channelwise_pruners(module), nn.LSTM: LSTM_PRUNER})
        self.graphs[component.name] = graph
        names = {m: n for n, m in module.named_modules()}
        groups = []
        for group in graph.get_all_groups(ignored_layers=list(component.output_layers),
                                          root_module_types=_ROOTS):
            root_module = group[0].dep.target.module
            refs = []
            for item in group:
                dep, idxs = item.dep, item.idxs
                role = _role(dep.handler)
                if role is None:
                    if any(True for _ in dep.target.module.parameters(recurse=False)):
                        raise ValueError(
                            f"{component.name}: layer {names[dep.target.module]} "
                            f"({type(dep.target.module).__name__}) is coupled to a pruning "
                            "group; rlprune prunes Linear, LayerNorm and channelwise layers "
                            "(rlprune.layers) only")
                    continue
                refs.append(LayerRef(component.name, names[dep.target.module], role,
                                     tuple(int(i) for i in idxs), _roots(item)))
            channels = len(group[0].idxs)
            root = names[root_module]
            groups.append(PruningGroup(f"{component.name}/{root}", component.name, root,
                                       channels, tuple(refs), tp_group=group))
        return groups

    def _interface_group(self, declared: dict, name: str) -> PruningGroup:
        """Producers' output layers and consumers' first Linears, joined on one channel axis."""
        interface = declared.get(name)
        if interface is None or not interface.prunable:
            prunable = [n for n, i in declared.items() if i.prunable]
            raise ValueError(f"{self.agent.kind} agent has no prunable interface {name!r}; "
                             f"prunable interfaces: {prunable or 'none'}")
        missing = [c for c in (*interface.producers, *interface.consumers)
                   if c not in self.components]
        if missing:
            raise ValueError(f"pruning interface {name!r} changes components {missing}: "
                             "prune them too")
        if interface.width % interface.unit or interface.width <= interface.unit:
            raise ValueError(f"interface {name!r} of width {interface.width} cannot lose "
                             f"blocks of {interface.unit}")
        anchors = []
        for cname in interface.producers:
            module = self._output_layer(cname, interface.width)
            anchors.append((cname, module, tp.prune_linear_out_channels, 0))
        for cname in interface.consumers:
            first = next(m for m in self.components[cname].module.modules()
                         if isinstance(m, nn.Linear))
            anchors.append((cname, first, tp.prune_linear_in_channels, interface.offset))
        merged, refs = tp.dependency.Group(), []
        for cname, module, handler, offset in anchors:
            names = {m: n for n, m in self.components[cname].module.named_modules()}
            idxs = list(range(offset, offset + interface.width))
            for item in self.graphs[cname].get_pruning_group(module, handler, idxs=idxs):
                role = _role(item.dep.handler)
                if role is not None:
                    # Channel positions along the interface, whichever anchor found it.
                    joined = tp_helpers.GroupItem(item.dep, item.idxs)
                    joined.root_idxs = [r - offset for r in item.root_idxs]
                    merged.items.append(joined)
                    refs.append(LayerRef(cname, names[item.dep.target.module], role,
                                         tuple(int(i) for i in item.idxs), _roots(joined)))
        root_component, root_module = anchors[0][0], anchors[0][1]
        root = self.components[root_component].module
        root_name = next(n for n, m in root.named_modules() if m is root_module)
        return PruningGroup(f"interface/{name}", "interface", f"{root_component}/{root_name}",
                            interface.width, tuple(refs), interface.unit, merged)

    def _output_layer(self, cname: str, width: int) -> nn.Module:
        layers = [m for m in self.components[cname].output_layers
                  if isinstance(m, nn.Linear) and m.out_features == width]
        if len(layers) != 1:
            raise ValueError(f"component {cname!r} has no single output layer of width {width}")
        return layers[0]

    def module(self, ref: LayerRef) -> nn.Module:
        return self.components[ref.component].module.get_submodule(ref.name)

    def root_module(self, group: PruningGroup) -> nn.Module:
        """The layer whose output channels are the group's channels."""
        return self.module(group.layers[0])


def _roots(item) -> tuple[int, ...]:
    """The group channel of each index; empty where index ``j`` is channel ``j``."""
    roots = tuple(int(r) for r in item.root_idxs)
    return () if roots == tuple(range(len(roots))) else roots


def _role(handler) -> str | None:
    if handler in _OUT_FNS:
        return "out"
    if handler in _IN_FNS:
        return "in"
    if handler in _NORM_FNS:
        return "norm"
    if is_channelwise_handler(handler):
        return "channel"
    if handler == LSTM_PRUNER.prune_out_channels:
        return "recurrent"
    return None
