"""Sweeps: every method at every target sparsity, one table row each, resumable.

For each (method, rho) a plan is found (a baseline's ranking, or a coefficient search),
the agent is pruned physically, and the smaller agent is scored by the *report*
objective, which may use other episodes than the search did (held-out seeds, so a
search cannot win by overfitting its own episodes). World-model agents also get latent
stability against the dense agent on the dense agent's closed-loop trajectories; agents
without a latent get the action deviation on the same states. Rows are written to
``sweep.json`` after each cell and skipped when the sweep runs again; the dense agent's
run is kept too (``dense_run.pt``).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from rlprune.adapters.base import AgentAdapter
from rlprune.analysis.evaluate import StateRecorder
from rlprune.analysis.latency import measure_step
from rlprune.analysis.stability import stability_report
from rlprune.analysis.statistics import robust_summary
from rlprune.finetune import distill_on_objective
from rlprune.io import atomic_torch_save, atomic_write_text, load_weights_only
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.importance import collect_channel_stats, needs_stats
from rlprune.pruning.physical import prune_physically
from rlprune.report import markdown_table, plot_metric_vs_sparsity, write_json
from rlprune.search import (
    METHODS,
    Executor,
    Objective,
    ReturnObjective,
    VisitedInputs,
    search,
)
from rlprune.search.baselines import baseline_plan
from rlprune.settings import Target
from rlprune.units import UnitFolder, land

__all__ = ["COLUMNS", "ExtraMethod", "sweep", "write_sweep_report"]

SWEEP_FILE = "sweep.json"
DENSE_FILE = "dense_run.pt"
COLUMNS = ["method", "target", "sparsity", "flop_sparsity", "params", "step_ms", "speedup",
           "metric", "ci95", "iqm",
           "evaluations", "search_env_steps", "latent_drift", "jacobian_radius_max",
           "jacobian_radius_max_planner", "lyapunov_decrease", "action_rmse", "seconds"]
"""Columns of the sweep table (missing values stay empty)."""
_ROW_STABILITY = ("latent_drift", "rollout_error", "jacobian_radius_max",
                  "jacobian_radius_max_planner", "lyapunov_decrease", "action_rmse")
"""The stability numbers a sweep row keeps (``stability_report`` gives more)."""

ExtraMethod = Callable[[AgentAdapter, float, int], tuple[AgentAdapter, float]]
"""(agent, rho, seed) -> (pruned agent, achieved sparsity): methods outside rlprune's
plans, e.g. PyTorch's own structured pruning as the paper's baselines."""


def _dense_run(agent: AgentAdapter, objective: Objective,
               out: Path) -> tuple[dict, list | None]:
    """The dense agent's score and, for episode returns, its recorded trajectories.

    Kept in ``out`` (weights-only): a resumed sweep does not play the dense agent's
    held-out episodes again (ten full TD-MPC2 episodes take minutes on a CPU).
    """
    path, described = out / DENSE_FILE, objective.describe()
    if path.exists():
        saved = load_weights_only(path)
        if saved["objective"] == described:
            trajectories = saved["trajectories"]
            return saved["quality"], None if trajectories is None else [
                (o.numpy(), a.numpy()) for o, a in trajectories]
    if isinstance(objective, ReturnObjective):
        recorder = StateRecorder()
        result = objective.evaluator.evaluate(agent, recorder)
        quality = {"metric": result.mean, "ci95": result.ci95, "std": result.std,
                   **robust_summary(result.returns), "episodes": len(result.returns),
                   "eval_env_steps": result.env_steps}
        trajectories = recorder.trajectories()
    else:
        score = objective(agent)
        quality, trajectories = {"metric": score.value, "ci95": score.ci95}, None
    quality.update(_step_time(agent))
    atomic_torch_save({"objective": described, "quality": quality, "trajectories": None
                       if trajectories is None else [(torch.as_tensor(o), torch.as_tensor(a))
                                                     for o, a in trajectories]}, path)
    return quality, trajectories


def _step_time(agent: AgentAdapter, dense_ms: float | None = None) -> dict:
    """Measured milliseconds per control step (1 thread) and the speed-up over the dense
    agent's, for agents that act."""
    if agent.observation_space is None:
        return {}
    step_ms = 1e3 * measure_step(agent, threads=1, steps=10).median
    return {"step_ms": step_ms, **({"speedup": dense_ms / step_ms} if dense_ms else {})}


