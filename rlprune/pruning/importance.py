"""Base importance of each channel of a pruning group (before soft coefficients).

Criteria are torch-pruning ``Importance`` objects: ``criterion(tp_group) -> 1-D tensor``
with one raw score per channel, so they also work inside torch-pruning's own pruners.
Normalisation within a group happens in one place, ``rlprune.pruning.ranking``.

Data-aware criteria read ``ChannelStats``: statistics of the inputs that consumer layers
receive, measured on states the agent actually visits (closed-loop rollouts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn

from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.modes import evaluation

__all__ = [
    "CRITERIA",
    "ActivationImportance",
    "ChannelStats",
    "Criterion",
    "GradientImportance",
    "RandomImportance",
    "collect_channel_stats",
    "make_importance",
    "needs_stats",
    "register_criterion",
]


@dataclass
class ChannelStats:
    """Per consumer layer, per input channel: E|a|, E|a*g| and E[(a*g)^2].

    ``a`` is the input a Linear or convolution layer receives (a convolution's summed over
    positions), ``g`` the gradient of a random projection
    ``v . f(x)`` of the component's output with respect to it (``v ~ N(0, I)`` per
    sample). ``a*g`` is the first-order change of the output when the channel is
    removed, so E[(a*g)^2] estimates the output Fisher information of a channel mask.
    """

    mean_abs: dict[nn.Module, torch.Tensor] = field(default_factory=dict)
    taylor: dict[nn.Module, torch.Tensor] = field(default_factory=dict)
    fisher: dict[nn.Module, torch.Tensor] = field(default_factory=dict)
    samples: int = 0
    """Largest number of input rows seen by one component."""


def collect_channel_stats(
    grouper: ComponentGrouper,
    inputs: Mapping[str, torch.Tensor],
    seed: int = 0,
    chunk: int = 1024,
) -> ChannelStats:
    """Runs every grouped component on its inputs and records consumer-layer statistics.

    Args:
        grouper: the groups whose consumer layers are observed.
        inputs: component name -> input batch (e.g. ``agent.component_inputs`` on
            closed-loop states).
        seed: seeds the random output projections.
        chunk: batch size of one forward/backward pass.
    """
    generator = torch.Generator().manual_seed(seed)
    stats = ChannelStats()
    sums: dict[str, dict[nn.Module, torch.Tensor]] = {"abs": {}, "taylor": {}, "fisher": {}}
    for cname, component in grouper.components.items():
        if cname not in inputs:
            raise ValueError(f"no input batch for component {cname!r}")
        consumers = {grouper.module(r) for g in grouper.groups for r in g.layers
                     if r.component == cname and r.role == "in"}
        captured: dict[nn.Module, torch.Tensor] = {}

        def capture(module, args, _store=captured):
            x = args[0]
            x.retain_grad()
            _store[module] = x

        handles = [m.register_forward_pre_hook(capture) for m in consumers]
        batch = inputs[cname].detach().float()
        try:
            with evaluation(component.module):
                for start in range(0, batch.shape[0], chunk):
                    x = batch[start:start + chunk].clone().requires_grad_(True)
                    out = component.module(x)
                    projection = torch.randn(out.shape, generator=generator)
                    component.module.zero_grad(set_to_none=True)
                    (out * projection).sum().backward()
                    for module, a in captured.items():
                        ag = (a * a.grad).detach()
                        for key, value in (("abs", a.detach().abs()), ("taylor", ag.abs()),
                                           ("fisher", ag.pow(2))):
                            sums[key][module] = sums[key].get(module, 0) + \
                                _per_channel(module, value)
        finally:
            for h in handles:
                h.remove()
            component.module.zero_grad(set_to_none=True)
        count = batch.shape[0]
        stats.samples = max(stats.samples, count)
        for module in consumers:
            stats.mean_abs[module] = sums["abs"][module] / count
            stats.taylor[module] = sums["taylor"][module] / count
            stats.fisher[module] = sums["fisher"][module] / count
    return stats


def _per_channel(module: nn.Module, value: torch.Tensor) -> torch.Tensor:
    """A statistic of a layer's input summed per input channel (the last axis of a
    Linear's input, axis 1 of a convolution's, over every position)."""
    if isinstance(module, nn.modules.conv._ConvNd):
        value = value.transpose(1, -1)
    return value.reshape(-1, value.shape[-1]).sum(0)


def _consumer_items(group):
    """(module, idxs, root_idxs) for each layer of the group that reads the channels."""
    for item in group:
        if item.dep.handler in (tp.prune_linear_in_channels, tp.prune_conv_in_channels):
            yield item.dep.target.module, item.idxs, item.root_idxs


def _outgoing_norm(module: nn.Module, idxs) -> torch.Tensor:
    """Norm of the weights that read each of the input channels ``idxs``."""
    return module.weight.transpose(0, 1)[idxs].flatten(1).norm(dim=1)


class _StatImportance(tp.importance.Importance):
    """Averages a per-input-channel statistic over a group's consumer layers."""

    def __init__(self, table: dict[nn.Module, torch.Tensor], weighted: bool = False) -> None:
        self.table, self.weighted = table, weighted

    @torch.no_grad()
    def __call__(self, group) -> torch.Tensor:
        n = len(group[0].idxs)
        total, count = torch.zeros(n), 0
        for module, idxs, root_idxs in _consumer_items(group):
            if module not in self.table:
                continue
            score = self.table[module][idxs]
            if self.weighted:
                score = score * _outgoing_norm(module, idxs)
            total.scatter_add_(0, torch.as_tensor(root_idxs), score)
            count += 1
        if count == 0:
            raise ValueError("no channel statistics for this group: collect them on the "
                             "same components first (collect_channel_stats)")
        return total / count


