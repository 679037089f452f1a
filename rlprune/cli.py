"""The ``rlprune`` command line: inspect, eval, prune, sweep, robustness, export, report.

Errors users can fix (bad paths, bad ids, out-of-range targets) print one line on stderr
and exit with status 2; ``--json`` prints one machine-readable object on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from rlprune.settings import Evaluation, SearchSettings, Target

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Prune RL controllers by component-aware soft coefficient search.")

_USER_ERRORS = (ValueError, TypeError, OSError, NotImplementedError)


def _fail(error: Exception) -> None:
    typer.echo(f"rlprune: error: {error}", err=True)
    raise typer.Exit(2)


def _emit(payload: dict, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(payload) if as_json else text)


def _load(agent: str, task: str | None = None, vecnormalize: Path | None = None,
          planner: str | None = None):
    import rlprune

    return rlprune.load_agent(agent, task=task, vecnormalize=vecnormalize, planner=planner)


def _methods_help() -> str:
    """The registered search methods (``register_method``), for ``--method``'s help."""
    from rlprune.search import METHODS

    return "; ".join(f"{m.name}: {m.description}" for m in METHODS.values())


def _criteria_help() -> str:
    """The registered criteria (``register_criterion``), for ``--criterion``'s help."""
    from rlprune.pruning.importance import CRITERIA

    return "base importance of searches: " + "; ".join(
        f"{c.name}: {c.description}" for c in CRITERIA.values())


BUDGET = typer.Option(20, help="candidates per search")
TOL = typer.Option(0.01, help="tolerance eps on the achieved sparsity")
RESUMABLE_OUT = typer.Option(..., help="run directory (resumes if present)")
TASK = typer.Option(None, "--task", help="task of a multi-task checkpoint to act in")
PLANNER = typer.Option(None, "--planner",
                       help='MPPI settings of a TD-MPC2 agent, e.g. "iterations=4,samples=256" '
                            "(a cheaper planner)")
VECNORMALIZE = typer.Option(None, "--vecnormalize",
                            help="VecNormalize statistics of an SB3 agent (default: found "
                                 "beside the zip or in its RL Zoo folder)")


def _objectives_help() -> str:
    """The registered objectives (``register_objective``), for ``--objective``'s help."""
    from rlprune.search import OBJECTIVES

    return f"what candidates are scored by ({', '.join(OBJECTIVES)}; default: the agent's metric)"


OBJECTIVE = typer.Option(None, "--objective", help=_objectives_help())


def _executors_help() -> str:
    """The registered executors (``register_executor``), for ``--executor``'s help."""
    from rlprune.search.executors import EXECUTORS

    return f"where candidates run: {', '.join(EXECUTORS)}"


EXECUTOR = typer.Option("inprocess", help=_executors_help())
WORKERS = typer.Option(None, help="pool processes / Ray actors")


def _tuple(option: str | None) -> tuple[str, ...] | None:
    """A comma-separated option as a tuple (None when not given)."""
    names = _names(option)
    return tuple(names) if names else None


def _names(option: str | None) -> list[str] | None:
    """A comma-separated option as a list (None when not given)."""
    return [n.strip() for n in option.split(",") if n.strip()] if option else None


def _floats(option: str, flag: str) -> list[float]:
    try:
        return [float(x) for x in _names(option) or []]
    except ValueError:
        raise ValueError(f"{flag} takes comma-separated numbers, got {option!r}") from None


