"""The baseline that answers "why prune?": a small dense network of the pruned size.

The network has exactly the widths global magnitude pruning leaves at the same sparsity
(the same parameter count), but its weights start afresh and are distilled from the dense
agent on the dense agent's visited states: what a user could get without pruning, by
training a smaller model against the big one (as distilled students are). A sweep row
``distill-small`` beside the searches' rows shows whether keeping trained weights helps.
``scratch-small`` rows show small dense agents the user trained from scratch (too slow to
train inside a sweep: ``scripts/train_sb3.py --actor-arch``, ``TrainConfig.widths_of``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from rlprune.adapters import load_agent
from rlprune.adapters.base import AgentAdapter
from rlprune.finetune import distill
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.physical import prune_physically
from rlprune.search import baseline_plan
from rlprune.search.visited import VisitedInputs
from rlprune.sweep import ExtraMethod

__all__ = ["SCRATCH_SMALL", "SMALL_DENSE", "TrainedSmallAgents", "small_dense_baseline"]

SMALL_DENSE = "distill-small"
"""The sweep method name of the baseline."""
SCRATCH_SMALL = "scratch-small"
"""The sweep method name of small agents trained from scratch."""


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


@dataclass(frozen=True)
class TrainedSmallAgents:
    """A sweep method whose agent at sparsity ``rho`` is a file the user trained from
    scratch (``files[rho]``, read by ``load``: the CLI's loader gives it the dense agent's
    task and planner); its sparsity is its parameter count against the dense agent's, over
    the components the sweep prunes."""

    files: Mapping[float, Path]
    load: Callable[[Path], AgentAdapter] = load_agent

    @classmethod
    def parse(cls, specs: list[str], load: Callable[[Path], AgentAdapter] = load_agent
              ) -> TrainedSmallAgents:
        """From ``["0.5=small.pt", ...]`` (the ``--scratch`` options)."""
        files = {}
        for spec in specs:
            rho, sep, path = spec.partition("=")
            try:
                files[float(rho)] = Path(path)
            except ValueError:
                sep = ""
            if not sep or not path:
                raise ValueError(f"--scratch takes RHO=PATH (e.g. 0.5=runs/small/agent.pt), "
                                 f"got {spec!r}")
        return cls(files, load)

    def check(self, sparsities: list[float]) -> None:
        """Refuses, before any work, a sweep target without a file or a missing file."""
        missing = [rho for rho in sparsities if rho not in self.files]
        if missing:
            raise ValueError(f"{SCRATCH_SMALL} has no trained agent for sparsities {missing} "
                             f"(give one per target: RHO=PATH)")
        absent = [str(path) for path in self.files.values() if not Path(path).exists()]
        if absent:
            raise FileNotFoundError(f"no trained small agent at {', '.join(absent)}")

    def __call__(self, agent: AgentAdapter, rho: float, seed: int) -> tuple[AgentAdapter,
                                                                              float]:
        small = self.load(self.files[rho])
        names = list(ComponentGrouper(agent).components)

        def params(of: AgentAdapter) -> int:
            return sum(p.numel() for name in names
                       for p in of.components()[name].module.parameters())

        return small, 1 - params(small) / params(agent)
