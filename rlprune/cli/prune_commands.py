"""Commands that prune: prune (one target), sweep (methods x targets), zoo (many agents)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from rlprune.cli.app import (
    _USER_ERRORS,
    AGGREGATE,
    BUDGET,
    EXECUTOR,
    HELD_OUT_MAX_STEPS,
    JSON,
    OBJECTIVE,
    PERTURB_SET,
    PLANNER,
    RAY_ADDRESS,
    RESUMABLE_OUT,
    SEARCH_MAX_STEPS,
    TASK,
    THREADS,
    TOL,
    VECNORMALIZE,
    WORKERS,
    _backends_help,
    _criteria_help,
    _emit,
    _fail,
    _floats,
    _load,
    _methods_help,
    _names,
    _target,
    _tuple,
    app,
    write_reports,
)
from rlprune.settings import Evaluation, SearchSettings


def _round_to(option: str) -> int | None:
    """``--round-to``: a whole number >= 1, or None for ``auto``."""
    if option == "auto":
        return None
    try:
        value = int(option)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"--round-to takes a whole number >= 1 or 'auto', got {option!r}")
    return value


def _measured_round_to(adapter, goal, components, threads: int, quiet: bool) -> int:
    """The largest multiple the measured width staircase says costs nothing on this agent
    and thread count, halved until a parameter target stays reachable with it."""
    from rlprune.latency_report import width_staircase
    from rlprune.pruning.grouping import ComponentGrouper
    from rlprune.pruning.ranking import InfeasibleTarget
    from rlprune.search import baseline_plan

    if adapter.observation_space is None:
        raise ValueError(f"{adapter.kind} agent does not act: --round-to auto needs a "
                         "control step to time")
    staircase = width_staircase(adapter, threads)
    chosen = staircase["suggested_round_to"]
    if goal.measure == "params":
        grouper = ComponentGrouper(adapter, list(components) if components else None)
        while chosen > 1:
            try:
                baseline_plan(grouper, "magnitude", goal.sparsity, goal.tol, round_to=chosen)
                break
            except InfeasibleTarget:
                chosen //= 2
    if not quiet:
        typer.echo(f"rlprune: --round-to auto: {chosen} (measured width staircase of "
                   f"{staircase['component']}, {threads} thread(s); it suggests "
                   f"{staircase['suggested_round_to']})", err=True)
    return chosen


@app.command()
def prune(agent: str = typer.Argument(..., help="checkpoint path or shipped name"),
          out: Path = typer.Option(..., help="run directory: pruned agent + report"),
          sparsity: float = typer.Option(None, help="target parameter sparsity rho in [0, 1)"),
          speedup: float = typer.Option(None, help="target measured speed-up of a control "
                                                   "step instead (e.g. 2: half the time)"),
          target: str = typer.Option(None, help='or another target: "flops=0.5" (FLOPs per '
                                                'control step), "latency=0.5", "params=0.5"'),
          tol: float = TOL,
          threads: int = THREADS,
          backend: str = typer.Option("eager", "--backend", help="what runs the acting "
                                      "networks when control steps are timed and a time "
                                      "target is predicted: " + _backends_help()),
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
          round_to: str = typer.Option("1", help="kept channels per layer: a multiple of "
                                       "this, or 'auto': the largest multiple the measured "
                                       "width staircase says costs nothing (rlprune latency "
                                       "--widths)"),
          finetune: int = typer.Option(0, help="distillation steps after pruning, kept if "
                                       "the search's episodes score no lower (0: none)"),
          max_episode_steps: int = SEARCH_MAX_STEPS,
          eval_episodes: int = typer.Option(10, help="held-out episodes (seeds seed+1000..) "
                                                     "the result and the dense agent are "
                                                     "compared on; 0: no check"),
          eval_max_episode_steps: int = HELD_OUT_MAX_STEPS,
          executor: str = EXECUTOR,
          workers: int = WORKERS,
          ray_address: str = RAY_ADDRESS,
          task: str = TASK,
          vecnormalize: Path = VECNORMALIZE,
          planner: str = PLANNER,
          planner_budgets: bool = typer.Option(
              True, "--planner-budgets/--no-planner-budgets",
              help="with --speedup or a latency target on an agent that plans: also try "
                   "cheaper planners (fewer MPPI iterations or samples, the policy prior "
                   "alone), keep the best-scoring way to the deadline and cut the networks "
                   "for what is left (OUT/planner_budgets.json)"),
          objective: str = OBJECTIVE,
          perturb: str = PERTURB_SET,
          aggregate: str = AGGREGATE,
          video: bool = typer.Option(False, "--video", help="render the dense and the "
                                     "pruned agent side by side on the first held-out "
                                     "episode (OUT/rollout_dense_vs_pruned.gif)"),
          max_rollout_error: float = typer.Option(None, help="reject candidates whose "
                                                  "dynamics rollouts stray further from "
                                                  "the dense model's (world models)"),
          max_jacobian_radius: float = typer.Option(None, help="reject candidates whose "
                                                    "policy-prior loop's Jacobian has a "
                                                    "larger spectral radius (world models)"),
          max_planner_radius: float = typer.Option(None, help="reject candidates whose "
                                                   "acting loop (MPPI's, by finite "
                                                   "differences: ~10 s a candidate) has a "
                                                   "larger Jacobian spectral radius"),
          envelope: str = typer.Option(None, help='robustness envelope after pruning: '
                                       'dense and pruned on a grid, e.g. '
                                       '"mass=0.5:1.5:3,obs_noise=0:0.05:2", on the '
                                       'held-out seeds (OUT/envelope)'),
          quiet: bool = typer.Option(False, "--quiet", help="no progress lines on stderr"),
          as_json: bool = JSON):
    """Search coefficients, prune physically, save the agent and a report (report.md,
    report.html) to OUT."""
    try:
        from rlprune.analysis.evaluate import ClosedLoopEvaluator
        from rlprune.analysis.robustness import parse_grid
        from rlprune.pipeline import prune_agent
        from rlprune.search import make_executor
        from rlprune.search.constraints import StabilityLimits
        from rlprune.video import record_video

        goal = _target(sparsity, speedup, target, tol)
        rounding = _round_to(round_to)
        envelope_grid = parse_grid(envelope) if envelope else None
        evaluation = Evaluation(env, episodes, seed, max_episode_steps, race,
                                perturb=perturb, aggregate=aggregate)
        held_out = evaluation.held_out(eval_episodes, eval_max_episode_steps) \
            if eval_episodes else None
        adapter = _load(agent, task, vecnormalize, planner)
        if rounding is None:
            rounding = _measured_round_to(adapter, goal, _tuple(components), threads, quiet)
        settings = SearchSettings(method, budget, seed, criterion, scope,
                                  _tuple(components), _tuple(interfaces) or (), rounding)
        if video:  # an agent that cannot be filmed fails here, before the search
            filming = held_out or evaluation.held_out(1, eval_max_episode_steps)
            evaluator = ClosedLoopEvaluator.for_agent(
                adapter, filming.env, episodes=1, seed=filming.seed,
                max_episode_steps=filming.max_episode_steps)
        run = prune_agent(adapter, out, goal, settings, evaluation, finetune=finetune,
                          held_out=held_out, objective_name=objective,
                          executor=make_executor(executor, workers, ray_address),
                          progress=sys.stderr.isatty() and not quiet, source=agent,
                          threads=threads, backend=backend,
                          limits=StabilityLimits(max_rollout_error, max_jacobian_radius,
                                                 max_planner_radius),
                          envelope=envelope_grid, planner_budgets=planner_budgets,
                          log=(lambda line: None) if quiet else
                          (lambda line: typer.echo(f"rlprune: {line}", err=True)))
        if video:
            record_video({"dense": adapter, "pruned": _load(str(run.path), task,
                                                           None, planner)},
                         evaluator, Path(out) / "rollout_dense_vs_pruned.gif")
        write_reports(out)
    except (*_USER_ERRORS, ImportError) as e:
        _fail(e)
    result, path, tuned = run.result, run.path, run.finetune
    payload = {"out": str(path), **{k: v for k, v in result.to_dict().items()
                                    if k not in ("history", "plan")}}
    text = (f"{method} at {goal.measure}={goal.sparsity:.3f}: sparsity "
            f"{result.plan.sparsity:.3f}, metric {result.metric:.2f} +- {result.ci95:.2f}, "
            f"{result.evaluations} evaluations")
    if run.planner_budget:
        payload["planner_budget"] = chosen = run.planner_budget["chosen"]
        text += (f"; planner iterations={chosen['iterations']},samples={chosen['samples']}"
                 + ("" if chosen["network_saving"] else " alone"))
    if run.latency:
        payload["latency"] = timed = run.latency
        text += (f"; step {timed['dense']['median_ms']:.2f} -> "
                 f"{timed['pruned']['median_ms']:.2f} ms ({timed['speedup']:.2f}x measured"
                 + (f", {timed['predicted_speedup']:.2f}x predicted"
                    if "predicted_speedup" in timed else "")
                 + f", {threads} thread{'s' if threads > 1 else ''}"
                 + ("" if backend == "eager" else f", {backend}") + ")")
    if tuned:
        payload["finetune"] = tuned
        text += (f"; after {finetune} distillation steps {tuned['metric']:.2f} on validation "
                 f"episodes vs {tuned['untuned_metric']:.2f} untuned "
                 f"({'kept' if tuned['kept'] else 'not kept: lower than without'})")
    if run.held_out:
        payload["held_out"] = check = run.held_out
        text += (f"\nheld out: dense {check['dense']['metric']:.2f}, pruned "
                 f"{check['pruned']['metric']:.2f}, difference "
                 f"{check['difference']['mean']:+.2f} +- {check['difference']['ci95']:.2f}")
    _emit(payload, as_json, f"{text} -> {path}")


@app.command()
def sweep(agent: str = typer.Argument(..., help="checkpoint path or shipped name"),
          out: Path = RESUMABLE_OUT,
          sparsities: str = typer.Option("0.2,0.4,0.6,0.8", help="targets rho"),
          methods: str = typer.Option("magnitude,random,cmaes", help="comma-separated: "
                                      + _methods_help() + "; distill-small: a small dense "
                                      "network of the pruned widths, distilled afresh from "
                                      "the dense agent; scratch-small: the agents of "
                                      "--scratch"),
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
          distill_steps: int = typer.Option(1000, help="distillation steps of the "
                                            "distill-small baseline"),
          scratch: list[str] = typer.Option(None, help="RHO=PATH: a small agent trained "
                                            "from scratch, the scratch-small row at RHO "
                                            "(repeatable)"),
          video: bool = typer.Option(False, "--video", help="film the dense agent beside "
                                     "each method's at the highest sparsity, on the first "
                                     "held-out episode"),
          race: bool = typer.Option(True, help="stop clearly worse candidates early"),
          max_episode_steps: int = SEARCH_MAX_STEPS,
          eval_max_episode_steps: int = HELD_OUT_MAX_STEPS,
          executor: str = EXECUTOR,
          workers: int = WORKERS,
          ray_address: str = RAY_ADDRESS,
          task: str = TASK,
          vecnormalize: Path = VECNORMALIZE,
          planner: str = PLANNER,
          objective: str = OBJECTIVE,
          perturb: str = PERTURB_SET,
          aggregate: str = AGGREGATE,
          as_json: bool = JSON):
    """Every method at every sparsity: a table and a plot of the metric vs sparsity."""
    try:
        from rlprune.analysis.evaluate import ClosedLoopEvaluator
        from rlprune.report import markdown_table
        from rlprune.search import make_executor, objective_for
        from rlprune.search.visited import VisitedInputs
        from rlprune.small_dense import (
            SCRATCH_SMALL,
            SMALL_DENSE,
            TrainedSmallAgents,
            small_dense_baseline,
        )
        from rlprune.sweep import COLUMNS, write_sweep_report
        from rlprune.sweep import sweep as run_sweep
        from rlprune.video import film_sweep

        targets = _floats(sparsities, "--sparsities")
        adapter = _load(agent, task, vecnormalize, planner)
        evaluation = Evaluation(env, episodes, seed, max_episode_steps, race,
                                perturb=perturb, aggregate=aggregate)
        held_out = evaluation.held_out(eval_episodes, eval_max_episode_steps)
        if video:  # an agent that cannot be filmed fails here, before the sweep
            filming = ClosedLoopEvaluator.for_agent(
                adapter, env, episodes=1, seed=held_out.seed,
                max_episode_steps=eval_max_episode_steps)
        searched = objective_for(adapter, evaluation, objective)
        names = _names(methods) or []
        if scratch and SCRATCH_SMALL not in names:
            names.append(SCRATCH_SMALL)  # files given: their rows are wanted
        extra = {SMALL_DENSE: small_dense_baseline(VisitedInputs(searched, adapter, out),
                                                   distill_steps, tol)} \
            if SMALL_DENSE in names else {}
        if SCRATCH_SMALL in names:
            extra[SCRATCH_SMALL] = trained = TrainedSmallAgents.parse(
                scratch or [], lambda path: _load(str(path), task, None, planner))
            trained.check(targets)
        rows = run_sweep(adapter, searched, targets, names, out, tol=tol,
                         budget=budget, seed=seed, criterion=criterion,
                         interfaces=tuple(_names(interfaces) or ()), round_to=round_to,
                         report_objective=objective_for(adapter, held_out, objective),
                         finetune=finetune, extra_methods=extra,
                         executor=make_executor(executor, workers, ray_address),
                         progress=sys.stderr.isatty(),
                         log=lambda line: typer.echo(line, err=True))
        table, plot = write_sweep_report(rows, out, title=str(agent),
                                         ylabel=adapter.metric.label)
        if video:
            film_sweep(adapter, rows, out, filming,
                       lambda path: _load(str(path), task, None, planner))
        write_reports(out)
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
        max_episode_steps: int = SEARCH_MAX_STEPS,
        executor: str = EXECUTOR,
        workers: int = WORKERS,
        ray_address: str = RAY_ADDRESS,
        as_json: bool = JSON):
    """Every agent of a zoo: dense and pruned returns in one leaderboard (md, json, png),
    and report.md / report.html."""
    try:
        from rlprune.search import make_executor
        from rlprune.zoo import ZooSettings, find_zoo_agents, run_zoo, write_leaderboard

        settings = ZooSettings(tuple(_floats(sparsities, "--sparsities")),
                               tuple(_names(methods) or ()), tol, budget, episodes,
                               eval_episodes, seed, max_episode_steps)
        agents = find_zoo_agents(sources)
        rows = run_zoo(agents, settings, out,
                       executor=make_executor(executor, workers, ray_address),
                       log=lambda line: typer.echo(line, err=True))
        paths = write_leaderboard(rows, settings, out)
        write_reports(out)
    except (*_USER_ERRORS, ImportError) as e:
        _fail(e)
    failed = [r["agent"] for r in rows if r.get("error")]
    _emit({"out": str(out), "rows": rows, **{k: str(v) for k, v in paths.items()}}, as_json,
          Path(paths["md"]).read_text() + f"leaderboard: {paths['md']}, {paths['png']}"
          + (f"\n{len(failed)} agent(s) failed: {', '.join(failed)}" if failed else ""))