def _quality(dense: AgentAdapter, pruned: AgentAdapter, objective: Objective,
             trajectories, seed: int) -> dict:
    score = objective(pruned)
    row = {"metric": score.value, "ci95": score.ci95, "eval_env_steps": score.env_steps}
    returns = score.details.get("returns")
    if returns:  # episode returns: the spread RL Zoo's benchmark tables report
        row.update(std=float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0,
                   episodes=len(returns), **robust_summary(returns))
    if trajectories is None:
        return row
    stability = stability_report(dense, pruned, trajectories, seed)
    row.update({k: v for k, v in stability.items() if k in _ROW_STABILITY})
    return row


def _keep(pruned: AgentAdapter, folder: Path, name: str) -> dict:
    """Saves a row's pruned agent in ``folder/agents`` (the row names the file)."""
    path = folder / "agents" / f"{name}{pruned.file_suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    pruned.save(path)
    return {"agent_file": str(path.relative_to(folder))}


def _baseline(grouper: ComponentGrouper, method: str, rho: float, tol: float, seed: int,
              round_to: int, visited: VisitedInputs):
    """A baseline's plan; data-aware ones read the dense agent's visited states."""
    data_aware = needs_stats(METHODS[method].criterion)
    stats = collect_channel_stats(grouper, visited.inputs(), seed=seed) if data_aware else None
    plan = baseline_plan(grouper, method, rho, tol, seed=seed, round_to=round_to, stats=stats)
    return plan, {"evaluations": 0, "search_env_steps": visited.env_steps if data_aware else 0}


def _check(methods: Sequence[str], sparsities: Sequence[float], extra: Mapping) -> None:
    unknown = [m for m in methods if m not in METHODS and m not in extra]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {list(METHODS) + list(extra)}")
    for rho in sparsities:
        Target(rho)


def _saved_rows(path: Path, settings: dict) -> list[dict]:
    """Rows of an earlier run of the same sweep (none for a new one)."""
    if not path.exists():
        return []
    saved = json.loads(path.read_text())
    if saved.get("settings") != settings:
        raise ValueError(f"{path.parent} holds a sweep with other settings "
                         f"({saved.get('settings')}); use a new output folder")
    return saved["rows"]


@dataclass(frozen=True)
class _Sweep:
    """What every cell of a sweep needs: pickled whole to the workers that run cells."""

    agent: AgentAdapter
    objective: Objective
    report_objective: Objective
    trajectories: list | None
    """The dense agent's report episodes (stability of each pruned agent along them)."""
    extra: Mapping[str, ExtraMethod]
    tol: float
    budget: int
    seed: int
    criterion: str
    components: list[str] | None
    interfaces: tuple[str, ...]
    round_to: int
    finetune: int
    progress: bool


@dataclass(frozen=True)
class _Cell:
    """One (method, rho) of a sweep and which of its rows are still missing."""

    method: str
    rho: float
    plain: bool
    tuned: bool
    """The ``METHOD+ft`` row (fine-tuned) is missing."""
    folder: UnitFolder


def _cell_agent(sweep: _Sweep, cell: _Cell, grouper: ComponentGrouper, visited: VisitedInputs,
                folder: Path, executor: Executor | None) -> tuple[AgentAdapter, dict]:
    """The pruned agent of one cell, and what finding it cost."""
    method, rho, agent = cell.method, cell.rho, sweep.agent
    if method in sweep.extra:
        pruned, sparsity = sweep.extra[method](agent, rho, sweep.seed)
        return pruned, {"sparsity": sparsity, "evaluations": 0, "search_env_steps": 0}
    if METHODS[method].is_baseline:  # no search: the plan is the ranking itself
        plan, info = _baseline(grouper, method, rho, sweep.tol, sweep.seed, sweep.round_to,
                               visited)
    else:
        result = search(agent, sweep.objective, rho, sweep.tol, method=method,
                        budget=sweep.budget, seed=sweep.seed, criterion=sweep.criterion,
                        components=sweep.components, interfaces=sweep.interfaces,
                        round_to=sweep.round_to,
                        run_dir=folder / "searches" / f"{method}-{rho}",
                        progress=sweep.progress, executor=executor, visited=visited)
        plan = result.plan
        info = {"evaluations": result.evaluations, "search_env_steps": result.env_steps,
                "coefficients": result.coefficients}
    info.update(sparsity=plan.sparsity, flop_sparsity=plan.flop_sparsity,
                params=plan.cost.params)
    return prune_physically(agent, plan, list(grouper.components)), info


