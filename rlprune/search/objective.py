"""Objectives of the coefficient search: a task metric of the masked agent, higher is better.

An objective receives the agent with a plan's masks applied (no copy per candidate) and
returns a ``Score``. Controllers use mean episode return from the closed-loop evaluator;
the autoencoder uses PSNR on held-out images; users may pass any callable with the same
signature.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import stats as scipy_stats

from rlprune.adapters.base import AgentAdapter, ReconstructionAdapter
from rlprune.analysis.evaluate import ClosedLoopEvaluator, EvalResult, StateRecorder
from rlprune.analysis.perturbation_sets import perturbation_points
from rlprune.settings import Evaluation

__all__ = ["OBJECTIVES", "Objective", "PSNRObjective", "PerturbedReturnObjective",
           "ReturnObjective", "Score", "aggregate", "objective_for", "register_objective"]


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
    complete: bool = True
    """False when racing stopped the measurement early: ``value`` is then a partial
    estimate, known (with confidence) to be worse than the incumbent's."""
    env_steps_saved: int = 0
    """Env steps racing did not spend (skipped episodes x the mean episode's steps)."""


class Objective(ABC):
    """``objective(agent) -> Score`` on an agent whose masks are already set.

    Every member the searches, executors and fine-tuning use is declared here; a new
    objective subclasses this and fills in the three abstract methods.
    """

    closed_loop: bool = False
    """The visited states depend on the agent (episodes, not a fixed dataset): the
    gradient surrogate and fine-tuning refresh them with a pruned candidate's own."""
    physical: bool = False
    """Score candidates physically pruned rather than masked (faster where the smaller
    networks run many times, as in a planner)."""
    races: bool = False
    """``__call__`` uses the incumbent's ``Score`` to stop early on candidates that
    cannot beat it."""

    @abstractmethod
    def __call__(self, agent: AgentAdapter, incumbent: Score | None = None) -> Score:
        """The agent's score (``incumbent`` is only read by racing objectives)."""

    @abstractmethod
    def describe(self) -> dict:
        """What the scores depend on: saved with resumable state, so a resumed run does
        not mix other settings' scores in."""

    @abstractmethod
    def scored_states(self, agent: AgentAdapter) -> tuple[Score, np.ndarray, np.ndarray | None]:
        """The agent's score and the inputs it was scored on (observations, and the
        actions taken where the agent acts): data-aware criteria, the gradient surrogate
        and fine-tuning learn from them, and the rollout counts as the evaluation."""

    def visited_states(self, agent: AgentAdapter) -> tuple[np.ndarray, np.ndarray | None, int]:
        """Observations, actions (or None) and the env steps they cost."""
        score, observations, actions = self.scored_states(agent)
        return observations, actions, score.env_steps


