"""Paper-style experiment: metric vs sparsity for every method, autoencoder and TD-MPC2.

    python scripts/paper_experiment.py                 # full run (hours on 2 CPU cores)
    python scripts/paper_experiment.py --quick         # reduced real run (minutes)
    python scripts/paper_experiment.py --executor process --workers 2   # cells side by side

For the autoencoder (held-out PSNR) and each shipped TD-MPC2 agent (mean episode
return), sparsity rho x method -> metric with CI, achieved sparsity, search time and env
steps, and for world models latent drift and closed-loop Jacobian radius. Methods: our
dependency-graph baselines (random, magnitude), the searches (grid, gradient, cmaes),
and PyTorch's own structured pruning as the paper's baselines ("torch-random":
``prune.random_structured``, "torch-norm": ``prune.ln_structured``; rows of every hidden
Linear zeroed at ratio rho, layers kept at full size, as the paper compares).
Searches score candidates on their own episodes; table rows are measured on held-out
episodes (seeds from 1000). Writes results/paper/{results.json, results.md,
ae_reconstructions.png} and per agent results/paper/AGENT/{sweep.json, results.md,
metric_vs_sparsity.png}; finished rows are kept and skipped on a rerun (resume).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn.utils import prune as torch_prune

import rlprune
from rlprune.io import atomic_write_text
from rlprune.report import markdown_table, pyplot, save_figure, write_json
from rlprune.search import make_executor, objective_for, search
from rlprune.settings import Evaluation
from rlprune.sweep import COLUMNS, sweep, write_sweep_report

ROOT = Path(__file__).resolve().parents[1]
SEARCHES = ("random", "magnitude", "activation", "grid", "gradient", "cmaes")
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
    """Episodes per candidate in the searches (seeds from ``seed``)."""
    eval_episodes: int = 10
    """Held-out episodes per table row (seeds from ``seed + HELD_OUT_SEED_OFFSET``)."""
    max_episode_steps: int | None = 400
    """Cap on the searches' episodes (env steps): on 2 CPU cores a full cartpole episode
    costs minutes of MPPI planning per candidate."""
    eval_max_episode_steps: int | None = None
    """Cap on the table's held-out episodes (None: full length)."""
    seed: int = 0
    """Seeds evaluations and searches."""
    criteria: tuple[tuple[str, str], ...] = (("sac-halfcheetah", "activation"),
                                             ("sac-hopper", "activation"))
    """Base importance the searches' coefficients scale, per agent; others: the paper's
    weight norm ("l2"). SB3 actors get "activation": weight norms fail on them (see the
    README's SB3 results). The baselines are unaffected."""
    agents: tuple[str, ...] = ("digits-autoencoder", "sac-halfcheetah", "sac-hopper",
                               "cartpole-swingup")
    """Shipped checkpoints to run."""

    @classmethod
    def quick(cls) -> Config:
        return cls(out="results/paper-quick", sparsities=(0.2, 0.5), budget=3, episodes=2,
                   eval_episodes=2, max_episode_steps=60, eval_max_episode_steps=60)


def torch_structured(kind: str):
    """PyTorch's structured pruning on each group's root Linear, as a sweep method."""
    def prune(agent, rho: float, seed: int):
        torch.manual_seed(seed)
        pruned = agent.clone()
        grouper = rlprune.ComponentGrouper(pruned)
        zeroed = total = 0
        for group in grouper.groups:
            layer = grouper.root_module(group)
            if kind == "torch-random":
                torch_prune.random_structured(layer, "weight", amount=rho, dim=0)
            else:
                torch_prune.ln_structured(layer, "weight", amount=rho, n=2, dim=0)
            torch_prune.remove(layer, "weight")
            zeroed += int((layer.weight == 0).sum())
        for component in grouper.components.values():
            total += sum(p.numel() for p in component.module.parameters())
        return pruned, zeroed / total
    return prune


def run_agent(name: str, cfg: Config, executor=None) -> list[dict]:
    """The sweep of one shipped agent; held-out episodes (seeds from 1000) for the table;
    its cells on ``executor``'s workers when it has them (same rows)."""
    agent = rlprune.load_agent(name)
    evaluation = Evaluation(None, cfg.episodes, cfg.seed, cfg.max_episode_steps, race=True)
    held_out = evaluation.held_out(cfg.eval_episodes, cfg.eval_max_episode_steps)
    rows = sweep(agent, objective_for(agent, evaluation), cfg.sparsities, cfg.methods,
                 Path(cfg.out) / name, tol=cfg.tol, budget=cfg.budget, seed=cfg.seed,
                 criterion=dict(cfg.criteria).get(name, "l2"),
                 report_objective=objective_for(agent, held_out),
                 extra_methods={m: torch_structured(m) for m in TORCH_BASELINES},
                 executor=executor, log=lambda line: print(f"{name} {line}", flush=True))
    write_sweep_report(rows, Path(cfg.out) / name, title=name, ylabel=agent.metric.label)
    return rows


def reconstruction_grid(cfg: Config, path: Path) -> None:
    """Originals vs reconstructions: dense and each method at 20% sparsity."""
    agent = rlprune.load_agent("digits-autoencoder")
    objective = objective_for(agent, Evaluation(seed=cfg.seed))
    images = objective.images[:8]
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
    parser.add_argument("--criterion", help="base importance of every agent's searches")
    parser.add_argument("--executor", default="inprocess", help="inprocess, process or ray")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    executor = make_executor(args.executor, args.workers)
    cfg = Config.quick() if args.quick else Config()
    agents = tuple(args.agents.split(",")) if args.agents else cfg.agents
    overrides = {"agents": agents, "out": args.out,
                 "criteria": tuple((name, args.criterion) for name in agents)
                 if args.criterion else None}
    cfg = Config(**{**asdict(cfg), **{k: v for k, v in overrides.items() if v}})
    out = Path(cfg.out)
    rows = []
    for name in cfg.agents:
        rows += [{"agent": name, **r} for r in run_agent(name, cfg, executor)]
    grid_png = out / "ae_reconstructions.png"
    if "digits-autoencoder" in cfg.agents and not grid_png.exists():
        reconstruction_grid(cfg, grid_png)
    write_json(out / "results.json", {"config": asdict(cfg), "rows": rows})
    atomic_write_text(out / "results.md", markdown_table(rows, ["agent", *COLUMNS]))
    print(f"wrote {out / 'results.json'}, {out / 'results.md'} and plots in {out}/*/")


if __name__ == "__main__":
    main()
