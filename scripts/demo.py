"""The README's main job: prune the shipped TD-MPC2 agent end to end and report.

    make demo      # or: .venv/bin/python scripts/demo.py [--agent cartpole-swingup]

For each baseline (global magnitude, random) and target sparsity, plans the pruning on
the agent's component-aware groups, removes the channels physically (smaller networks),
and evaluates dense and pruned agents on the same seeded episodes (common random
numbers), with the latent stability of each pruned world model against the dense one on
the dense agent's trajectories. Writes results/demo/{results.json, results.md,
return_vs_sparsity.png}.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import rlprune
from rlprune.accounting import CostModel
from rlprune.evaluate import StateRecorder
from rlprune.io import atomic_write_text
from rlprune.report import markdown_table, plot_metric_vs_sparsity, write_json
from rlprune.search import baseline_plan
from rlprune.stability import latent_stability


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agent", default="cartpole-swingup",
                        help="shipped name or path of a tdmpc2 checkpoint")
    parser.add_argument("--sparsities", default="0.2,0.5", help="comma-separated targets rho")
    parser.add_argument("--tol", type=float, default=0.01, help="tolerance eps on sparsity")
    parser.add_argument("--methods", default="magnitude,random")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-episode-steps", type=int, default=None,
                        help="cap episodes (env steps) for a quick run")
    parser.add_argument("--out", default="results/demo")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    agent = rlprune.load_agent(args.agent)
    info = agent.describe()
    evaluator = rlprune.ClosedLoopEvaluator(
        info["task"], episodes=args.episodes, seed=args.seed,
        action_repeat=info["action_repeat"], max_episode_steps=args.max_episode_steps)
    grouper = rlprune.ComponentGrouper(agent)
    print(f"{args.agent}: {info['task']}, {len(grouper.groups)} pruning groups in "
          f"{len(grouper.components)} components")

    recorder = StateRecorder()
    dense = evaluator.evaluate(agent, recorder)
    trajectories = recorder.trajectories()
    rows = [{"method": "dense", "sparsity": 0.0, "flop_sparsity": 0.0,
             "params": CostModel(grouper).dense.params,
             **dense.to_dict()}]
    print(f"dense: return {dense.mean:.1f} +- {dense.ci95:.1f} ({dense.wall_time:.0f}s)")
    for method in args.methods.split(","):
        for rho in (float(s) for s in args.sparsities.split(",")):
            plan = baseline_plan(grouper, method, rho, args.tol, seed=args.seed)
            pruned = rlprune.prune_physically(agent, plan)
            result = evaluator.evaluate(pruned)
            stability = latent_stability(agent, pruned, trajectories, seed=args.seed)
            rows.append({"method": method, "sparsity": plan.sparsity,
                         "flop_sparsity": plan.flop_sparsity, "params": plan.cost.params,
                         "target": rho, **result.to_dict(),
                         "latent_drift": stability.encoder_drift_relative,
                         "rollout_error_h3": stability.rollout_error[-1],
                         "jacobian_radius_max": stability.spectral_radius_pruned["max"],
                         "lyapunov_decrease": stability.lyapunov_decrease_pruned,
                         "stability": stability.to_dict()})
            print(f"{method:>9} rho={rho:.2f}: sparsity {plan.sparsity:.3f}, return "
                  f"{result.mean:.1f} +- {result.ci95:.1f} "
                  f"({result.mean / dense.mean:.0%} of dense, {result.wall_time:.0f}s)")

    out = Path(args.out)
    write_json(out / "results.json", {"agent": info, "args": vars(args), "rows": rows})
    table = markdown_table(rows, ["method", "sparsity", "flop_sparsity", "params", "mean",
                                  "ci95", "env_steps", "latent_drift", "rollout_error_h3",
                                  "jacobian_radius_max", "lyapunov_decrease"])
    atomic_write_text(out / "results.md", table)
    plot = plot_metric_vs_sparsity(rows, out / "return_vs_sparsity.png",
                                   title=f"{info['task']}: pruning baselines")
    print(table)
    print(f"wrote {out / 'results.json'}, {out / 'results.md'}, {plot}")


if __name__ == "__main__":
    main()
