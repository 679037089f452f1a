"""Soft coefficients -> one global channel ranking -> a plan that meets |s - rho| <= eps.

arXiv 2507.14882, step 2: every group ``g`` has a coefficient ``c_g``; a channel's score
is ``c_g`` times its base importance. Our choice (the paper's exact equation is not
public): the coefficient scales the importance *normalised to mean 1 within its group*,
as torch-pruning's own global pruner does by default. So all ``c_g = 1`` is exactly
torch-pruning's global magnitude pruning, and ``c_g = 2`` reads "channels of g count
twice as much as those of an average group".
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from rlprune.pruning.accounting import Cost, CostModel
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.settings import Target

__all__ = ["ChannelRanking", "Coefficients", "InfeasibleTarget", "Measure", "PruningPlan",
           "parameter_measure"]


class InfeasibleTarget(ValueError):
    """The requested sparsity cannot be met with the protected structure and granularity."""


class Coefficients:
    """One soft coefficient per group, as a tensor aligned with ``grouper.groups``.

    The tensor may require grad (gradient search); ``as_dict`` gives ``{group id: c}``.
    """

    def __init__(self, group_ids: list[str], values: torch.Tensor | None = None) -> None:
        self.group_ids = list(group_ids)
        self.values = torch.ones(len(group_ids)) if values is None else values
        if self.values.shape != (len(group_ids),):
            raise ValueError(f"need {len(group_ids)} coefficients, got shape "
                             f"{tuple(self.values.shape)}")
        if not torch.all(torch.isfinite(self.values.detach())) or (self.values < 0).any():
            raise ValueError("coefficients must be finite and >= 0")

    @classmethod
    def from_dict(cls, group_ids: list[str], mapping: Mapping[str, float],
                  default: float = 1.0) -> Coefficients:
        unknown = set(mapping) - set(group_ids)
        if unknown:
            raise ValueError(f"coefficients for unknown groups {sorted(unknown)}")
        return cls(group_ids, torch.tensor([float(mapping.get(g, default)) for g in group_ids]))

    def as_dict(self) -> dict[str, float]:
        return {g: float(v) for g, v in zip(self.group_ids, self.values.detach())}


@dataclass(frozen=True)
class Measure:
    """What a target counts: ``saving(removed counts)`` is the fraction of the dense cost
    a cut removes (parameters, FLOPs per control step, predicted step time...)."""

    name: str
    """``"params"``, ``"flops"``, ``"latency"``."""
    saving: Callable[[Mapping[str, int]], float]
    show: Callable[[float], str] = field(default=lambda v: f"sparsity {v:.3f}")
    """A saving as users read it (``"sparsity 0.500"``, ``"speed-up 2.00x"``)."""


def parameter_measure(costs: CostModel) -> Measure:
    """Parameter sparsity of the pruned components (the paper's target)."""
    return Measure("params", lambda counts: costs.sparsity(counts)[0])


@dataclass(frozen=True)
class PruningPlan:
    """Which channels of which group go, and what that saves.

    Args:
        removed: group id -> sorted channel indices (root layer outputs) to remove.
        sparsity: achieved parameter sparsity of the chosen components.
        flop_sparsity: achieved FLOP sparsity.
        cost: remaining parameters and FLOPs, total and per component.
        dense: the dense cost.
    """

    removed: dict[str, tuple[int, ...]]
    sparsity: float
    flop_sparsity: float
    cost: Cost
    dense: Cost
    measure: str = "params"
    """What the target counted."""
    achieved: float | None = None
    """The saving the target measure reached (the sparsity for ``params``)."""
    channels: dict[str, int] = field(default_factory=dict)
    """Group id -> its dense channel count (what the kept-channel plots show)."""

    def component_sparsity(self) -> dict[str, float]:
        return {c: 1 - self.cost.params_by_component[c] / n
                for c, n in self.dense.params_by_component.items()}

    def to_dict(self) -> dict:
        return {"removed": {g: list(i) for g, i in self.removed.items()},
                "sparsity": self.sparsity, "flop_sparsity": self.flop_sparsity,
                "params": self.cost.params, "dense_params": self.dense.params,
                "flops": self.cost.flops, "dense_flops": self.dense.flops,
                "step_flops": self.cost.step_flops, "dense_step_flops": self.dense.step_flops,
                "component_sparsity": self.component_sparsity(),
                "measure": self.measure,
                "achieved": self.sparsity if self.achieved is None else self.achieved,
                "channels": dict(self.channels)}


class ChannelRanking:
    """Ranks all channels of all groups globally and cuts at a target sparsity.

    Args:
        grouper: the groups.
        importance: group id -> raw per-channel importance.
        normalize: ``"mean"`` (default, see module doc) or ``None`` for raw scores.
        round_to: kept channels of each group are a multiple of this (1: no rounding);
            odd widths can run slower than dense ones on real runtimes. Groups with a
            block unit (a SimNorm latent) lose whole blocks instead.
        min_channels: channels each group keeps at least (a layer never vanishes).
        measure: what the target sparsity counts (default: parameters).
    """

    def __init__(self, grouper: ComponentGrouper, importance: Mapping[str, torch.Tensor],
                 normalize: str | None = "mean", round_to: int = 1,
                 min_channels: int = 1, measure: Measure | None = None) -> None:
        if normalize not in ("mean", None):
            raise ValueError(f"normalize must be 'mean' or None, got {normalize!r}")
        if round_to < 1 or min_channels < 1:
            raise ValueError("round_to and min_channels must be >= 1")
        self.grouper, self.round_to, self.min_channels = grouper, round_to, min_channels
        self.costs = CostModel(grouper)
        self.measure = measure or parameter_measure(self.costs)
        self.group_ids = [g.id for g in grouper.groups]
        self.channels = {g.id: g.channels for g in grouper.groups}
        self.units = {g.id: g.unit for g in grouper.groups}
        self.importance = {}
        for g in grouper.groups:
            imp = torch.as_tensor(importance[g.id], dtype=torch.float64).detach()
            if imp.shape != (g.channels,) or not torch.all(torch.isfinite(imp)):
                raise ValueError(f"importance of {g.id} must be {g.channels} finite numbers")
            if normalize == "mean":
                imp = imp / imp.mean().clamp(min=1e-12)
            self.importance[g.id] = imp

    def scores(self, coefficients: Coefficients) -> dict[str, torch.Tensor]:
        """c_g * importance for every channel (differentiable in the coefficients)."""
        return {g: c * self.importance[g].to(c.dtype)
                for g, c in zip(self.group_ids, coefficients.values)}

    def _unit_scores(self, coefficients: Coefficients) -> list[torch.Tensor]:
        """Per group, the mean score of each removable block (a single channel if unit 1)."""
        return [score.detach().double().reshape(-1, self.units[gid]).mean(-1)
                for gid, score in self.scores(coefficients).items()]

    def _order(self, coefficients: Coefficients) -> list[tuple[str, int]]:
        """Removable blocks, lowest score first; ties broken by group then block."""
        entries = []
        for gi, score in enumerate(self._unit_scores(coefficients)):
            gid = self.group_ids[gi]
            keep_blocks = math.ceil(self.min_channels / self.units[gid])
            keep = torch.argsort(score, descending=True, stable=True)[:keep_blocks]
            removable = torch.ones(len(score), dtype=torch.bool)
            removable[keep] = False
            entries += [(float(score[i]), gi, int(i)) for i in torch.nonzero(removable)[:, 0]]
        entries.sort()
        return [(self.group_ids[gi], block) for _, gi, block in entries]

    def _removed_counts(self, order: list[tuple[str, int]], k: int) -> dict[str, int]:
        """Channels removed per group when the first k blocks of ``order`` go."""
        counts: dict[str, int] = {}
        for gid, _ in order[:k]:
            counts[gid] = counts.get(gid, 0) + self.units[gid]
        if self.round_to > 1:
            for gid, n in counts.items():
                if self.units[gid] > 1:
                    continue  # block groups keep whole blocks already
                total = self.channels[gid]
                kept = min(total, math.ceil((total - n) / self.round_to) * self.round_to)
                counts[gid] = total - kept
        return counts

    @functools.cached_property
    def max_sparsity(self) -> float:
        """The measure's saving with every removable channel gone (the same for all
        coefficients)."""
        order = self._order(Coefficients(self.group_ids))
        return self.measure.saving(self._removed_counts(order, len(order)))

    def check_reachable(self, rho: float, eps: float) -> None:
        """Raises ValueError for rho or eps out of range, InfeasibleTarget if no
        coefficients can reach rho - eps."""
        Target(rho, eps)
        max_s, show = self.max_sparsity, self.measure.show
        if max_s < rho - eps:
            raise InfeasibleTarget(
                f"{show(rho)} (+- {eps:.3f}) is out of reach: the protected "
                f"structure (interface widths, {self.min_channels} channel(s) kept per "
                f"group) allows at most {show(max_s)}")

    def plan(self, coefficients: Coefficients, rho: float, eps: float) -> PruningPlan:
        """The plan whose parameter sparsity is closest to ``rho``, within ``eps``.

        Raises:
            ValueError: rho or eps out of range.
            InfeasibleTarget: no cut lands within eps; the message names what is reachable.
        """
        self.check_reachable(rho, eps)
        order = self._order(coefficients)

        def sparsity(k: int) -> float:
            return self.measure.saving(self._removed_counts(order, k))

        # smallest k with sparsity(k) >= rho (monotone in k); a target of nothing
        # removes nothing (a measured time table is not monotone in its last digits)
        lo, hi = 0, 0 if rho == 0 else len(order)
        while lo < hi:
            mid = (lo + hi) // 2
            if sparsity(mid) >= rho:
                hi = mid
            else:
                lo = mid + 1
        candidates = [k for k in (lo - 1, lo) if 0 <= k <= len(order)]
        best = min(candidates, key=lambda k: abs(sparsity(k) - rho))
        achieved = sparsity(best)
        if abs(achieved - rho) > eps:
            near = ", ".join(self.measure.show(v)
                             for v in sorted({round(sparsity(k), 4) for k in candidates}))
            raise InfeasibleTarget(
                f"no cut lands within {eps} of {self.measure.show(rho)}: the nearest "
                f"reachable are {near}; widen eps or lower round_to")
        counts = self._removed_counts(order, best)
        removed = {}
        for gid, score in zip(self.group_ids, self._unit_scores(coefficients)):
            unit, n = self.units[gid], counts.get(gid, 0)
            if n:
                lowest = torch.argsort(score, stable=True)[: n // unit]
                removed[gid] = tuple(sorted(b * unit + j for b in lowest.tolist()
                                            for j in range(unit)))
        cost = self.costs.cost(counts)
        param_s, flop_s = self.costs.sparsity(counts)
        return PruningPlan(removed, param_s, flop_s, cost, self.costs.dense,
                           self.measure.name, achieved,
                           {g.id: g.channels for g in self.grouper.groups})