def _cell_rows(sweep: _Sweep, cell: _Cell, folder: Path,
               executor: Executor | None) -> list[tuple[dict, AgentAdapter]]:
    """The cell's missing rows (untimed), each with its pruned agent (saved in
    ``folder/agents``). Searches resume from their state in ``folder/searches``."""
    grouper = ComponentGrouper(sweep.agent, sweep.components, interfaces=sweep.interfaces)
    visited = VisitedInputs(sweep.objective, sweep.agent, folder)
    start = time.perf_counter()
    pruned, info = _cell_agent(sweep, cell, grouper, visited, folder, executor)
    rows = []

    def row(method: str, **more) -> tuple[dict, AgentAdapter]:
        quality = _quality(sweep.agent, pruned, sweep.report_objective, sweep.trajectories,
                           sweep.seed)
        return ({"method": method, "target": cell.rho, **info, **more, **quality,
                 **_keep(pruned, folder, f"{method}-{cell.rho}"),
                 "seconds": time.perf_counter() - start}, pruned)

    if cell.plain:
        rows.append(row(cell.method))
    if cell.tuned:
        start = time.perf_counter()
        pruned = pruned.clone()  # the untuned row keeps its own agent
        distill_on_objective(sweep.agent, pruned, sweep.objective, visited, sweep.finetune,
                             sweep.seed)
        rows.append(row(f"{cell.method}+ft", finetune_steps=sweep.finetune))
    return rows


def _run_cell(sweep: _Sweep, cell: _Cell, executor: Executor | None = None):
    """A cell in whatever folder its worker sees (``UnitFolder``): its rows, and the
    files to land in the run folder when the worker did not see it."""
    return cell.folder.run(lambda folder: _cell_rows(sweep, cell, folder, executor))


def _ordered(rows: list[dict], sparsities: Sequence[float], methods: Sequence[str]) -> list[dict]:
    """Dense first, then by target and method as given (the fine-tuned row after its
    method's): the same table whichever order the cells finished in."""
    def key(row: dict) -> tuple:
        if row["method"] == "dense":
            return (-1, 0, 0)
        method, tuned = row["method"].removesuffix("+ft"), row["method"].endswith("+ft")
        where = list(sparsities).index(row["target"]) if row["target"] in sparsities else 1e9
        return (where, list(methods).index(method) if method in methods else 1e9, tuned)
    return sorted(rows, key=key)


