"""The README's main job: prune a shipped agent end to end and show what the search buys.

    make demo      # or: .venv/bin/python scripts/demo.py [--agent cartpole-swingup ...]

By default the shipped SAC HalfCheetah agent's actor is pruned to 80% parameter sparsity
twice: by global weight magnitude (torch-pruning's baseline) and by a CMA-ES search over
per-group coefficients on the closed-loop return (activation importance). Both, and the
dense agent, are scored on held-out episodes the search never saw; the three are filmed
side by side on the first held-out episode. Writes results/demo/{sweep.json, results.md,
metric_vs_sparsity.png, kept agents in agents/, rollout GIF, report.md, report.html}; a
rerun with the same settings resumes. A few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import rlprune
from rlprune.analysis.evaluate import ClosedLoopEvaluator
from rlprune.html_report import write_html_report
from rlprune.run_report import write_run_report
from rlprune.search import objective_for
from rlprune.settings import Evaluation
from rlprune.sweep import sweep
from rlprune.video import film_sweep

BASELINES = ("dense", "magnitude", "random")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agent", default="sac-halfcheetah",
                        help="shipped name or path of an agent that acts")
    parser.add_argument("--sparsities", default="0.8", help="comma-separated targets rho")
    parser.add_argument("--tol", type=float, default=0.01, help="tolerance eps on sparsity")
    parser.add_argument("--methods", default="magnitude,cmaes",
                        help="magnitude, random, activation, grid, gradient, cmaes")
    parser.add_argument("--criterion", default="activation",
                        help="channel importance the searches rank by")
    parser.add_argument("--budget", type=int, default=10, help="candidates per search")
    parser.add_argument("--episodes", type=int, default=2, help="episodes per candidate")
    parser.add_argument("--held-out-episodes", type=int, default=10,
                        help="episodes (seeds seed+1000..) every row is reported on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-episode-steps", type=int, default=None,
                        help="cap episodes (env steps) for a quick run")
    parser.add_argument("--out", default="results/demo")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    agent = rlprune.load_agent(args.agent)
    evaluation = Evaluation(None, args.episodes, args.seed, args.max_episode_steps, race=True)
    held_out = evaluation.held_out(args.held_out_episodes, args.max_episode_steps)
    grouper = rlprune.ComponentGrouper(agent)
    print(f"{args.agent}: {len(grouper.groups)} pruning groups in "
          f"{len(grouper.components)} components", flush=True)
    out = Path(args.out)
    rows = sweep(agent, objective_for(agent, evaluation),
                 [float(s) for s in args.sparsities.split(",")], args.methods.split(","),
                 out, tol=args.tol, budget=args.budget, seed=args.seed,
                 criterion=args.criterion, report_objective=objective_for(agent, held_out),
                 log=lambda line: print(line, flush=True))
    dense = next(r for r in rows if r["method"] == "dense")
    hardest = max(r["target"] for r in rows if r["method"] != "dense")
    at_hardest = [r for r in rows if r["method"] != "dense" and r["target"] == hardest]
    print(f"\nheld-out return at {hardest:.0%} sparsity ({args.held_out_episodes} episodes "
          f"the searches never saw; dense {dense['metric']:.1f}):")
    for row in at_hardest:
        print(f"  {row['method']:>10}: {row['metric']:8.1f}  "
              f"({row['metric'] / dense['metric']:.0%} of dense)")
    evaluator = ClosedLoopEvaluator.for_agent(agent, episodes=1, seed=held_out.seed,
                                              max_episode_steps=args.max_episode_steps)
    video = film_sweep(agent, rows, out, evaluator, rlprune.load_agent)
    write_run_report(out)
    page = write_html_report(out)
    print(f"\nwrote {out / 'sweep.json'}, {video.name}, {out / 'report.md'} and {page} "
          f"(open it in a browser: plots and video are inside)")


if __name__ == "__main__":
    main()