class ActivationImportance(_StatImportance):
    """Mean |activation| a channel feeds to the next layer on visited states; with
    ``weighted=True``, times the norm of the outgoing weights that read it."""

    def __init__(self, stats: ChannelStats, weighted: bool = False) -> None:
        super().__init__(stats.mean_abs, weighted)


class GradientImportance(_StatImportance):
    """First-order Taylor (E|a*g|) or Fisher (E[(a*g)^2]) importance of a channel."""

    def __init__(self, stats: ChannelStats, kind: str = "taylor") -> None:
        if kind not in ("taylor", "fisher"):
            raise ValueError(f"kind must be 'taylor' or 'fisher', got {kind!r}")
        super().__init__(stats.taylor if kind == "taylor" else stats.fisher)


class RandomImportance(tp.importance.Importance):
    """Uniform random scores from a seeded generator (the random baseline)."""

    def __init__(self, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, group) -> torch.Tensor:
        return torch.rand(len(group[0].idxs), generator=self.generator)


@dataclass(frozen=True)
class Criterion:
    """A base importance criterion by name: how to build it and what it needs.

    Args:
        name: what ``--criterion`` takes.
        build: ``(stats, seed) -> Importance``; ``stats`` is None unless ``needs_stats``.
        needs_stats: the criterion reads ``ChannelStats`` of visited states (then the
            search first rolls out the dense agent to measure them).
        description: one line for help texts.
    """

    name: str
    build: Callable[[ChannelStats | None, int], tp.importance.Importance]
    needs_stats: bool = False
    description: str = ""


CRITERIA: dict[str, Criterion] = {}
"""Registered criteria by name (a new one: ``register_criterion``; the CLI lists them)."""


def register_criterion(criterion: Criterion) -> Criterion:
    """Adds a criterion (a later one under the same name replaces the earlier)."""
    CRITERIA[criterion.name] = criterion
    return criterion


for _p in (1, 2):
    register_criterion(Criterion(
        f"l{_p}", lambda stats, seed, p=_p: tp.importance.GroupMagnitudeImportance(
            p=p, normalizer=None), description=f"L{_p} norm of a group's weights"))
register_criterion(Criterion("random", lambda stats, seed: RandomImportance(seed),
                             description="seeded uniform random scores"))
register_criterion(Criterion("activation", lambda stats, seed: ActivationImportance(stats),
                             True, "mean |activation| on visited states"))
register_criterion(Criterion(
    "activation_weight", lambda stats, seed: ActivationImportance(stats, weighted=True), True,
    "mean |activation| times the norm of the weights that read it"))
for _kind in ("taylor", "fisher"):
    register_criterion(Criterion(_kind, lambda stats, seed, k=_kind: GradientImportance(stats, k),
                                 True, f"{_kind} score of a channel mask on visited states"))


def make_importance(name: str, stats: ChannelStats | None = None, seed: int = 0):
    """A registered criterion by name (``CRITERIA``), built for these statistics and seed.

    Raises:
        ValueError: unknown name, or a data-aware criterion without ``stats``.
    """
    if name not in CRITERIA:
        raise ValueError(f"unknown importance {name!r}; choose one of {', '.join(CRITERIA)}")
    criterion = CRITERIA[name]
    if criterion.needs_stats and stats is None:
        raise ValueError(f"importance {name!r} needs channel statistics from visited states")
    return criterion.build(stats if criterion.needs_stats else None, seed)


def needs_stats(name: str) -> bool:
    """Whether a registered criterion reads statistics of visited states."""
    return name in CRITERIA and CRITERIA[name].needs_stats
