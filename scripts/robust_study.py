"""Robust vs nominal pruning, measured on a held-out perturbation grid (README "Robust
pruning, measured").

    .venv/bin/python scripts/robust_study.py [--agent sac-halfcheetah] [--out results/robust]
        [--sparsities 0.5,0.8] [--search-systems SPEC] [--held-out-grid SPEC]
        [--executor process --workers 2] [--readme [--readme-name robust_study]]
        [--scratch 0.8=runs/scratch-sac-80/agent.zip] [--seed S] [--threads N]

For each sparsity: global magnitude; CMA-ES on the nominal return; CMA-ES on the worst
return over seeded random systems (mass, friction, observation noise drawn from ranges);
and the distill-small baseline (the pruned widths, fresh weights, distilled from the dense
agent); with ``--scratch RHO=PATH``, a small dense agent of those widths trained from scratch
with the dense agent's env-step budget (``scripts/train_sb3.py --actor-arch``). Every agent,
the dense one included, is then evaluated on a grid of systems the
searches never played (other values, other episode seeds). Writes ``OUT/study.json`` (and
``results/readme/NAME.json`` with ``--readme``); searches and held-out points resume from
``OUT`` (a held-out point only for the same agent weights: fine-tuning redone on another
thread count gives other weights). ``--executor`` spreads candidates and held-out points
over workers (same rows).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import rlprune
from rlprune.analysis.robustness import parse_grid, robustness_study
from rlprune.finetune import distill_if_better
from rlprune.io import atomic_write_text
from rlprune.search import baseline_plan, make_executor, objective_for, search
from rlprune.search.visited import VisitedInputs
from rlprune.settings import Evaluation
from rlprune.small_dense import TrainedSmallAgents, small_dense_baseline

ROOT = Path(__file__).resolve().parents[1]
SEARCH_SYSTEMS = "mass=0.6~1.4,friction=0.6~1.4,obs_noise=0~0.04,draws=6"
HELD_OUT_GRID = "mass=0.5:1.5:3,friction=0.5:1.5:3,obs_noise=0:0.05:2"
NOMINAL = {"mass": 1.0, "damping": 1.0, "friction": 1.0}
"""The unperturbed value of each perturbation (the others: 0)."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agent", default="sac-halfcheetah")
    parser.add_argument("--sparsities", default="0.5,0.8")
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=2, help="search episodes per system")
    parser.add_argument("--held-out-episodes", type=int, default=4)
    parser.add_argument("--distill-steps", type=int, default=2000)
    parser.add_argument("--finetune", type=int, default=0,
                        help="distillation steps after each search (adds METHOD+ft rows: "
                             "the robust search's are distilled on every drawn system's "
                             "states, kept if its validation worst case is no lower)")
    parser.add_argument("--max-episode-steps", type=int, default=None,
                        help="caps search episodes")
    parser.add_argument("--held-out-max-steps", type=int, default=None,
                        help="caps held-out episodes (default: full length)")
    parser.add_argument("--search-systems", default=SEARCH_SYSTEMS)
    parser.add_argument("--held-out-grid", default=HELD_OUT_GRID)
    parser.add_argument("--executor", default="inprocess")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", default="results/robust")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the searches, their episodes and drawn systems, and the "
                             "small baselines (held-out episodes stay on seeds 1000..)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of fine-tuning (default: torch's; episodes "
                             "always run on one); recorded in study.json, as the +ft rows "
                             "differ from one count to another (float sums in another order)")
    parser.add_argument("--readme", action="store_true",
                        help="also write results/readme/NAME.json")
    parser.add_argument("--readme-name", default="robust_study")
    parser.add_argument("--scratch", action="append", default=[], metavar="RHO=PATH",
                        help="a small agent trained from scratch, shown as the row "
                             "'scratch-small RHO' (repeatable)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    trained = TrainedSmallAgents.parse(args.scratch)
    trained.check(list(trained.files))  # a missing file fails now, not after the searches
    out = Path(args.out)
    dense = rlprune.load_agent(args.agent)
    nominal = Evaluation(None, args.episodes, args.seed, args.max_episode_steps, race=True)
    robust = Evaluation(None, args.episodes, args.seed, args.max_episode_steps,
                        perturb=args.search_systems, aggregate="worst")
    executor = make_executor(args.executor, args.workers)
    grouper = rlprune.ComponentGrouper(dense)
    small = small_dense_baseline(VisitedInputs(objective_for(dense, nominal), dense, out),
                                 args.distill_steps)
    grid = parse_grid(args.held_out_grid)
    agents = {"dense": dense}
    tuning_kept = {}  # +ft agent name -> whether validation kept the distilled actor
    for rho in (float(s) for s in args.sparsities.split(",")):
        agents[f"magnitude {rho:.0%}"] = rlprune.prune_physically(
            dense, baseline_plan(grouper, "magnitude", rho, 0.01))
        for name, evaluation in (("nominal cmaes", nominal), ("robust cmaes", robust)):
            result = search(dense, objective_for(dense, evaluation), rho, 0.01,
                            method="cmaes", budget=args.budget, criterion="activation",
                            seed=args.seed, run_dir=out / f"{name.replace(' ', '-')}-{rho}",
                            progress=False, executor=executor)
            pruned = agents[f"{name} {rho:.0%}"] = rlprune.prune_physically(dense,
                                                                             result.plan)
            print(f"{name} {rho:.0%}: searched {result.metric:.1f}", flush=True)
            if args.finetune:
                objective = objective_for(dense, evaluation)
                tuned, report = distill_if_better(
                    dense, pruned, objective, VisitedInputs(
                        objective, dense, out / f"{name.replace(' ', '-')}-{rho}"),
                    args.finetune, objective_for(dense, evaluation.validation()))
                agents[f"{name}+ft {rho:.0%}"] = tuned
                tuning_kept[f"{name}+ft {rho:.0%}"] = report["kept"]
                verdict = "kept" if report["kept"] else "not kept"
                print(f"{name}+ft {rho:.0%}: validation {report['metric']:.1f} vs "
                      f"{report['untuned_metric']:.1f} untuned ({verdict})", flush=True)
        agents[f"distill-small {rho:.0%}"] = small(dense, rho, args.seed)[0]
    agents.update({f"scratch-small {rho:.0%}": trained(dense, rho, args.seed)[0]
                   for rho in trained.files})
    rows = robustness_study(agents, "HalfCheetah-v5" if args.agent == "sac-halfcheetah"
                            else dense.describe()["task"], grid, out / "held-out",
                            episodes=args.held_out_episodes, seed=1000,
                            action_repeat=getattr(dense, "action_repeat", 1),
                            max_episode_steps=args.held_out_max_steps, executor=executor,
                            log=lambda line: print(line, flush=True))
    summary = {"agent": args.agent, "search_systems": args.search_systems,
               "held_out_grid": args.held_out_grid, "held_out_episodes": args.held_out_episodes,
               "budget": args.budget, "seed": args.seed, "finetune": args.finetune,
               "threads": torch.get_num_threads(), "agents": {}}
    nominal_point = {name: NOMINAL.get(name, 0.0) for name in grid}
    for name in agents:
        own = [r for r in rows if r["agent"] == name]
        nominal_row = next(r for r in own if r["perturb"] == nominal_point)
        worst_row = min(own, key=lambda r: r["mean"])
        summary["agents"][name] = {"nominal": nominal_row["mean"], "worst": worst_row["mean"],
                                   "worst_ci95": worst_row["ci95"],
                                   "worst_at": worst_row["perturb"],
                                   "mean": float(np.mean([r["mean"] for r in own])),
                                   **({"kept": tuning_kept[name]} if name in tuning_kept
                                      else {})}
    text = json.dumps(summary, indent=1) + "\n"
    atomic_write_text(out / "study.json", text)
    if args.readme:
        atomic_write_text(ROOT / "results" / "readme" / f"{args.readme_name}.json", text)
    print(text)


if __name__ == "__main__":
    main()
