"""Stability as a constraint of the search: a candidate whose world model drifts too far
from the dense one, or whose closed loop grows too unstable, is rejected before it plays a
single episode.

Measured as ``analysis.stability.stability_report`` measures it, on the dense agent's own
trajectories of the search's episodes (recorded once): the multi-step dynamics rollout
error (its largest step) and the largest spectral radius of the policy-prior loop's Jacobian
at visited latents; for planners, optionally, that of the loop that acts (MPPI's). None
needs env steps, so a rejected candidate costs none.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlprune.adapters.base import AgentAdapter
from rlprune.analysis.stability import stability_report
from rlprune.search.objective import Objective, ReturnObjective, Score

__all__ = ["StabilityConstrained", "StabilityLimits"]


@dataclass(frozen=True)
class StabilityLimits:
    """Upper bounds a candidate must stay within (None: no bound)."""

    max_rollout_error: float | None = None
    max_jacobian_radius: float | None = None
    max_planner_radius: float | None = None
    """Bound on the spectral radius of the loop that acts, z' = d(z, MPPI(z)) (finite
    differences of the planner: about ten seconds per candidate on one CPU thread)."""

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")

    @property
    def any(self) -> bool:
        return any(value is not None for value in vars(self).values())

    def violations(self, stability: dict) -> dict[str, float]:
        """The measured values that break a bound."""
        measured = {"max_rollout_error": max(stability["rollout_error"]),
                    "max_jacobian_radius": stability["jacobian_radius_max"],
                    "max_planner_radius": stability.get("jacobian_radius_max_planner")}
        return {name: value for name, value in measured.items()
                if getattr(self, name) is not None and value > getattr(self, name)}


class StabilityConstrained(Objective):
    """``objective``'s score for candidates within ``limits``, ``-inf`` for the others.

    Args:
        objective: a nominal ``ReturnObjective`` (its episodes give the trajectories).
        dense: the dense agent the candidates are compared with.
        limits: the bounds.
        seed: seeds the stability samples.

    Raises:
        ValueError: not a nominal return objective, or an agent without a latent space.
    """

    def __init__(self, objective: Objective, dense: AgentAdapter, limits: StabilityLimits,
                 seed: int = 0) -> None:
        if not isinstance(objective, ReturnObjective):
            raise ValueError("stability constraints need the nominal return objective (no "
                             "--perturb, no other --objective)")
        self.objective, self.dense, self.limits, self.seed = objective, dense, limits, seed
        # candidates are physically pruned copies: the dense agent stays itself
        self.closed_loop, self.physical, self.races = True, True, objective.races
        _, self.trajectories = objective.scored_trajectories(dense)
        if dense.latent(self.trajectories[0][0][:1]) is None:
            raise ValueError(f"{dense.kind} agent has no latent space: --max-rollout-error "
                             "and --max-jacobian-radius constrain world models")
        if limits.max_planner_radius is not None and not hasattr(dense, "planner_action"):
            raise ValueError(f"{dense.kind} agent does not plan: --max-planner-radius "
                             "constrains the loop a planner acts in")

    def _rejected(self, agent: AgentAdapter) -> Score | None:
        # the acting loop only where bounded: it plans 16 latents 12 times per candidate
        samples = 0 if self.limits.max_planner_radius is None else 8
        stability = stability_report(self.dense, agent, self.trajectories, self.seed,
                                     planner_samples=samples)
        broken = self.limits.violations(stability)
        return Score(float("-inf"), details={"rejected": broken}) if broken else None

    def __call__(self, agent: AgentAdapter, incumbent: Score | None = None) -> Score:
        return self._rejected(agent) or self.objective(agent, incumbent)

    def describe(self) -> dict:
        return {**self.objective.describe(),
                "constraints": {k: v for k, v in vars(self.limits).items() if v is not None}}

    def scored_states(self, agent: AgentAdapter):
        return self.objective.scored_states(agent)
