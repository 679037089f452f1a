"""Paper-style experiment: metric vs sparsity for every method, autoencoder and TD-MPC2.

    python scripts/paper_experiment.py                 # full run (hours on 2 CPU cores)
    python scripts/paper_experiment.py --quick         # reduced real run (minutes)

For the autoencoder (held-out PSNR) and each shipped TD-MPC2 agent (mean episode
return), sparsity rho x method -> metric with CI, achieved sparsity, search time and env
steps, and for world models latent drift and closed-loop Jacobian radius. Methods: our
dependency-graph baselines (random, magnitude), the searches (grid, gradient, cmaes),
and PyTorch's own structured pruning as the paper's baselines ("torch-random":
``prune.random_structured``, "torch-norm": ``prune.ln_structured``; rows of every hidden
Linear zeroed at ratio rho, layers kept at full size, as the paper compares).
Writes results/paper/{results.json, results.md, *_vs_sparsity.png,
ae_reconstructions.png}; finished rows are kept and skipped on a rerun (resume).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn.utils import prune as torch_prune

import rlprune
from rlprune.autoencoder import digits_split
from rlprune.evaluate import StateRecorder
from rlprune.io import atomic_write_text
from rlprune.report import (
    markdown_table,
    plot_metric_vs_sparsity,
    pyplot,
    save_figure,
    write_json,
)
from rlprune.search import PSNRObjective, ReturnObjective, search
from rlprune.stability import latent_stability

ROOT = Path(__file__).resolve().parents[1]
SEARCHES = ("random", "magnitude", "grid", "gradient", "cmaes")
TORCH_BASELINES = ("torch-random", "torch-norm")


@dataclass(frozen=True)
class Config:
    out: str = "results/paper"
    """Output folder (rows found there are not recomputed)."""
    sparsities: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
    """Targets rho."""
    tol: float = 0.01
    """Tolerance eps."""
    methods: tuple[str, ...] = SEARCHES + TORCH_BASELINES
    """Methods to run."""
    budget: int = 30
    """Candidates scored per search."""
    episodes: int = 4
    """Episodes per TD-MPC2 evaluation."""
    max_episode_steps: int | None = None
    """Cap on episode length (env steps)."""
    seed: int = 0
    """Seeds evaluations and searches."""
    agents: tuple[str, ...] = ("digits-autoencoder", "cartpole-swingup")
    """Shipped checkpoints to run."""

    @classmethod
    def quick(cls) -> Config:
        return cls(out="results/paper-quick", sparsities=(0.2, 0.5), budget=3, episodes=2,
                   max_episode_steps=60)


def torch_structured(agent, grouper, kind: str, rho: float, seed: int):
    """A copy of ``agent`` with PyTorch's structured pruning on each group's root Linear."""
    torch.manual_seed(seed)
    pruned = agent.clone()
    fresh = rlprune.ComponentGrouper(pruned, list(grouper.components))
    zeroed = total = 0
    for group in fresh.groups:
        layer = fresh.root_module(group)
        if kind == "torch-random":
            torch_prune.random_structured(layer, "weight", amount=rho, dim=0)
        else:
            torch_prune.ln_structured(layer, "weight", amount=rho, n=2, dim=0)
        torch_prune.remove(layer, "weight")
        zeroed += int((layer.weight == 0).sum())
    for component in fresh.components.values():
        total += sum(p.numel() for p in component.module.parameters())
    return pruned, zeroed / total


def evaluate_row(agent, candidate, objective, trajectories, seed: int) -> dict:
    score = objective(candidate)
    row = {"metric": score.value, "ci95": score.ci95, "eval_env_steps": score.env_steps}
    if trajectories is not None:
        stability = latent_stability(agent, candidate, trajectories, seed=seed)
        row.update(latent_drift=stability.encoder_drift_relative,
                   jacobian_radius_max=stability.spectral_radius_pruned["max"])
    return row


def run_agent(name: str, cfg: Config, rows: list[dict], save) -> None:
    agent = rlprune.load_agent(name)
    grouper = rlprune.ComponentGrouper(agent)
    trajectories = None
    if agent.kind == "autoencoder":
        objective = PSNRObjective(digits_split(cfg.seed)[1])
    else:
        info = agent.describe()
        evaluator = rlprune.ClosedLoopEvaluator(
            info["task"], episodes=cfg.episodes, seed=cfg.seed,
            action_repeat=info["action_repeat"], max_episode_steps=cfg.max_episode_steps)
        objective = ReturnObjective(evaluator)
        recorder = StateRecorder()
        evaluator.evaluate(agent, recorder)
        trajectories = recorder.trajectories()
    done = {(r["agent"], r["method"], r["target"]) for r in rows}
    if (name, "dense", 0.0) not in done:
        rows.append({"agent": name, "method": "dense", "target": 0.0, "sparsity": 0.0,
                     **evaluate_row(agent, agent, objective, None, cfg.seed)})
        save()
    for rho in cfg.sparsities:
        for method in cfg.methods:
            if (name, method, rho) in done:
                continue
            start = time.perf_counter()
            if method in TORCH_BASELINES:
                candidate, sparsity = torch_structured(agent, grouper, method, rho, cfg.seed)
                extra = {"sparsity": sparsity, "evaluations": 1, "search_env_steps": 0}
            else:
                run_dir = Path(cfg.out) / "searches" / f"{name}-{method}-{rho}"
                result = search(agent, objective, rho, cfg.tol, method=method,
                                budget=cfg.budget, seed=cfg.seed, run_dir=run_dir,
                                progress=False)
                candidate = rlprune.prune_physically(agent, result.plan)
                extra = {"sparsity": result.plan.sparsity,
                         "flop_sparsity": result.plan.flop_sparsity,
                         "evaluations": result.evaluations,
                         "search_env_steps": result.env_steps}
            row = {"agent": name, "method": method, "target": rho, **extra,
                   **evaluate_row(agent, candidate, objective, trajectories, cfg.seed),
                   "seconds": time.perf_counter() - start}
            rows.append(row)
            save()
            print(f"{name} {method:>12} rho={rho}: metric {row['metric']:.3f} "
                  f"(sparsity {row['sparsity']:.3f}, {row['seconds']:.0f}s)", flush=True)


def reconstruction_grid(cfg: Config, path: Path) -> None:
    """Originals vs reconstructions: dense and each method at 20% sparsity."""
    agent = rlprune.load_agent("digits-autoencoder")
    images = digits_split(cfg.seed)[1][:8]
    objective = PSNRObjective(digits_split(cfg.seed)[1])
    rows = [("original", images), ("dense", agent.model(images))]
    for method in ("random", "magnitude", "grid", "gradient"):
        result = search(agent, objective, 0.2, cfg.tol, method=method, budget=cfg.budget,
                        seed=cfg.seed, progress=False)
        rows.append((method, rlprune.prune_physically(agent, result.plan).model(images)))
    fig, axes = pyplot().subplots(len(rows), 8, figsize=(8, len(rows) * 1.1))
    for r, (label, batch) in enumerate(rows):
        for c in range(8):
            axes[r, c].imshow(batch[c].detach().reshape(8, 8), cmap="gray", vmin=0, vmax=1)
            axes[r, c].axis("off")
        axes[r, 0].set_title(label, fontsize=7, loc="left")
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced real run (minutes)")
    parser.add_argument("--agents", help="comma-separated shipped names")
    parser.add_argument("--out", help="output folder")
    args = parser.parse_args()
    cfg = Config.quick() if args.quick else Config()
    if args.agents or args.out:
        cfg = Config(**{**asdict(cfg), **({"agents": tuple(args.agents.split(","))}
                                           if args.agents else {}),
                        **({"out": args.out} if args.out else {})})
    out = Path(cfg.out)
    results_path = out / "results.json"
    rows = json.loads(results_path.read_text())["rows"] if results_path.exists() else []

    def save() -> None:
        write_json(results_path, {"config": asdict(cfg), "rows": rows})

    for name in cfg.agents:
        run_agent(name, cfg, rows, save)
        mine = [r | {"mean": r["metric"]} for r in rows if r["agent"] == name]
        plot_metric_vs_sparsity(mine, out / f"{name}_vs_sparsity.png", title=name,
                                ylabel="PSNR (dB)" if "autoencoder" in name else "return")
    grid_png = out / "ae_reconstructions.png"
    if "digits-autoencoder" in cfg.agents and not grid_png.exists():
        reconstruction_grid(cfg, grid_png)
    columns = ["agent", "method", "target", "sparsity", "metric", "ci95", "evaluations",
               "search_env_steps", "latent_drift", "jacobian_radius_max", "seconds"]
    atomic_write_text(out / "results.md", markdown_table(rows, columns))
    print(f"wrote {results_path}, {out / 'results.md'} and plots in {out}")


if __name__ == "__main__":
    main()
