"""The harness every search method runs under: one budget, one cache, resumable.

A candidate is a vector of coefficients, one per *unit* (a component, or a single group).
The harness turns it into group coefficients, plans the cut at rho +- eps, skips
infeasible candidates before any episode runs, applies the plan as masks, scores it,
and appends the outcome to ``history``. With a ``run_dir`` the history is written
atomically after every evaluation and read back on start: a killed search resumes
without losing or repeating an evaluation.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rlprune.adapters.base import AgentAdapter
from rlprune.io import atomic_write_text
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.ranking import ChannelRanking, Coefficients, InfeasibleTarget, PruningPlan
from rlprune.search.executors import Executor, InProcessExecutor, Task
from rlprune.search.objective import Objective, Score
from rlprune.settings import SearchSettings

__all__ = ["BudgetExhausted", "SearchHarness", "SearchResult"]

STATE_FILE = "search_state.json"


class BudgetExhausted(RuntimeError):
    """The search asked for more evaluations than its budget allows."""


@dataclass
class SearchResult:
    """Best candidate found and what finding it cost."""

    method: str
    coefficients: dict[str, float]
    plan: PruningPlan
    metric: float
    ci95: float
    evaluations: int
    env_steps: int
    wall_time: float
    history: list[dict] = field(default_factory=list)
    env_steps_saved: int = 0
    """Env steps racing did not spend on clearly worse candidates."""

    def to_dict(self) -> dict:
        return {"method": self.method, "coefficients": self.coefficients,
                "metric": self.metric, "ci95": self.ci95, "sparsity": self.plan.sparsity,
                "flop_sparsity": self.plan.flop_sparsity, "evaluations": self.evaluations,
                "env_steps": self.env_steps, "env_steps_saved": self.env_steps_saved,
                "wall_time": self.wall_time,
                "plan": self.plan.to_dict(), "history": self.history}


class SearchHarness:
    """Shared evaluation, caching, budget and persistence for all search methods.

    Args:
        agent: the dense agent (masks are applied to it in place, then removed).
        grouper: its pruning groups.
        ranking: base importance and rounding (coefficients scale it).
        objective: scores a masked agent.
        rho: target sparsity.
        eps: tolerance.
        budget: maximum number of scored candidates.
        scope: ``"component"`` (one coefficient per component family: TD-MPC2's Q heads
            share one), ``"group"``, or ``"auto"``: per component, per group when only one
            family is pruned (an SB3 actor); a pruned interface has its own coefficient.
        run_dir: where to keep the resumable state (None: in memory only).
        progress: show a progress bar.
        executor: where candidates are scored (default: in this process).
        method: the search's name, kept with the state (a run dir resumes only the same
            method on the same objective).
    """

    def __init__(self, agent: AgentAdapter, grouper: ComponentGrouper, ranking: ChannelRanking,
                 objective: Objective, rho: float, eps: float, budget: int,
                 scope: str = "auto", run_dir: str | Path | None = None,
                 progress: bool = True, executor: Executor | None = None,
                 method: str = "search") -> None:
        SearchSettings(scope=scope, budget=budget)
        family = grouper.families
        if scope == "auto":  # one coefficient for a lone component would change nothing
            scope = "component" if len(set(family.values())) > 1 else "group"
        self.agent, self.grouper, self.ranking = agent, grouper, ranking
        self.objective, self.rho, self.eps, self.budget = objective, rho, eps, budget
        self.scope, self.method = scope, method
        keys = [g.id if scope == "group" or g.component == "interface" else family[g.component]
                for g in grouper.groups]
        self.units = list(dict.fromkeys(keys))
        self.unit_of_group = [self.units.index(k) for k in keys]
        self.executor = executor or InProcessExecutor()
        self._started = False
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.history: list[dict] = []
        self.extra_env_steps = 0
        """Env steps spent outside candidate scoring (e.g. rollouts for a surrogate)."""
        self._cache: dict[str, dict] = {}
        self._scored_plans: dict[str, str] = {}
        """Plan id -> the key of the first candidate scored with that plan."""
        self.start = time.perf_counter()
        if self.run_dir is not None and (self.run_dir / STATE_FILE).exists():
            self._load()
        self.bar = tqdm(total=budget, initial=self.evaluations, desc="candidates",
                        disable=not progress, mininterval=2)

    @property
    def evaluations(self) -> int:
        return sum(1 for h in self.history if h["status"] == "scored")

    @property
    def env_steps(self) -> int:
        return self.extra_env_steps + sum(h.get("env_steps", 0) for h in self.history)

    def coefficients(self, unit_values: np.ndarray) -> Coefficients:
        values = torch.as_tensor(np.asarray(unit_values, dtype=np.float64))[self.unit_of_group]
        return Coefficients([g.id for g in self.grouper.groups], values.float())

    @staticmethod
    def _key(unit_values: np.ndarray) -> str:
        return json.dumps([round(float(v), 6) for v in unit_values])

    def evaluate(self, unit_values: np.ndarray) -> float:
        """Metric of one candidate (cached); -inf if its plan is infeasible.

        Raises:
            BudgetExhausted: a new candidate would exceed the budget.
        """
        return self.evaluate_many([unit_values])[0]

    def evaluate_many(self, population: list[np.ndarray]) -> list[float]:
        """Metrics of a population, scored together on the executor.

        Cached and infeasible candidates cost nothing; the others race against the
        incumbent as it stands before the population (so results do not depend on how
        many of them run at once). Candidates past the budget are not scored.

        Raises:
            BudgetExhausted: the budget ran out before every candidate was scored.
        """
        keys = [self._key(v) for v in population]
        todo: dict[str, PruningPlan] = {}
        copies: dict[str, tuple[str, PruningPlan]] = {}  # key -> (key of the same plan, plan)
        new_plans: dict[str, str] = {}  # plan id -> key, this population
        for key, values in zip(keys, population):
            if key in self._cache or key in todo or key in copies:
                continue
            try:
                plan = self.ranking.plan(self.coefficients(values), self.rho, self.eps)
            except InfeasibleTarget as e:
                self._record({"key": key, "status": "infeasible", "metric": float("-inf"),
                              "reason": str(e)})
                continue
            plan_id = _plan_id(plan)
            same = self._scored_plans.get(plan_id) or new_plans.get(plan_id)
            if same is not None:  # other coefficients, the same channels cut
                copies[key] = (same, plan)
            else:
                new_plans[plan_id] = key
                todo[key] = plan
        runnable = list(todo.items())[: max(self.budget - self.evaluations, 0)]
        if runnable:
            incumbent = self._incumbent()
            tasks = [Task(plan.removed, incumbent) for _, plan in runnable]
            for (key, plan), score in zip(runnable, self._executor().map(tasks)):
                self._record_score(key, plan, score)
        for key, (same, plan) in copies.items():
            if same in self._cache and self.evaluations < self.budget:
                self._record_score(key, plan, _score_of(self._cache[same]), reused=same)
        if len(runnable) < len(todo) or any(key not in self._cache for key in copies):
            raise BudgetExhausted(f"budget of {self.budget} evaluations used")
        return [self._cache[key]["metric"] for key in keys]

    def record(self, unit_values: np.ndarray, score: Score) -> None:
        """Adds a candidate the search scored itself, from a rollout it needed anyway (the
        gradient's refresh); it counts as one evaluation. Known candidates are kept as
        they are.

        Raises:
            BudgetExhausted: no evaluation is left.
            InfeasibleTarget: the candidate's plan misses rho +- eps.
        """
        key = self._key(unit_values)
        if key in self._cache:
            return
        if self.evaluations >= self.budget:
            raise BudgetExhausted(f"budget of {self.budget} evaluations used")
        self._record_score(key, self.ranking.plan(self.coefficients(unit_values), self.rho,
                                                  self.eps), score)

    def _record_score(self, key: str, plan: PruningPlan, score: Score,
                      reused: str | None = None) -> None:
        """A scored candidate; ``reused``: the key of an earlier candidate with the same
        plan, whose score it takes without playing an episode (it still counts against the
        budget, so searches that keep proposing one plan end)."""
        plan_id = _plan_id(plan)
        self._record({"key": key, "status": "scored", "metric": score.value,
                      "ci95": score.ci95, "env_steps": 0 if reused else score.env_steps,
                      "complete": score.complete, "env_steps_saved": score.env_steps_saved,
                      "details": score.details, "sparsity": plan.sparsity,
                      "flop_sparsity": plan.flop_sparsity, "plan_id": plan_id,
                      **({"same_plan_as": reused} if reused else {}),
                      "time": time.perf_counter() - self.start})
        self._scored_plans.setdefault(plan_id, key)
        self.bar.update(1)
        self.bar.set_postfix(best=f"{self.best()['metric']:.4g}", refresh=False)

    def _executor(self) -> Executor:
        if not self._started:
            self.executor.start((self.agent, list(self.grouper.components),
                                 self.grouper.interfaces, self.objective))
            self._started = True
        return self.executor

    def close(self) -> None:
        """Releases the executor's workers."""
        if self._started:
            self.executor.close()
            self._started = False
        self.bar.close()

    def _record(self, record: dict) -> None:
        self.history.append(record)
        self._cache[record["key"]] = record
        # Infeasible candidates cost nothing to redo: a run dir appears with the first
        # scored one (a search that fails on its target leaves nothing behind).
        if self.run_dir is not None and self.evaluations:
            atomic_write_text(self.run_dir / STATE_FILE, json.dumps(
                {**self._settings(), "history": self.history}, indent=1))

    def _settings(self) -> dict:
        return {"method": self.method, "objective": self.objective.describe(),
                "rho": self.rho, "eps": self.eps, "measure": self.ranking.measure.name,
                "scope": self.scope, "units": self.units}

    def _load(self) -> None:
        state = json.loads((self.run_dir / STATE_FILE).read_text())
        # JSON round trip: tuples in an objective's description come back as lists
        mine = json.loads(json.dumps(self._settings()))
        other = {k: state[k] for k in mine if k in state}  # older states lack some keys
        if other != {k: mine[k] for k in other}:
            differ = ", ".join(f"{k} {other[k]!r}" for k in other if other[k] != mine[k])
            raise ValueError(f"{self.run_dir} holds a search with other settings ({differ}); "
                             "use a new run dir")
        for record in state["history"]:
            self.history.append(record)
            self._cache[record["key"]] = record
            if "plan_id" in record:
                self._scored_plans.setdefault(record["plan_id"], record["key"])

    def best(self) -> dict:
        """The best fully measured candidate (raced-out ones only have partial metrics)."""
        scored = [h for h in self.history if h["status"] == "scored" and h.get("complete", True)]
        if not scored:
            return {"metric": float("-inf")}
        return max(scored, key=lambda h: h["metric"])

    def _incumbent(self) -> Score | None:
        best = self.best()
        if "key" not in best or not np.isfinite(best["metric"]):
            return None
        return _score_of(best)

    @property
    def env_steps_saved(self) -> int:
        return sum(h.get("env_steps_saved", 0) for h in self.history)

    def result(self) -> SearchResult:
        """The best scored candidate as a ``SearchResult``."""
        best = self.best()
        if "key" not in best:
            reasons = [h["reason"] for h in self.history if h["status"] == "infeasible"]
            raise InfeasibleTarget(reasons[0] if reasons else "no candidate was scored")
        values = np.array(json.loads(best["key"]))
        coefficients = self.coefficients(values)
        plan = self.ranking.plan(coefficients, self.rho, self.eps)
        return SearchResult(self.method, coefficients.as_dict(), plan, best["metric"], best["ci95"],
                            self.evaluations, self.env_steps,
                            time.perf_counter() - self.start, list(self.history),
                            env_steps_saved=self.env_steps_saved)


def _score_of(record: dict) -> Score:
    """The ``Score`` a history record keeps."""
    return Score(record["metric"], record["ci95"], record["env_steps"],
                 record.get("details", {}), record.get("complete", True),
                 record.get("env_steps_saved", 0))


def _plan_id(plan: PruningPlan) -> str:
    """The same id for plans that cut the same channels, whatever coefficients made them."""
    removed = json.dumps(sorted((g, list(c)) for g, c in plan.removed.items()))
    return hashlib.sha1(removed.encode()).hexdigest()[:16]
