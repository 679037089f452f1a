"""``report.md`` for a run directory: what a prune, sweep or robustness run found.

Reads only the files the runs write (``report.json``, ``sweep.json``, ``results.json``)
and the plots next to them (redrawn when missing), so a report can be made at any time,
also from a run that is still going.
"""

from __future__ import annotations

import json
from pathlib import Path

from rlprune.io import atomic_write_text
from rlprune.report import markdown_table, plot_kept_channels

__all__ = ["report_markdown", "write_run_report"]


def _prune_section(run_dir: Path) -> str:
    data = json.loads((run_dir / "report.json").read_text())
    result, plan = data["result"], data["result"]["plan"]
    summary = [{"agent": data["agent"], "method": result["method"],
                "sparsity": result["sparsity"], "flop_sparsity": result["flop_sparsity"],
                "params": f"{plan['params']} / {plan['dense_params']}",
                "metric": result["metric"], "ci95": result["ci95"],
                "evaluations": result["evaluations"], "env_steps": result["env_steps"],
                "env_steps_saved": result.get("env_steps_saved", 0)}]
    coefficients = [{"unit": k, "coefficient": v} for k, v in result["coefficients"].items()]
    by_component = [{"component": k, "sparsity": v}
                    for k, v in plan["component_sparsity"].items()]
    tuned = data.get("finetune")
    if tuned:
        summary[0].update(finetune_steps=tuned["steps"], metric_finetuned=tuned["metric"],
                          finetune_kept=tuned["kept"])
    kept = ""
    if plan.get("channels"):  # runs of earlier releases did not record group widths
        plot = plot_kept_channels(plan["channels"], plan["removed"],
                                  run_dir / "kept_channels.png")
        kept = f"\n### Channels kept per group\n\n![kept channels per group]({plot.name})\n"
    return ("## Pruned agent\n\n"
            + markdown_table(summary, list(summary[0]))
            + _held_out_section(data.get("held_out"))
            + _grid_envelope_section(run_dir, data.get("envelope"))
            + _latency_section(data.get("latency"))
            + _planner_budget_section(data.get("planner_budget"))
            + "\n### Sparsity per component\n\n"
            + markdown_table(by_component, ["component", "sparsity"]) + kept
            + "\n### Coefficients\n\n" + markdown_table(coefficients, ["unit", "coefficient"]))


def _sweep_section(run_dir: Path) -> str:
    from rlprune.sweep import COLUMNS, write_sweep_report

    data = json.loads((run_dir / "sweep.json").read_text())
    rows = data["rows"]
    kind = data.get("agent", {}).get("kind", "")
    env = data.get("settings", {}).get("report", {})
    title = f"{kind} on {env['env']}" if isinstance(env, dict) and "env" in env else kind
    _, plot = write_sweep_report(rows, run_dir, title=title,
                                 ylabel=data.get("metric", {}).get("label", "metric"))
    dense = next((r for r in rows if r["method"] == "dense"), None)
    if dense and dense["metric"]:
        rows = [r | {"of_dense": r["metric"] / dense["metric"]} for r in rows]
    columns = [c for c in COLUMNS if any(c in r for r in rows)]
    if dense:
        columns.insert(columns.index("metric") + 1, "of_dense")
    speedup = run_dir / "metric_vs_speedup.png"
    timed = f"![metric vs measured speed-up]({speedup.name})\n\n" if speedup.exists() else ""
    return ("## Metric vs sparsity\n\n" + f"![metric vs sparsity]({plot.name})\n\n" + timed
            + markdown_table(rows, columns))


