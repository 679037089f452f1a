"""The prune workflow ``rlprune prune`` runs: search, prune physically, fine-tune, check on
held-out episodes, time, save.

It takes the frozen settings of ``rlprune.settings`` and stores them in the run folder's
``report.json`` beside the result, so the folder says how it was made.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rlprune.adapters.base import AgentAdapter, PlannerAdapter
from rlprune.analysis.robustness import agents_robustness, breaking_points
from rlprune.finetune import distill_if_better
from rlprune.held_out import held_out_comparison
from rlprune.planner_budget import screen_budgets
from rlprune.pruning.physical import prune_physically
from rlprune.report import write_json
from rlprune.search import Executor, SearchResult, VisitedInputs, objective_for, search
from rlprune.search.constraints import StabilityConstrained, StabilityLimits
from rlprune.settings import Evaluation, SearchSettings, Target
from rlprune.step_timing import StepTiming

__all__ = ["PrunedRun", "prune_agent"]


@dataclass(frozen=True)
class PrunedRun:
    """What a prune run produced."""

    result: SearchResult
    path: Path
    """The saved pruned agent."""
    finetune: dict | None
    """The fine-tuning report (None without fine-tuning)."""
    latency: dict | None = None
    """Measured time per control step, dense and pruned (None for agents that do not
    act)."""
    held_out: dict | None = None
    """Dense and pruned scores on held-out episodes and their paired difference."""
    planner_budget: dict | None = None
    """The planner budgets screened for a time target and the one chosen (None: the
    agent's own budget, unscreened)."""


def prune_agent(agent: AgentAdapter, out: str | Path, target: Target,
                settings: SearchSettings, evaluation: Evaluation, *, finetune: int = 0,
                held_out: Evaluation | None = None, objective_name: str | None = None,
                executor: Executor | None = None, progress: bool = False,
                source: str | None = None, threads: int = 1, backend: str = "eager",
                limits: StabilityLimits | None = None,
                envelope: dict[str, list[float]] | None = None,
                planner_budgets: bool = True,
                log: Callable[[str], None] = lambda line: None) -> PrunedRun:
    """Searches coefficients for ``target``, prunes physically, checks the result on
    held-out episodes and saves to ``out`` (``pruned`` + the adapter's suffix, and
    ``report.json``); resumes a killed run.

    Args:
        evaluation: how candidates are scored (``objective_name``, default the agent's
            metric, on these episodes).
        finetune: distillation steps after pruning; the tuned agent is kept only if it
            scores no lower on validation episodes (``Evaluation.validation``).
        held_out: the final check's episodes (None: no check), where dense and pruned
            agents are compared paired (side by side on a parallel ``executor``).
        source: where the agent came from (a path or shipped name), for the report.
        threads: CPU threads the controller's step time is measured (and, for a latency
            target, predicted) on.
        backend: what runs the acting networks when steps are timed and predicted
            (``rlprune.backends``); candidates are scored eagerly.
        limits: stability bounds candidates must stay within (``StabilityConstrained``).
        envelope: a perturbation grid (``parse_grid``) the dense and the pruned agent both
            play on the held-out episodes' seeds (``OUT/envelope``): each one's worst case,
            and where the pruned agent loses most.
        planner_budgets: for a time target on an agent that plans, also try cheaper
            planner budgets (``rlprune.planner_budget``) and search the networks under the
            best-scoring one; the pruned agent saves with that budget.
        log: receives one line as each stage after the search starts and ends (the
            search shows a progress bar when ``progress``): a planner's held-out episodes
            take minutes.

    Raises:
        NotADirectoryError: ``out`` is a file.
        TypeError: a latency target for an agent that does not act.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file, not a run directory")
    objective = objective_for(agent, evaluation, objective_name)
    if limits is not None and limits.any:
        objective = StabilityConstrained(objective, agent, limits, settings.seed)
    timing = StepTiming.resume_or_measure(agent, threads, out, target.measure == "latency",
                                          backend)
    budget = None
    if planner_budgets and target.measure == "latency" and isinstance(agent, PlannerAdapter):
        budget = screen_budgets(agent, timing, target, objective, settings, out, executor,
                                log)
    searched, acting = (agent, timing) if budget is None else (
        budget.agent, timing.for_budget(budget.agent, budget.chosen.step_seconds))
    network_target = target if budget is None else budget.network_target
    if budget is not None and not budget.chosen.network_saving:
        settings = dataclasses.replace(settings, method="magnitude")  # nothing to search
    result = search(searched, objective, network_target.sparsity, network_target.tol,
                    **settings.to_dict(), run_dir=out, progress=progress, executor=executor,
                    measure=acting.measure_for(target.measure))
    timing.save(out)
    stage = _Stages(log)  # past every check of the input: no error line gets company
    pruned = prune_physically(searched, result.plan,
                              list(result.plan.dense.params_by_component))
    report = {"agent": source, "settings": {"target": target.to_dict(),
                                            "search": settings.to_dict(),
                                            "evaluation": evaluation.to_dict(),
                                            "held_out": held_out and held_out.to_dict(),
                                            "finetune": finetune, "threads": threads,
                                            "backend": backend},
              "result": result.to_dict()}
    if budget is not None:
        report["planner_budget"] = budget.to_dict()
    if finetune:
        # Distils on the dense agent's visited states (refreshed with the pruned agent's
        # own halfway); keeps or drops on validation episodes.
        with stage(f"fine-tuning, {finetune} distillation steps"):
            pruned, report["finetune"] = distill_if_better(
                agent, pruned, objective, VisitedInputs(objective, agent, out), finetune,
                objective_for(agent, evaluation.validation(), objective_name), settings.seed,
                progress)
    if held_out is not None:
        with stage("held-out check of the dense and the pruned agent"):
            report["held_out"] = held_out_comparison(
                agent, pruned, objective_for(agent, held_out, objective_name), settings.seed,
                executor)
    if envelope:
        with stage("robustness envelope of the dense and the pruned agent"):
            report["envelope"] = _envelope(agent, pruned, envelope, out / ENVELOPE,
                                           held_out or evaluation.held_out(evaluation.episodes),
                                           executor)
    if timing.dense is not None:
        with stage("timing the pruned control step"):
            report["latency"] = acting.compare(pruned, result.plan)
    path = out / f"pruned{agent.file_suffix}"
    pruned.save(path)
    write_json(out / "report.json", report)
    return PrunedRun(result, path, report.get("finetune"), report.get("latency"),
                     report.get("held_out"), report.get("planner_budget"))


ENVELOPE = "envelope"
"""The sub-folder of a prune run that holds its robustness envelope."""


def _envelope(dense: AgentAdapter, pruned: AgentAdapter, grid: dict[str, list[float]],
              out: Path, episodes: Evaluation, executor: Executor | None) -> dict:
    """Both agents across ``grid`` on ``episodes``' seeds; each one's worst case and
    the point where the pruned agent gives up most."""
    _, rows = agents_robustness({"dense": dense, "pruned": pruned}, grid, out, episodes.env,
                                episodes=episodes.episodes, seed=episodes.seed,
                                max_episode_steps=episodes.max_episode_steps,
                                executor=executor)
    worst = {name: min((r for r in rows if r["agent"] == name), key=lambda r: r["mean"])
             for name in ("dense", "pruned")}
    return {"grid": grid, "episodes": episodes.episodes,
            "worst": {name: {"mean": r["mean"], "perturb": r["perturb"]}
                      for name, r in worst.items()},
            "breaks_first": breaking_points(rows)[0]}


class _Stages:
    """``with stage("what"):`` logs ``what...`` and then ``what: done in Ns``."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log

    @contextlib.contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        self.log(f"{what}...")
        start = time.perf_counter()
        yield
        self.log(f"{what}: done in {time.perf_counter() - start:.0f}s")
