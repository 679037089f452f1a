"""Commands that study results: robustness across perturbations, run reports."""

from __future__ import annotations

from pathlib import Path

import typer

from rlprune.cli.app import (
    _USER_ERRORS,
    EXECUTOR,
    JSON,
    RAY_ADDRESS,
    WORKERS,
    _emit,
    _fail,
    _load,
    app,
    write_reports,
)


@app.command()
def robustness(agents: list[str] = typer.Argument(..., help="dense agent, then pruned ones"),
               perturb: str = typer.Option(..., help='grid, e.g. "mass=0.5:2:4,obs_noise=0:0.1:3"'),
               out: Path = typer.Option(..., help="output folder (resumes if present)"),
               env: str = typer.Option(None, help="env spec (default: the first agent's task)"),
               episodes: int = typer.Option(4),
               seed: int = typer.Option(0),
               max_episode_steps: int = typer.Option(None, help="cap episode length"),
               quiet: bool = typer.Option(False, "--quiet", help="no progress lines"),
               executor: str = EXECUTOR,
               workers: int = WORKERS,
               ray_address: str = RAY_ADDRESS,
               as_json: bool = JSON):
    """Dense vs pruned returns across a grid of perturbations: table, JSON and plot."""
    try:
        from rlprune.analysis.robustness import agents_robustness, parse_grid, plot_robustness
        from rlprune.report import markdown_table
        from rlprune.search import make_executor

        grid = parse_grid(perturb)
        if len(grid) > 2:
            raise ValueError("give at most two perturbations to vary (one line plot or "
                             "one heatmap per agent)")
        loaded = {name: _load(name) for name in agents}
        spec, rows = agents_robustness(
            loaded, grid, out, env, episodes=episodes, seed=seed,
            max_episode_steps=max_episode_steps,
            executor=make_executor(executor, workers, ray_address),
            log=(lambda line: None) if quiet else
            (lambda line: typer.echo(f"rlprune: {line}", err=True)))
        plot = plot_robustness(rows, grid, Path(out) / "robustness.png")
        write_reports(out)
    except (*_USER_ERRORS, ImportError) as e:
        _fail(e)
    flat = [{"agent": r["agent"], **r["perturb"], "mean": r["mean"], "ci95": r["ci95"]}
            for r in rows]
    _emit({"env": spec, "grid": grid, "rows": rows, "plot": str(plot)}, as_json,
          markdown_table(flat, ["agent", *grid, "mean", "ci95"]) + f"plot: {plot}")


@app.command()
def report(run_dir: Path = typer.Argument(..., help="a prune, sweep or robustness run"),
           as_html: bool = typer.Option(False, "--html", help="also report.html: one "
                                        "self-contained page, plots and videos embedded")):
    """Markdown report (report.md) of a run directory, with its plots (and report.html)."""
    try:
        from rlprune.html_report import write_html_report
        from rlprune.run_report import write_run_report

        paths = [write_run_report(run_dir)]
        if as_html:
            paths.append(write_html_report(run_dir))
    except _USER_ERRORS as e:
        _fail(e)
    typer.echo("\n".join(str(p) for p in paths))
