"""Benchmark: gradient vs grid search at one sparsity, env steps and return; prints JSON.

    python scripts/bench_search.py [--agent cartpole-swingup] [--sparsity 0.5]
        [--grid-budget 30] [--gradient-budget 1] [--out runs/bench-search]

Both searches score candidates on the same seeded episodes (racing on); the dense
agent's visited states, which the gradient's surrogate learns from, count towards the
gradient's env steps. Each search's best plan is then pruned physically and measured
on held-out episodes (seeds 1000..), the same for both, so the return difference is
paired. The ratio of env steps and the held-out returns come from the same run. Both
searches keep their state in ``--out`` and resume there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

import rlprune
from rlprune.search import ReturnObjective, VisitedInputs, search


def held_out(agent, result, objective: ReturnObjective) -> dict:
    pruned = rlprune.prune_physically(agent, result.plan)
    evaluation = objective.evaluator.evaluate(pruned)
    return {"search_metric": result.metric, "env_steps": result.env_steps,
            "evaluations": result.evaluations,
            "sparsity": result.plan.sparsity, "coefficients": result.coefficients,
            "held_out_mean": evaluation.mean, "held_out_ci95": evaluation.ci95,
            "held_out_returns": evaluation.returns.tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agent", default="cartpole-swingup")
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--tol", type=float, default=0.01)
    parser.add_argument("--grid-budget", type=int, default=30)
    parser.add_argument("--gradient-budget", type=int, default=1)
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--max-episode-steps", type=int, default=400)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-search"))
    args = parser.parse_args()

    agent = rlprune.load_agent(args.agent)
    objective = ReturnObjective.for_agent(agent, args.episodes, args.seed,
                                          args.max_episode_steps, race=True)
    report = ReturnObjective.for_agent(agent, args.eval_episodes, args.seed + 1000)
    visited = VisitedInputs(objective, agent, args.out)
    rows = {}
    for method, budget in (("grid", args.grid_budget), ("gradient", args.gradient_budget)):
        result = search(agent, objective, args.sparsity, args.tol, method=method,
                        budget=budget, seed=args.seed, run_dir=args.out / method,
                        visited=visited, progress=False)
        rows[method] = held_out(agent, result, report)
    grid, gradient = rows["grid"], rows["gradient"]
    diff = np.subtract(gradient["held_out_returns"], grid["held_out_returns"])
    half_width = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    print(json.dumps({
        "agent": args.agent, "sparsity": args.sparsity, "grid": grid, "gradient": gradient,
        "env_steps_ratio": gradient["env_steps"] / grid["env_steps"],
        "held_out_difference": float(diff.mean()), "held_out_difference_ci95": half_width,
        "gradient_at_least_as_good": bool(diff.mean() >= 0)}, indent=1))


if __name__ == "__main__":
    main()