def _held_out_section(check: dict | None) -> str:
    """Dense vs pruned on the held-out episodes, if the run made that check."""
    if not check:
        return ""
    rows = [{"agent": name, "metric": check[name]["metric"], "ci95": check[name]["ci95"]}
            for name in ("dense", "pruned")]
    for row in rows:  # episode returns: their interquartile mean too
        if "iqm" in check[row["agent"]]:
            low, high = check[row["agent"]]["iqm_ci95"]
            row.update(iqm=check[row["agent"]]["iqm"], iqm_ci95=f"[{low:.3f}, {high:.3f}]")
    difference = check["difference"]
    return ("\n### Held-out check\n\n" + markdown_table(rows, list(rows[0]))
            + f"\npruned - dense: {difference['mean']:+.3f} +- {difference['ci95']:.3f} "
              "(paired 95% CI)\n" + _envelope_section(check)
            + _stability_section(check.get("stability")))


def _envelope_section(check: dict) -> str:
    """Dense vs pruned on every perturbed system of a robust objective's held-out check:
    the worst case of each, and where the pruned agent gives up most."""
    dense, pruned = (check[n].get("per_perturbation") for n in ("dense", "pruned"))
    if not dense:
        return ""
    systems = [", ".join(f"{k}={v:.3g}" for k, v in part["perturb"].items())
               for part in check["objective"]["perturbations"]]
    rows = [{"system": s, "dense": d, "pruned": p, "pruned - dense": p - d}
            for s, d, p in zip(systems, dense, pruned)]
    worst = min(rows, key=lambda r: r["pruned - dense"])
    return ("\n### Robustness envelope (held-out systems)\n\n"
            + markdown_table(rows, list(rows[0]))
            + f"\nworst case: dense {min(dense):.3f}, pruned {min(pruned):.3f}; the pruned "
              f"agent loses most at {worst['system']} ({worst['pruned - dense']:+.3f})\n")


def _grid_envelope_section(run_dir: Path, envelope: dict | None) -> str:
    """Dense vs pruned over the ``--envelope`` grid: worst cases, and every point with
    the pruned agent's largest losses first."""
    if not envelope:
        return ""
    from rlprune.analysis.robustness import breaking_points, plot_robustness

    folder = run_dir / "envelope"
    rows = json.loads((folder / "results.json").read_text())["rows"]
    plot = ""
    if len(envelope["grid"]) <= 2:
        image = plot_robustness(rows, envelope["grid"], run_dir / "envelope.png")
        plot = f"![robustness envelope]({image.name})\n\n"
    worst = envelope["worst"]
    said = "; ".join(f"{name} {w['mean']:.3f} at " + ", ".join(
        f"{k}={v:.3g}" for k, v in w["perturb"].items()) for name, w in worst.items())
    return ("\n### Robustness envelope\n\n" + plot
            + markdown_table(breaking_points(rows), ["system", "dense", "pruned",
                                                     "pruned - dense"])
            + f"\nworst case: {said} ({envelope['episodes']} held-out episodes per "
              f"system); the pruned agent loses most at {envelope['breaks_first']['system']}\n")


def _stability_section(stability: dict | None) -> str:
    """The pruned agent's stability on the dense agent's held-out trajectories."""
    if not stability:
        return ""
    numbers = {k: (", ".join(f"{x:.3g}" for x in v) if isinstance(v, list) else v)
               for k, v in stability.items() if not k.startswith("loop")}
    planner = (f"; the `_planner` columns are about the {stability['loop_planner']}"
               if "loop_planner" in stability else "")
    return ("\n### Stability\n\n" + markdown_table([numbers], list(numbers))
            + f"\nabout the {stability['loop']}{planner}\n")


def _latency_section(timed: dict | None) -> str:
    """Measured time per control step, dense and pruned, if the agent acts."""
    if not timed:
        return ""
    rows = [{"agent": name, **timed[name]} for name in ("dense", "pruned")]
    predicted = timed.get("predicted_speedup")
    return ("\n### Time per control step\n\n" + markdown_table(rows, list(rows[0]))
            + f"\nspeed-up {timed['speedup']:.2f}x measured on {timed['threads']} "
              f"thread(s)" + (f", {predicted:.2f}x predicted" if predicted else "") + "\n")