class ReturnObjective(Objective):
    """Mean episode return over the evaluator's seeded episodes (common random numbers).

    A candidate with a failed episode (non-finite action or reward) scores -inf.

    With ``race=True`` a candidate runs ``chunk`` episodes at a time and stops as soon
    as a one-sided paired t-test on the episodes played so far says, at ``confidence``,
    that it is worse than the incumbent on the same episodes (racing; common random
    numbers make the paired differences far less noisy than the returns themselves).
    A candidate that is not clearly worse plays every episode.

    Args:
        evaluator: the episodes.
        race: stop clearly worse candidates early.
        chunk: episodes per racing round (the first round plays at least 2).
        confidence: one-sided confidence of "worse than the incumbent".
    """

    closed_loop = True
    physical = True
    """Candidates are scored physically pruned: a copy costs little beside episodes of
    smaller, faster networks."""

    def __init__(self, evaluator: ClosedLoopEvaluator, race: bool = False, chunk: int = 2,
                 confidence: float = 0.95) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1 episode, got {chunk}")
        if not 0.5 <= confidence < 1:
            raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
        self.evaluator, self.races = evaluator, race
        self.chunk, self.confidence = chunk, confidence

    @classmethod
    def for_agent(cls, agent: AgentAdapter, episodes: int, seed: int = 0,
                  max_episode_steps: int | None = None, race: bool = False,
                  env: str | None = None) -> ReturnObjective:
        """Seeded episodes on the agent's own task (or ``env``), at its action repeat."""
        return cls(ClosedLoopEvaluator.for_agent(agent, env, episodes=episodes, seed=seed,
                                                 max_episode_steps=max_episode_steps),
                   race=race)

    def __call__(self, agent: AgentAdapter, incumbent: Score | None = None) -> Score:
        total = self.evaluator.episodes
        reference = None if incumbent is None else incumbent.details.get("returns")
        if not self.races or reference is None or len(reference) != total:
            return self._score(self.evaluator.evaluate(agent), total)
        returns, lengths, env_steps, wall = [], [], 0, 0.0
        start = 0
        while start < total:
            stop = min(total, start + max(self.chunk, 2 if start == 0 else 1))
            part = self.evaluator.evaluate(agent, episodes=range(start, stop))
            if part.any_failed:
                return self._score(part, total, env_steps=env_steps + part.env_steps)
            returns += part.returns.tolist()
            lengths += part.lengths.tolist()
            env_steps += part.env_steps
            wall += part.wall_time
            start = stop
            if start < total and self._clearly_worse(returns, reference[:start]):
                break
        result = EvalResult(np.asarray(returns), np.asarray(lengths),
                            self.evaluator.seeds[:start], np.zeros(start, dtype=bool),
                            env_steps, wall)
        return self._score(result, total)

    def describe(self) -> dict:
        """What the scores depend on (a resumed run must not mix other settings in)."""
        e = self.evaluator
        described = {"metric": "return", "env": e.env_spec, "episodes": e.episodes,
                     "seed": e.seed,
                     **{k: v for k, v in e.options.items() if k != "perturb_seed"}}
        if e.env_kwargs:  # only when set: run states written before stay resumable
            described["env_kwargs"] = e.env_kwargs
        if e.threads != 1:  # the same, for a thread count other than the default
            described["threads"] = e.threads
        return described

    def _clearly_worse(self, returns: list[float], reference: list[float]) -> bool:
        diff = np.asarray(returns) - np.asarray(reference)
        n = len(diff)
        if n < 2:
            return False
        bound = diff.mean() + scipy_stats.t.ppf(self.confidence, n - 1) * \
            diff.std(ddof=1) / np.sqrt(n)
        return bool(bound < 0)

    @staticmethod
    def _score(result: EvalResult, total: int, env_steps: int | None = None) -> Score:
        played = len(result.returns)
        steps = result.env_steps if env_steps is None else env_steps
        value = float("-inf") if result.any_failed else result.mean
        saved = 0 if result.any_failed else (total - played) * steps // max(played, 1)
        return Score(value, result.ci95, steps, {"returns": result.returns.tolist()},
                     complete=played == total and not result.any_failed,
                     env_steps_saved=saved)

    def scored_states(self, agent: AgentAdapter) -> tuple[Score, np.ndarray, np.ndarray]:
        """``agent``'s score, and its observations and actions in the same episodes."""
        score, recorder = self._recorded(agent)
        return (score, *recorder.arrays())

    def scored_trajectories(self, agent: AgentAdapter) -> tuple[Score, list]:
        """``agent``'s score and, per episode, its (observations, actions) in time order
        (what stability analyses follow)."""
        score, recorder = self._recorded(agent)
        return score, recorder.trajectories()

    def _recorded(self, agent: AgentAdapter) -> tuple[Score, StateRecorder]:
        recorder = StateRecorder()
        result = self.evaluator.evaluate(agent, recorder)
        return self._score(result, self.evaluator.episodes), recorder


class PSNRObjective(Objective):
    """Reconstruction PSNR (dB) of a ``ReconstructionAdapter`` on fixed held-out images."""

    def __init__(self, images: torch.Tensor, split: str | None = None) -> None:
        self.images, self.split = images, split

    def __call__(self, agent: ReconstructionAdapter, incumbent: Score | None = None) -> Score:
        return Score(agent.psnr(self.images))

    def describe(self) -> dict:
        described = {"metric": "psnr", "images": len(self.images),
                     "checksum": float(self.images.double().sum())}
        if self.split:  # only when named: run states written before stay resumable
            described["split"] = self.split
        return described

    def scored_states(self, agent: AgentAdapter) -> tuple[Score, np.ndarray, None]:
        return self(agent), self.images.numpy(), None


# Episode return over a set of perturbed systems, aggregated: what a robustness study wants
# a search to keep, not the nominal return alone. Every candidate plays the same episodes
# on the same perturbations (common random numbers).