@app.command()
def inspect(agent: str = typer.Argument(..., help="checkpoint path or shipped name"),
            components: str = typer.Option(None, help="comma-separated components"),
            interfaces: str = typer.Option(None, help='prunable interfaces, e.g. "latent"'),
            task: str = TASK,
            vecnormalize: Path = VECNORMALIZE,
            planner: str = PLANNER,
            as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """Components, pruning groups, parameters and FLOPs."""
    try:
        from rlprune.pruning.accounting import CostModel, group_summary
        from rlprune.pruning.grouping import ComponentGrouper

        adapter = _load(agent, task, vecnormalize, planner)
        grouper = ComponentGrouper(adapter, _names(components), interfaces=_names(interfaces)
                                   or ())
        dense = CostModel(grouper).dense
        rows = group_summary(grouper)
    except _USER_ERRORS as e:
        _fail(e)
    lines = [f"{adapter.kind} agent: {len(rows)} groups in {len(grouper.components)} "
             f"components, {dense.params} parameters, {dense.flops} FLOPs per sample"]
    lines += [f"  {r['group']:<24} channels {r['channels']:>5}  params/ch "
              f"{r['params_per_channel']:>6}  flops/ch {r['flops_per_channel']:>6}" for r in rows]
    _emit({"agent": adapter.describe(), "params": dense.params, "flops": dense.flops,
           "params_by_component": dense.params_by_component, "groups": rows},
          as_json, "\n".join(lines))


@app.command("eval")
def evaluate(agent: str = typer.Argument(..., help="checkpoint path or shipped name"),
             env: str = typer.Option(None, help="env spec (default: the agent's task)"),
             episodes: int = typer.Option(10, help="seeded episodes, run in one batch"),
             seed: int = typer.Option(0, help="episode i resets with seed + i"),
             perturb: str = typer.Option(None, help='e.g. "mass=1.5,obs_noise=0.02"'),
             max_episode_steps: int = typer.Option(None, help="cap episode length"),
             task: str = TASK,
             vecnormalize: Path = VECNORMALIZE,
             planner: str = PLANNER,
             as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """Mean episode return with a 95% confidence interval."""
    try:
        from rlprune.analysis.evaluate import ClosedLoopEvaluator

        adapter = _load(agent, task, vecnormalize, planner)
        evaluator = ClosedLoopEvaluator.for_agent(adapter, env, episodes=episodes, seed=seed,
                                                  perturb=perturb,
                                                  max_episode_steps=max_episode_steps)
        spec = evaluator.env_spec
        result = evaluator.evaluate(adapter)
        if result.any_failed:
            raise ValueError(result.error or
                             f"{int(result.failed.sum())} of {episodes} episodes failed on a "
                             f"non-finite action or reward (episode seeds "
                             f"{[s for s, f in zip(result.seeds, result.failed) if f]})")
    except _USER_ERRORS as e:
        _fail(e)
    payload = {"env": spec, "seed": seed, **result.to_dict()}
    _emit(payload, as_json, f"{spec}: return {result.mean:.1f} +- {result.ci95:.1f} (95% CI, "
                            f"{episodes} episodes, {result.env_steps} env steps, "
                            f"{result.wall_time:.0f}s)")


@app.command()
def prune(agent: str = typer.Argument(..., help="checkpoint path or shipped name"),
          out: Path = typer.Option(..., help="run directory: pruned agent + report"),
          sparsity: float = typer.Option(..., help="target parameter sparsity rho in [0, 1)"),
          tol: float = TOL,
          method: str = typer.Option("magnitude", help=_methods_help()),
          budget: int = typer.Option(20, help="candidates scored on the real metric"),
          env: str = typer.Option(None, help="env spec (default: the agent's task)"),
          episodes: int = typer.Option(4, help="episodes per candidate"),
          race: bool = typer.Option(True, help="stop candidates clearly worse than the "
                                               "best so far early (paired test on the "
                                               "same episodes)"),
          seed: int = typer.Option(0),
          scope: str = typer.Option("auto", help="one coefficient per component or group "
                                                 "(auto: per group for a lone component)"),
          criterion: str = typer.Option("l2", help=_criteria_help()),
          components: str = typer.Option(None, help="comma-separated components to prune"),
          interfaces: str = typer.Option(None, help='prunable interfaces to shrink too, '
                                                    'e.g. "latent"'),
          round_to: int = typer.Option(1, help="kept channels per layer: a multiple of this"),
          finetune: int = typer.Option(0, help="distillation steps after pruning, kept if "
                                       "the search's episodes score no lower (0: none)"),
          max_episode_steps: int = typer.Option(None, help="cap episode length"),
          executor: str = EXECUTOR,
          workers: int = WORKERS,
          ray_address: str = typer.Option(None, help='existing Ray cluster, e.g. "auto"'),
          task: str = TASK,
          vecnormalize: Path = VECNORMALIZE,
          planner: str = PLANNER,
          objective: str = OBJECTIVE,
          as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """Search coefficients, prune physically, save the agent and a report to OUT."""
    try:
        from rlprune.pipeline import prune_agent
        from rlprune.search import make_executor, objective_for

        target = Target(sparsity, tol)
        settings = SearchSettings(method, budget, seed, criterion, scope,
                                  _tuple(components), _tuple(interfaces) or (), round_to)
        evaluation = Evaluation(env, episodes, seed, max_episode_steps, race)
        adapter = _load(agent, task, vecnormalize, planner)
        run = prune_agent(adapter, objective_for(adapter, evaluation, objective), out, target,
                          settings, evaluation, finetune=finetune,
                          executor=make_executor(executor, workers, ray_address),
                          progress=sys.stderr.isatty(), source=agent)
    except (*_USER_ERRORS, ImportError) as e:
        _fail(e)
    result, path, tuned = run.result, run.path, run.finetune
    payload = {"out": str(path), **{k: v for k, v in result.to_dict().items()
                                    if k not in ("history", "plan")}}
    text = (f"{method} at rho={sparsity}: sparsity {result.plan.sparsity:.3f}, metric "
            f"{result.metric:.2f} +- {result.ci95:.2f}, {result.evaluations} evaluations")
    if tuned:
        payload["finetune"] = tuned
        text += (f"; after {finetune} distillation steps {tuned['metric']:.2f} "
                 f"({'kept' if tuned['kept'] else 'not kept: lower than without'})")
    _emit(payload, as_json, f"{text} -> {path}")


@app.command()
def sweep(agent: str = typer.Argument(..., help="checkpoint path or shipped name"),
          out: Path = RESUMABLE_OUT,
          sparsities: str = typer.Option("0.2,0.4,0.6,0.8", help="targets rho"),
          methods: str = typer.Option("magnitude,random,cmaes", help="comma-separated: "
                                                                     + _methods_help()),
          tol: float = TOL,
          budget: int = BUDGET,
          env: str = typer.Option(None, help="env spec (default: the agent's task)"),
          episodes: int = typer.Option(4, help="search episodes per candidate"),
          eval_episodes: int = typer.Option(10, help="held-out episodes per table row"),
          seed: int = typer.Option(0, help="search episodes use seeds seed.., the table "
                                           "seed+1000.."),
          criterion: str = typer.Option("l2", help=_criteria_help()),
          interfaces: str = typer.Option(None, help='prunable interfaces, e.g. "latent"'),
          round_to: int = typer.Option(1, help="kept channels per layer: a multiple of this"),
          finetune: int = typer.Option(0, help="distillation steps: adds METHOD+ft rows"),
          race: bool = typer.Option(True, help="stop clearly worse candidates early"),
          max_episode_steps: int = typer.Option(None, help="cap search episodes (env steps)"),
          eval_max_episode_steps: int = typer.Option(None, help="cap table episodes too "
                                                                "(default: full length)"),
          executor: str = EXECUTOR,
          workers: int = WORKERS,
          task: str = TASK,
          vecnormalize: Path = VECNORMALIZE,
          planner: str = PLANNER,
          objective: str = OBJECTIVE,
          as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """Every method at every sparsity: a table and a plot of the metric vs sparsity."""
    try:
        from rlprune.report import markdown_table
        from rlprune.search import make_executor, objective_for
        from rlprune.sweep import COLUMNS, write_sweep_report
        from rlprune.sweep import sweep as run_sweep

        targets = _floats(sparsities, "--sparsities")
        adapter = _load(agent, task, vecnormalize, planner)
        evaluation = Evaluation(env, episodes, seed, max_episode_steps, race)
        held_out = evaluation.held_out(eval_episodes, eval_max_episode_steps)
        rows = run_sweep(adapter, objective_for(adapter, evaluation, objective), targets,
                         _names(methods) or [], out, tol=tol,
                         budget=budget, seed=seed, criterion=criterion,
                         interfaces=tuple(_names(interfaces) or ()), round_to=round_to,
                         report_objective=objective_for(adapter, held_out, objective),
                         finetune=finetune,
                         executor=make_executor(executor, workers),
                         progress=sys.stderr.isatty(),
                         log=lambda line: typer.echo(line, err=True))
        table, plot = write_sweep_report(rows, out, title=str(agent),
                                         ylabel=adapter.metric.label)
    except (*_USER_ERRORS, ImportError) as e:
        _fail(e)
    _emit({"out": str(out), "rows": rows, "table": str(table), "plot": str(plot)}, as_json,
          markdown_table(rows, [c for c in COLUMNS if any(c in r for r in rows)])
          + f"table: {table}\nplot: {plot}")


@app.command()
def zoo(sources: list[Path] = typer.Argument(..., help="RL Zoo log folders (ALGO/ENV_1/"
                                                       "ENV.zip) and/or agent files"),
        out: Path = RESUMABLE_OUT,
        sparsities: str = typer.Option("0.5,0.8", help="targets rho"),
        methods: str = typer.Option("magnitude,cmaes", help="comma-separated: "
                                                           + _methods_help()),
        tol: float = TOL,
        budget: int = BUDGET,
        episodes: int = typer.Option(4, help="search episodes per candidate"),
        eval_episodes: int = typer.Option(10, help="held-out full episodes per row"),
        seed: int = typer.Option(0, help="search seeds seed.., held-out seed+1000.."),
        max_episode_steps: int = typer.Option(None, help="cap search episodes (env steps)"),
        executor: str = EXECUTOR,
        workers: int = WORKERS,
        as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """Every agent of a zoo: dense and pruned returns in one leaderboard (md, json, png)."""
    try:
        from rlprune.search import make_executor
        from rlprune.zoo import ZooSettings, find_zoo_agents, run_zoo, write_leaderboard

        settings = ZooSettings(tuple(_floats(sparsities, "--sparsities")),
                               tuple(_names(methods) or ()), tol, budget, episodes,
                               eval_episodes, seed, max_episode_steps)
        agents = find_zoo_agents(sources)
        rows = run_zoo(agents, settings, out, executor=make_executor(executor, workers),
                       log=lambda line: typer.echo(line, err=True))
        paths = write_leaderboard(rows, settings, out)
    except (*_USER_ERRORS, ImportError) as e:
        _fail(e)
    failed = [r["agent"] for r in rows if r.get("error")]
    _emit({"out": str(out), "rows": rows, **{k: str(v) for k, v in paths.items()}}, as_json,
          Path(paths["md"]).read_text() + f"leaderboard: {paths['md']}, {paths['png']}"
          + (f"\n{len(failed)} agent(s) failed: {', '.join(failed)}" if failed else ""))


@app.command()
def report(run_dir: Path = typer.Argument(..., help="a prune, sweep or robustness run")):
    """Markdown report (report.md) of a run directory, with its plots."""
    try:
        from rlprune.run_report import write_run_report

        path = write_run_report(run_dir)
    except _USER_ERRORS as e:
        _fail(e)
    typer.echo(str(path))


@app.command()
def export(agent: str = typer.Argument(..., help="(pruned) checkpoint path or shipped name"),
           onnx: Path = typer.Option(..., "--onnx", help="output folder for .onnx files"),
           task: str = TASK,
           vecnormalize: Path = VECNORMALIZE,
           as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """ONNX graphs of the controller, each checked against PyTorch in onnxruntime."""
    try:
        from rlprune.export import export_onnx

        graphs = export_onnx(_load(agent, task, vecnormalize), onnx)
    except (*_USER_ERRORS, ImportError) as e:
        _fail(e)
    _emit({"graphs": [g.__dict__ for g in graphs]}, as_json,
          "\n".join(f"{g.path}  (max |onnx - torch| = {g.max_abs_error:.1e})" for g in graphs))


@app.command()
def robustness(agents: list[str] = typer.Argument(..., help="dense agent, then pruned ones"),
               perturb: str = typer.Option(..., help='grid, e.g. "mass=0.5:2:4,obs_noise=0:0.1:3"'),
               out: Path = typer.Option(..., help="output folder (resumes if present)"),
               env: str = typer.Option(None, help="env spec (default: the first agent's task)"),
               episodes: int = typer.Option(4),
               seed: int = typer.Option(0),
               max_episode_steps: int = typer.Option(None, help="cap episode length"),
               as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """Dense vs pruned returns across a grid of perturbations: table, JSON and plot."""
    try:
        from rlprune.analysis.evaluate import ClosedLoopEvaluator
        from rlprune.analysis.robustness import parse_grid, plot_robustness, robustness_study
        from rlprune.report import markdown_table

        grid = parse_grid(perturb)
        if len(grid) > 2:
            raise ValueError("give at most two perturbations to vary (one line plot or "
                             "one heatmap per agent)")
        loaded = {name: _load(name) for name in agents}
        nominal = ClosedLoopEvaluator.for_agent(next(iter(loaded.values())), env, episodes=1)
        spec = nominal.env_spec
        rows = robustness_study(loaded, spec, grid, out, episodes=episodes, seed=seed,
                                action_repeat=nominal.options["action_repeat"],
                                max_episode_steps=max_episode_steps,
                                env_kwargs=nominal.env_kwargs)
        plot = plot_robustness(rows, grid, Path(out) / "robustness.png")
    except _USER_ERRORS as e:
        _fail(e)
    flat = [{"agent": r["agent"], **r["perturb"], "mean": r["mean"], "ci95": r["ci95"]}
            for r in rows]
    _emit({"env": spec, "grid": grid, "rows": rows, "plot": str(plot)}, as_json,
          markdown_table(flat, ["agent", *grid, "mean", "ci95"]) + f"plot: {plot}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