def sweep(agent: AgentAdapter, objective: Objective, sparsities: Sequence[float],
          methods: Sequence[str], out: str | Path, *, tol: float = 0.01, budget: int = 20,
          seed: int = 0, criterion: str = "l2", components: list[str] | None = None,
          interfaces: tuple[str, ...] = (), round_to: int = 1,
          report_objective: Objective | None = None,
          extra_methods: Mapping[str, ExtraMethod] | None = None, finetune: int = 0,
          executor: Executor | None = None, progress: bool = False,
          log: Callable[[str], None] = print) -> list[dict]:
    """Runs (or resumes) the sweep in ``out``; returns every row, dense first.

    Args:
        agent: the dense agent (left unchanged).
        objective: what searches optimise.
        sparsities: targets rho.
        methods: rlprune methods (``magnitude``, ``random``, ``grid``, ``gradient``,
            ``cmaes``) and names of ``extra_methods``.
        out: run directory (``sweep.json``, one search state per cell).
        round_to: kept channels per group are a multiple of this.
        report_objective: scores the final pruned agents (default: ``objective``).
        finetune: distillation steps; each pruned agent then also gets a row
            ``METHOD+ft`` after fine-tuning (reported apart from the untuned one).
        executor: with a parallel executor (process pool, Ray) and more than one cell
            left, the cells run side by side on its workers, each search in its worker;
            otherwise cells run here one after another and the executor scores each
            search's candidates. Rows are the same either way; step times are measured
            here, one agent at a time, so they compare.
        progress: a progress bar per search (cells run here only).

    Raises:
        ValueError: unknown method or a target out of range (before any work).
    """
    extra = dict(extra_methods or {})
    _check(methods, sparsities, extra)
    report_objective = report_objective or objective
    settings = {"tol": tol, "budget": budget, "seed": seed, "criterion": criterion,
                "round_to": round_to, "finetune": finetune,
                "components": components, "interfaces": list(interfaces),
                "objective": objective.describe(),
                "report": report_objective.describe()}
    out = Path(out)
    path = out / SWEEP_FILE
    rows = _saved_rows(path, settings)
    done = {(r["method"], r["target"]) for r in rows}
    grouper = ComponentGrouper(agent, components, interfaces=interfaces)
    dense_params = sum(p.numel() for c in grouper.components.values()
                       for p in c.module.parameters())

    def save() -> None:
        write_json(path, {"agent": agent.describe(), "metric": asdict(agent.metric),
                          "settings": settings, "rows": _ordered(rows, sparsities, methods)})

    dense_quality, trajectories = _dense_run(agent, report_objective, out)
    dense_ms = dense_quality.get("step_ms")
    if ("dense", 0.0) not in done:
        rows.append({"method": "dense", "target": 0.0, "sparsity": 0.0, "flop_sparsity": 0.0,
                     "params": dense_params, **dense_quality,
                     **({"speedup": 1.0} if "step_ms" in dense_quality else {})})
        save()
    cells = [_Cell(method, rho, (method, rho) not in done,
                   bool(finetune) and (f"{method}+ft", rho) not in done,
                   UnitFolder.of(out, [VisitedInputs.FILE, f"searches/{method}-{rho}"]))
             for rho in sparsities for method in methods]
    cells = [c for c in cells if c.plain or c.tuned]
    spread = executor is not None and executor.parallel and len(cells) > 1
    context = _Sweep(agent, objective, report_objective, trajectories, extra, tol, budget, seed,
                     criterion, components, tuple(interfaces), round_to, finetune,
                     progress and not spread)
    if spread:
        finished = executor.run_units(functools.partial(_run_cell, context), cells)
    else:
        finished = ((i, _run_cell(context, cell, executor), "this process")
                    for i, cell in enumerate(cells))
    for _, (cell_rows, files), where in finished:
        land(out, files)
        for row, pruned in cell_rows:
            row.update(_step_time(pruned, dense_ms))
            rows.append(row)
            save()
            log(f"{row['method']:>12} rho={row['target']}: metric {row['metric']:.4g} +- "
                f"{row['ci95']:.3g} (sparsity {row['sparsity']:.3f}, {row['seconds']:.0f}s"
                + (f", {where})" if spread else ")"))
    return _ordered(rows, sparsities, methods)


def write_sweep_report(rows: list[dict], out: str | Path, title: str = "",
                       ylabel: str = "episode return") -> tuple[Path, Path]:
    """``results.md`` (the table), ``metric_vs_sparsity.png`` and, where rows were timed,
    ``metric_vs_speedup.png`` in ``out``."""
    out = Path(out)
    columns = [c for c in COLUMNS if any(c in r for r in rows)]
    table = atomic_write_text(out / "results.md", markdown_table(rows, columns))
    scored = [r | {"mean": r["metric"]} for r in rows]
    plot = plot_metric_vs_sparsity(scored, out / "metric_vs_sparsity.png", title=title,
                                   ylabel=ylabel)
    if any(r.get("speedup") for r in rows if r["method"] != "dense"):
        plot_metric_vs_sparsity(scored, out / "metric_vs_speedup.png", title=title,
                                ylabel=ylabel, x="speedup",
                                xlabel="measured speed-up of a control step")
    return table, plot