def aggregate(values: np.ndarray, how: str) -> float:
    """``mean``, ``worst`` or ``cvar:ALPHA`` (ALPHA in (0, 1]) of per-system returns.

    Raises:
        ValueError: another aggregate.
    """
    values = np.sort(np.asarray(values, dtype=np.float64))
    if how == "mean":
        return float(values.mean())
    if how == "worst":
        return float(values[0])
    name, _, alpha = how.partition(":")
    try:
        share = float(alpha)
    except ValueError:
        share = -1.0
    if name != "cvar" or not 0 < share <= 1:
        raise ValueError(f"aggregate must be mean, worst or cvar:ALPHA with ALPHA in (0, 1], "
                         f"got {how!r}")
    return float(values[: max(1, math.ceil(share * len(values)))].mean())


class PerturbedReturnObjective(Objective):
    """Aggregated mean returns of the same seeded episodes on every perturbed system.

    Args:
        evaluators: one per perturbation (same episodes and seed).
        how: ``mean``, ``worst`` or ``cvar:ALPHA``.
    """

    closed_loop = True
    physical = True

    def __init__(self, evaluators: list[ClosedLoopEvaluator], how: str = "mean") -> None:
        aggregate(np.zeros(1), how)  # a bad aggregate fails before any episode
        self.parts = [ReturnObjective(e) for e in evaluators]
        self.how = how

    def __call__(self, agent: AgentAdapter, incumbent: Score | None = None) -> Score:
        scores = [part(agent) for part in self.parts]
        return self._combine(scores)

    def _combine(self, scores: list[Score]) -> Score:
        means = [s.value for s in scores]
        return Score(aggregate(np.asarray(means), self.how), 0.0,
                     sum(s.env_steps for s in scores),
                     {"per_perturbation": means,
                      "returns": [r for s in scores for r in s.details.get("returns", [])]},
                     complete=all(s.complete for s in scores))

    def describe(self) -> dict:
        return {"metric": "return", "aggregate": self.how,
                "perturbations": [p.describe() for p in self.parts]}

    def scored_states(self, agent: AgentAdapter):
        parts = [part.scored_states(agent) for part in self.parts]
        actions = [a for _, _, a in parts]
        return (self._combine([s for s, _, _ in parts]),
                np.concatenate([o for _, o, _ in parts]),
                None if any(a is None for a in actions) else np.concatenate(actions))

ObjectiveFactory = Callable[[AgentAdapter, Evaluation], Objective]
OBJECTIVES: dict[str, ObjectiveFactory] = {}
"""Objectives by metric name (``AgentAdapter.metric.name``): how to score an agent."""


def register_objective(name: str, factory: ObjectiveFactory) -> None:
    """Makes ``factory(agent, evaluation)`` the objective of agents whose metric is
    ``name`` (and of ``--objective NAME``)."""
    OBJECTIVES[name] = factory


def objective_for(agent: AgentAdapter, evaluation: Evaluation,
                  name: str | None = None) -> Objective:
    """The objective ``name`` (default: the agent's own metric) for ``agent``.

    Raises:
        ValueError: no objective of that name.
    """
    name = name or agent.metric.name
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose one of {list(OBJECTIVES)}")
    return OBJECTIVES[name](agent, evaluation)


def _psnr_objective(agent: AgentAdapter, evaluation: Evaluation) -> PSNRObjective:
    if not isinstance(agent, ReconstructionAdapter):
        raise TypeError(f"{agent.kind} agent does not reconstruct images: no PSNR to score")
    return PSNRObjective(agent.evaluation_images(evaluation.split), evaluation.split)


def _return_objective(agent: AgentAdapter, e: Evaluation) -> Objective:
    if e.perturb is None:
        return ReturnObjective.for_agent(agent, e.episodes, e.seed, e.max_episode_steps,
                                         e.race, e.env)
    # Checks on other episodes (held-out, validation) score perturbations the search never saw.
    points = perturbation_points(e.perturb, e.seed, unseen=e.split != "search")
    return PerturbedReturnObjective([ClosedLoopEvaluator.for_agent(
        agent, e.env, episodes=e.episodes, seed=e.seed, max_episode_steps=e.max_episode_steps,
        perturb=point) for point in points], e.aggregate)


register_objective("return", _return_objective)
register_objective("psnr", _psnr_objective)