def _planner_budget_section(budgets: dict | None) -> str:
    """The planner budgets a time target screened: their times, the network cut each
    needed, their scores, and the one the network search continued from."""
    if not budgets:
        return ""
    chosen = budgets["chosen"]
    rows = [{"iterations": o["iterations"], "samples": o["samples"],
             "step_ms": o["step_ms"], "network_saving": o["network_saving"],
             "metric": o["metric"], "ci95": o["ci95"],
             "chosen": "yes" if (o["iterations"], o["samples"])
             == (chosen["iterations"], chosen["samples"]) else ""}
            for o in budgets["options"]]
    own = budgets["own"]
    return ("\n### Planner budget\n\n"
            f"Cheaper planners screened on the search's episodes (the agent's own: "
            f"{own['iterations']} iterations x {own['samples']} samples; step times "
            "measured with the networks unpruned; network_saving: the share of that time "
            "a magnitude cut had to remove, 0 where the budget alone meets the target). "
            "The pruned agent plans with the chosen budget.\n\n"
            + markdown_table(rows, list(rows[0])))


def _robustness_section(run_dir: Path) -> str:
    from rlprune.analysis.robustness import plot_robustness

    data = json.loads((run_dir / "results.json").read_text())
    grid = data["grid"]
    plot = run_dir / "robustness.png"
    if not plot.exists():
        plot_robustness(data["rows"], grid, plot)
    flat = [{"agent": r["agent"], **r["perturb"], "mean": r["mean"], "ci95": r["ci95"],
             "failed": r.get("failed", 0)} for r in data["rows"]]
    return (f"## Robustness on {data['env']}\n\n![robustness]({plot.name})\n\n"
            + markdown_table(flat, ["agent", *grid, "mean", "ci95", "failed"]))


def _zoo_section(run_dir: Path) -> str:
    from rlprune.zoo import LEADERBOARD_COLUMNS, plot_leaderboard

    rows = json.loads((run_dir / "leaderboard.json").read_text())["rows"]
    plot = run_dir / "leaderboard.png"
    if not plot.exists():
        plot_leaderboard(rows, plot)
    columns = [c for c in ["agent", *LEADERBOARD_COLUMNS, "error"]
               if any(r.get(c) is not None for r in rows)]
    shown = [{k: ("" if v is None else v) for k, v in r.items()} for r in rows]
    return (f"## Zoo leaderboard\n\n![percent of dense return vs sparsity]({plot.name})\n\n"
            + markdown_table(shown, columns))


def write_run_report(run_dir: str | Path) -> Path:
    """Writes ``RUN_DIR/report.md`` and returns its path.

    Raises:
        FileNotFoundError: no such directory.
        ValueError: the directory holds no rlprune run.
    """
    run_dir = Path(run_dir)
    return atomic_write_text(run_dir / "report.md", report_markdown(run_dir))


def report_markdown(run_dir: str | Path) -> str:
    """The report of a run directory as Markdown (plots referenced by file name).

    Raises:
        FileNotFoundError: no such directory.
        ValueError: the directory holds no rlprune run.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run directory {run_dir}")
    sections = []
    if (run_dir / "report.json").exists():
        sections.append(_prune_section(run_dir))
    if (run_dir / "sweep.json").exists():
        sections.append(_sweep_section(run_dir))
    results = run_dir / "results.json"
    if results.exists() and "grid" in json.loads(results.read_text()):
        sections.append(_robustness_section(run_dir))
    if (run_dir / "leaderboard.json").exists():
        sections.append(_zoo_section(run_dir))
    if not sections:
        raise ValueError(f"{run_dir} holds no rlprune run (report.json from prune, "
                         "sweep.json from sweep, results.json from robustness, "
                         "leaderboard.json from zoo)")
    return f"# rlprune report: {run_dir.name}\n\n" + "\n".join(sections)
