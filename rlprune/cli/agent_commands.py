"""Commands about one agent: inspect, eval, latency, export."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from tqdm import tqdm

from rlprune.cli.app import (
    _USER_ERRORS,
    BACKEND,
    BACKEND_LIST,
    JSON,
    PLANNER,
    TASK,
    THREADS,
    VECNORMALIZE,
    _emit,
    _fail,
    _load,
    _names,
    app,
)


@app.command()
def inspect(agent: str = typer.Argument(..., help="checkpoint path or shipped name"),
            components: str = typer.Option(None, help="comma-separated components"),
            interfaces: str = typer.Option(None, help='prunable interfaces, e.g. "latent"'),
            task: str = TASK,
            vecnormalize: Path = VECNORMALIZE,
            planner: str = PLANNER,
            as_json: bool = JSON):
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
             f"components, {dense.params} parameters, {dense.flops} FLOPs per sample, "
             f"{dense.step_flops:.4g} FLOPs per control step"]
    lines += [f"  {r['group']:<24} channels {r['channels']:>5}  params/ch "
              f"{r['params_per_channel']:>6}  flops/ch {r['flops_per_channel']:>6}" for r in rows]
    _emit({"agent": adapter.describe(), "params": dense.params, "flops": dense.flops,
           "step_flops": dense.step_flops, "params_by_component": dense.params_by_component,
           "step_calls": {name: [vars(c) for c in calls]
                          for name, calls in adapter.step_calls().items()},
           "groups": rows},
          as_json, "\n".join(lines))


@app.command("eval")
def evaluate(agent: str = typer.Argument(..., help="checkpoint path or shipped name"),
             env: str = typer.Option(None, help="env spec (default: the agent's task)"),
             episodes: int = typer.Option(10, help="seeded episodes, run in one batch"),
             seed: int = typer.Option(0, help="episode i resets with seed + i"),
             perturb: str = typer.Option(None, help='e.g. "mass=1.5,obs_noise=0.02"'),
             max_episode_steps: int = typer.Option(None, help="cap episode length"),
             video: Path = typer.Option(None, help="also render the first episode to this "
                                                   ".gif (or .mp4 with imageio-ffmpeg)"),
             side_by_side: str = typer.Option(None, "--side-by-side",
                                              help="a second agent beside it in the video, "
                                                   "on the same seed"),
             backend: str = BACKEND,
             task: str = TASK,
             vecnormalize: Path = VECNORMALIZE,
             planner: str = PLANNER,
             as_json: bool = JSON):
    """Mean episode return with a 95% confidence interval (and a rollout video)."""
    try:
        from rlprune.analysis.evaluate import ClosedLoopEvaluator
        from rlprune.backends import on_backend
        from rlprune.video import check_video_path, record_video

        if side_by_side and not video:
            raise ValueError("--side-by-side goes with --video PATH")
        if video:
            check_video_path(video)
        adapter = on_backend(_load(agent, task, vecnormalize, planner), backend)
        evaluator = ClosedLoopEvaluator.for_agent(adapter, env, episodes=episodes, seed=seed,
                                                  perturb=perturb,
                                                  max_episode_steps=max_episode_steps)
        spec = evaluator.env_spec
        with tqdm(desc="control steps", unit="step", disable=not sys.stderr.isatty(),
                  mininterval=1, leave=False) as bar:  # all episodes step together
            result = evaluator.evaluate(adapter, lambda *step: bar.update(1))
        if result.any_failed:
            raise ValueError(result.error or
                             f"{int(result.failed.sum())} of {episodes} episodes failed on a "
                             f"non-finite action or reward (episode seeds "
                             f"{[s for s, f in zip(result.seeds, result.failed) if f]})")
        filmed = {}
        if video:
            agents = {Path(agent).stem: adapter}
            if side_by_side:
                other = Path(side_by_side).stem
                agents[other if other not in agents else f"{other} (2)"] = _load(
                    side_by_side, task, None, planner)
            path, rollouts = record_video(agents, evaluator, video)
            filmed = {"video": str(path), "video_seed": seed,
                      "video_returns": {r.label: r.episode_return for r in rollouts}}
    except _USER_ERRORS as e:
        _fail(e)
    payload = {"env": spec, "seed": seed, **result.to_dict(), **filmed}
    low, high = payload["iqm_ci95"]
    text = (f"{spec}: return {result.mean:.1f} +- {result.ci95:.1f} (95% CI), "
            f"IQM {payload['iqm']:.1f} [{low:.1f}, {high:.1f}] (bootstrap 95% CI), "
            f"{episodes} episodes, {result.env_steps} env steps, {result.wall_time:.0f}s")
    if filmed:
        returns = ", ".join(f"{k} {v:.1f}" for k, v in filmed["video_returns"].items())
        text += f"\nvideo: {filmed['video']} (seed {seed}: {returns})"
    _emit(payload, as_json, text)



@app.command()
def export(agent: str = typer.Argument(..., help="(pruned) checkpoint path or shipped name"),
           onnx: Path = typer.Option(..., "--onnx", help="output folder for .onnx files"),
           task: str = TASK,
           vecnormalize: Path = VECNORMALIZE,
           as_json: bool = JSON):
    """ONNX graphs of the controller, each checked against PyTorch in onnxruntime."""
    try:
        from rlprune.export import export_onnx

        graphs = export_onnx(_load(agent, task, vecnormalize), onnx)
    except (*_USER_ERRORS, ImportError) as e:
        _fail(e)
    _emit({"graphs": [g.__dict__ for g in graphs]}, as_json,
          "\n".join(f"{g.path}  (max |onnx - torch| = {g.max_abs_error:.1e})" for g in graphs))


@app.command()
def latency(agents: list[str] = typer.Argument(..., help="agents to time: the first is the "
                                                         "reference (e.g. dense, then pruned)"),
            threads: int = THREADS,
            steps: int = typer.Option(20, help="timed control steps (after 3 warm-up steps)"),
            seed: int = typer.Option(0, help="seeds the observations acted on"),
            backend: str = BACKEND_LIST,
            widths: bool = typer.Option(False, "--widths", help="instead: the width "
                                        "staircase of the costliest layer and a --round-to "
                                        "that loses nothing"),
            task: str = TASK,
            vecnormalize: Path = VECNORMALIZE,
            planner: str = PLANNER,
            as_json: bool = JSON):
    """Time per control step, measured (median, p90) beside the cost model's prediction."""
    try:
        from rlprune.latency_report import latency_rows, width_staircase

        loaded = [_load(name, task, vecnormalize, planner) for name in agents]
        if widths:
            staircase = width_staircase(loaded[0], threads)
        else:
            rows = latency_rows(dict(zip(agents, loaded)), threads, steps, seed,
                                _names(backend) or ["eager"])
    except (*_USER_ERRORS, ImportError) as e:
        _fail(e)
    from rlprune.report import markdown_table

    if widths:
        _emit(staircase, as_json, markdown_table(staircase["multiples"], [
            "round_to", "odd_widths", "next_multiple_faster"])
            + f"{staircase['component']}'s first hidden layer at {staircase['rows']} rows: "
              f"--round-to {staircase['suggested_round_to']} loses nothing here")
        return
    _emit({"threads": threads, "rows": rows}, as_json, markdown_table(rows, [
        "agent", "backend", "params", "step_mflops", "median_ms", "p90_ms", "predicted_ms",
        "speedup"]))
