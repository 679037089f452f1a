"""Objectives of the coefficient search: a task metric of the masked agent, higher is better.

An objective receives the agent with a plan's masks applied (no copy per candidate) and
returns a ``Score``. Controllers use mean episode return from the closed-loop evaluator;
the autoencoder uses PSNR on held-out images; users may pass any callable with the same
signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch

from rlprune.adapters.base import AgentAdapter
from rlprune.evaluate import ClosedLoopEvaluator, StateRecorder

__all__ = ["Objective", "PSNRObjective", "ReturnObjective", "Score"]


@dataclass(frozen=True)
class Score:
    """One candidate's metric."""

    value: float
    """The metric (higher is better)."""
    ci95: float = 0.0
    """Half-width of its 95% confidence interval (0 for deterministic metrics)."""
    env_steps: int = 0
    """Environment steps spent measuring it."""
    details: dict = field(default_factory=dict)


class Objective(Protocol):
    """``objective(agent) -> Score`` on an agent whose masks are already set.

    ``surrogate_inputs`` gives the component inputs the gradient search fits on, and the
    env steps it cost to get them.
    """

    def __call__(self, agent: AgentAdapter) -> Score:
        ...

    def surrogate_inputs(self, agent: AgentAdapter) -> tuple[dict[str, torch.Tensor], int]:
        ...


class ReturnObjective:
    """Mean episode return over the evaluator's seeded episodes (common random numbers).

    A candidate with a failed episode (non-finite action or reward) scores -inf.
    """

    def __init__(self, evaluator: ClosedLoopEvaluator) -> None:
        self.evaluator = evaluator

    def __call__(self, agent: AgentAdapter) -> Score:
        result = self.evaluator.evaluate(agent)
        value = float("-inf") if result.any_failed else result.mean
        return Score(value, result.ci95, result.env_steps, {"returns": result.returns.tolist()})

    def surrogate_inputs(self, agent: AgentAdapter) -> tuple[dict[str, torch.Tensor], int]:
        """Component inputs on the states the (dense) agent visits in the same episodes."""
        recorder = StateRecorder()
        result = self.evaluator.evaluate(agent, recorder)
        return agent.component_inputs(*recorder.arrays()), result.env_steps


class PSNRObjective:
    """Reconstruction PSNR (dB) of an autoencoder adapter on fixed held-out images."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __call__(self, agent: AgentAdapter) -> Score:
        return Score(agent.psnr(self.images))

    def surrogate_inputs(self, agent: AgentAdapter) -> tuple[dict[str, torch.Tensor], int]:
        return agent.component_inputs(self.images), 0
