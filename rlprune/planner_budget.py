"""A cheaper planner as part of a time target: MPPI's budget before its networks.

A planner's step time is mostly its budget: MPPI runs dynamics and reward iterations x
samples x horizon times per control step. On the shipped cartpole agent, halving MPPI's
iterations made the step 2x faster at 99% of the dense return, where narrowing the
networks to the same time kept 30% (README, "Prune to a deadline"). So for a speed-up or
latency target on an agent that plans, ``screen_budgets`` first times cheaper budgets
(fewer iterations at the agent's samples, half and a quarter of them, and the policy prior
alone), and for each sample count keeps two options: the richest budget that meets the
deadline by itself, and the next richer one with its networks cut (by magnitude, through
the latency model) to meet it; the agent's own budget with its networks cut is always an
option. Those options play the search's episodes, and the best one wins: the network
search then runs under the winner's budget for whatever time is still to save.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rlprune.adapters.base import PlannerAdapter
from rlprune.io import atomic_write_text
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.physical import prune_physically
from rlprune.pruning.ranking import InfeasibleTarget
from rlprune.pruning.targets import make_measure
from rlprune.search.baselines import baseline_plan
from rlprune.search.objective import Objective
from rlprune.settings import SearchSettings, Target
from rlprune.step_timing import StepTiming
from rlprune.units import UnitRunner, run_units

__all__ = ["BUDGETS_FILE", "BudgetChoice", "BudgetOption", "budget_options", "screen_budgets"]

BUDGETS_FILE = "planner_budgets.json"

_SAMPLE_FRACTIONS = (1, 2, 4)
"""The agent's samples per iteration are divided by these."""


@dataclass
class BudgetOption:
    """One way to a deadline: a planner budget, and what its networks must still save."""

    iterations: int
    samples: int
    step_seconds: float
    """Measured time of a step under this budget, networks unpruned."""
    network_saving: float
    """The share of that time a network cut must remove to meet the deadline (0: the
    budget alone meets it)."""
    metric: float | None = None
    ci95: float | None = None

    @property
    def spec(self) -> str:
        """As ``--planner`` takes it."""
        return f"iterations={self.iterations},samples={self.samples}"

    def to_dict(self) -> dict:
        return {"iterations": self.iterations, "samples": self.samples,
                "step_ms": 1e3 * self.step_seconds, "network_saving": self.network_saving,
                "metric": self.metric, "ci95": self.ci95}

    @classmethod
    def from_dict(cls, row: dict) -> BudgetOption:
        return cls(row["iterations"], row["samples"], row["step_ms"] / 1e3,
                   row["network_saving"], row["metric"], row["ci95"])


@dataclass(frozen=True)
class BudgetChoice:
    """The screened options and the one the network search continues from."""

    agent: PlannerAdapter
    """The dense agent under the chosen budget."""
    chosen: BudgetOption
    options: list[BudgetOption]
    own: tuple[int, int]
    """The agent's own (iterations, samples)."""
    tol: float

    @property
    def network_target(self) -> Target:
        """What the network search must still save, of the chosen budget's step time."""
        return Target(self.chosen.network_saving, self.tol, "latency")

    def to_dict(self) -> dict:
        return {"own": {"iterations": self.own[0], "samples": self.own[1]},
                "chosen": self.chosen.to_dict(),
                "options": [option.to_dict() for option in self.options]}


