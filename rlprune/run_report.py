"""``report.md`` for a run directory: what a prune, sweep or robustness run found.

Reads only the files the runs write (``report.json``, ``sweep.json``, ``results.json``)
and the plots next to them (redrawn when missing), so a report can be made at any time,
also from a run that is still going.
"""

from __future__ import annotations

import json
from pathlib import Path

from rlprune.io import atomic_write_text
from rlprune.report import markdown_table

__all__ = ["write_run_report"]


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
        summary[0].update(finetune_steps=tuned["steps"], metric_finetuned=tuned["metric"])
    return ("## Pruned agent\n\n"
            + markdown_table(summary, list(summary[0]))
            + "\n### Sparsity per component\n\n"
            + markdown_table(by_component, ["component", "sparsity"])
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
    return ("## Metric vs sparsity\n\n" + f"![metric vs sparsity]({plot.name})\n\n"
            + markdown_table(rows, columns))


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


def write_run_report(run_dir: str | Path) -> Path:
    """Writes ``RUN_DIR/report.md`` and returns its path.

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
    if not sections:
        raise ValueError(f"{run_dir} holds no rlprune run (report.json from prune, "
                         "sweep.json from sweep, results.json from robustness)")
    text = f"# rlprune report: {run_dir.name}\n\n" + "\n".join(sections)
    return atomic_write_text(run_dir / "report.md", text)
