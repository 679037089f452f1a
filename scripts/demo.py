"""The README's main job: prune the shipped TD-MPC2 agent end to end and report.

    make demo      # or: .venv/bin/python scripts/demo.py [--agent cartpole-swingup]

For each method (default: global magnitude and random baselines) and target sparsity,
plans the pruning on the agent's component-aware groups, removes the channels physically
(smaller networks), and evaluates dense and pruned agents on the same seeded episodes
(common random numbers), with the latent stability of each pruned world model against
the dense one on the dense agent's trajectories. Writes results/demo/{sweep.json,
results.md, metric_vs_sparsity.png, report.md}; a rerun with the same settings resumes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import rlprune
from rlprune.run_report import write_run_report
from rlprune.search import ReturnObjective
from rlprune.sweep import sweep


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agent", default="cartpole-swingup",
                        help="shipped name or path of a tdmpc2 checkpoint")
    parser.add_argument("--sparsities", default="0.2,0.5", help="comma-separated targets rho")
    parser.add_argument("--tol", type=float, default=0.01, help="tolerance eps on sparsity")
    parser.add_argument("--methods", default="magnitude,random",
                        help="magnitude, random, activation, grid, gradient, cmaes")
    parser.add_argument("--budget", type=int, default=10, help="candidates per search")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-episode-steps", type=int, default=None,
                        help="cap episodes (env steps) for a quick run")
    parser.add_argument("--out", default="results/demo")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    agent = rlprune.load_agent(args.agent)
    info = agent.describe()
    evaluator = rlprune.ClosedLoopEvaluator(
        info["task"], episodes=args.episodes, seed=args.seed,
        action_repeat=info["action_repeat"], max_episode_steps=args.max_episode_steps)
    grouper = rlprune.ComponentGrouper(agent)
    print(f"{args.agent}: {info['task']}, {len(grouper.groups)} pruning groups in "
          f"{len(grouper.components)} components", flush=True)
    rows = sweep(agent, ReturnObjective(evaluator, race=True),
                 [float(s) for s in args.sparsities.split(",")], args.methods.split(","),
                 args.out, tol=args.tol, budget=args.budget, seed=args.seed,
                 log=lambda line: print(line, flush=True))
    report = write_run_report(args.out)
    print(report.read_text())
    print(f"wrote {Path(args.out) / 'sweep.json'}, {report} and "
          f"{Path(args.out) / 'metric_vs_sparsity.png'} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