def screen_budgets(agent: PlannerAdapter, timing: StepTiming, target: Target,
                   objective: Objective, settings: SearchSettings, out: Path,
                   runner: UnitRunner | None = None,
                   log: Callable[[str], None] = lambda line: None) -> BudgetChoice:
    """The best-scoring way to ``target`` (a latency target) among cheaper planner budgets
    and network cuts, the options played side by side on ``runner``'s workers where it has
    them; resumes from ``out`` (options already scored are not played again).

    Raises:
        InfeasibleTarget: no budget, with or without a network cut, reaches the target;
            the message names the fastest step that is reachable.
        ValueError: ``out`` holds a screening with other settings.
    """
    path = out / BUDGETS_FILE
    settings_key = {"threads": timing.threads, "backend": timing.backend,
                    "target": target.to_dict(),
                    "objective": objective.describe(), "criterion": "magnitude",
                    "components": settings.components, "interfaces": settings.interfaces,
                    "round_to": settings.round_to}
    settings_key = json.loads(json.dumps(settings_key))  # tuples as JSON gives them back
    saved = json.loads(path.read_text()) if path.exists() else None
    if saved is not None and saved["settings"] != settings_key:
        raise ValueError(f"{out} holds a planner-budget screening with other settings "
                         f"({saved['settings']}); use a new run dir")
    if saved is not None:
        options = [BudgetOption.from_dict(row) for row in saved["options"]]
    else:
        seconds = _measured(agent, timing)
        options = budget_options(agent.planner_budget(), seconds, timing, target)
    candidates = {option.spec: _candidate(agent, option, timing, target.tol, settings)
                  for option in options}
    options = [option for option in options if candidates[option.spec] is not None]
    if not options:
        fastest = min(seconds, key=seconds.get)
        raise InfeasibleTarget(
            f"predicted speed-up {1 / (1 - target.sparsity):.2f}x is out of reach even with "
            f"cheaper planners: the fastest step measured here is "
            f"{timing.dense.median / seconds[fastest]:.2f}x (iterations={fastest[0]}, "
            f"samples={fastest[1]}{', the policy prior alone' if not fastest[0] else ''})")
    unscored = [option for option in options if option.metric is None]
    for index, score, _ in run_units(runner, objective,
                                     [candidates[option.spec][1] for option in unscored]):
        option = unscored[index]
        option.metric, option.ci95 = score.value, score.ci95
        log(f"planner {option.spec} "
            + (f"with its networks cut by {100 * option.network_saving:.0f}% of its time"
               if option.network_saving else "alone")
            + f": {1e3 * option.step_seconds:.1f} ms unpruned, metric "
              f"{option.metric:.2f} +- {option.ci95:.2f}")
        out.mkdir(parents=True, exist_ok=True)
        timing.save(out)  # the times above are relative to this dense step
        atomic_write_text(path, json.dumps({"settings": settings_key, "options": [
            o.to_dict() for o in options]}, indent=1))
    # best metric; among equals, the cheaper step
    chosen = max(options, key=lambda o: (o.metric, -o.step_seconds))
    return BudgetChoice(candidates[chosen.spec][0], chosen, options, agent.planner_budget(),
                        target.tol)


def _measured(agent: PlannerAdapter, timing: StepTiming) -> dict[tuple[int, int], float]:
    """Step seconds of every budget of the ladder, networks unpruned: the agent's
    iterations down to 1 at each sample count the planner accepts, and the policy prior
    (0 iterations)."""
    iterations, samples = own = agent.planner_budget()
    ladder = [(k, samples // f) for f in _SAMPLE_FRACTIONS for k in range(iterations, 0, -1)]
    seconds = {own: timing.dense.median}
    for budget in [*ladder, (0, samples)]:
        if budget in seconds:
            continue
        try:
            budgeted = agent.with_planner_budget(*budget)
        except ValueError:  # e.g. fewer samples than the policy's own proposals
            continue
        seconds[budget] = timing.measure(budgeted).median
    return seconds


def budget_options(own: tuple[int, int], seconds: dict[tuple[int, int], float],
                   timing: StepTiming, target: Target) -> list[BudgetOption]:
    """Per sample count: the richest budget that meets the deadline alone and the next
    richer one (networks to cut); the agent's own budget (networks to cut); the policy
    prior if it meets the deadline."""
    deadline = timing.dense.median * (1 - target.sparsity)
    alone = timing.dense.median * (1 - target.sparsity + target.tol)

    def option(budget: tuple[int, int]) -> BudgetOption:
        step = seconds[budget]
        return BudgetOption(*budget, step, 0.0 if step <= alone else 1 - deadline / step)

    chosen = {own: option(own)}
    for samples in sorted({s for k, s in seconds if k}, reverse=True):
        column = sorted(((k, s) for k, s in seconds if s == samples and k), reverse=True)
        for i, budget in enumerate(column):
            if seconds[budget] <= alone:
                chosen[budget] = option(budget)
                if i > 0:
                    chosen[column[i - 1]] = option(column[i - 1])
                break
        else:
            chosen[column[-1]] = option(column[-1])
    prior = (0, own[1])
    if prior in seconds and seconds[prior] <= alone:
        chosen[prior] = option(prior)
    return sorted(chosen.values(), key=lambda o: -o.step_seconds)


def _candidate(agent: PlannerAdapter, option: BudgetOption, timing: StepTiming, tol: float,
               settings: SearchSettings) -> tuple[PlannerAdapter, PlannerAdapter] | None:
    """The dense agent under ``option``'s budget and the agent to score (its networks cut
    by magnitude where the option needs it); None where no cut reaches the deadline."""
    budgeted = agent.with_planner_budget(option.iterations, option.samples)
    if not option.network_saving:
        return budgeted, budgeted
    grouper = ComponentGrouper(budgeted, list(settings.components)
                               if settings.components else None,
                               interfaces=settings.interfaces or ())
    model = timing.for_budget(budgeted, option.step_seconds).model
    try:
        plan = baseline_plan(grouper, "magnitude", option.network_saving, tol,
                             round_to=settings.round_to,
                             measure=make_measure("latency", grouper, model))
    except InfeasibleTarget:
        return None
    return budgeted, prune_physically(budgeted, plan, list(plan.dense.params_by_component))
