"""Copy a trained agent into checkpoints/ with a JSON card of measured returns.

    python scripts/ship_checkpoint.py --run-dir runs/cartpole-swingup --name cartpole-swingup

The shipped agent plans with a CPU-sized MPPI budget (``--iterations``/``--samples``;
ours, TD-MPC2's default is 6 x 512): the card records the planner used and the returns
of ``--episodes`` seeded episodes under it, measured by rlprune's evaluator.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
from pathlib import Path

import tdmpc2
from rlprune.adapters import TDMPC2Adapter
from rlprune.evaluate import ClosedLoopEvaluator
from rlprune.report import write_json

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--name", required=True, help="file stem in checkpoints/")
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    agent = tdmpc2.load_agent(Path(args.run_dir) / "agent.pt")
    planner = agent.planner_cfg.reduced(args.iterations, args.samples)
    agent.set_planner(planner)
    adapter = TDMPC2Adapter(agent)
    evaluator = ClosedLoopEvaluator(adapter.task, episodes=args.episodes, seed=args.seed,
                                    action_repeat=adapter.action_repeat)
    result = evaluator.evaluate(adapter)
    target = ROOT / "checkpoints" / f"{args.name}.pt"
    tdmpc2.save_agent(target, agent, meta=agent.meta)
    params = {name: sum(p.numel() for p in module.parameters())
              for name, module in agent.model.components().items()}
    write_json(target.with_suffix(".json"), {
        "name": args.name,
        "task": adapter.task,
        "action_repeat": adapter.action_repeat,
        "env_steps_trained": agent.meta.get("env_steps"),
        "train_seed": agent.meta.get("seed"),
        "size_preset": agent.meta.get("size"),
        "params_per_component": params,
        "params_total": sum(params.values()),
        "planner": dataclasses.asdict(planner),
        "eval": {"episodes": args.episodes, "seeds": list(result.seeds),
                 "mean_return": result.mean, "std_return": result.std,
                 "ci95": result.ci95, "returns": result.returns.tolist()},
        "shipped": datetime.date.today().isoformat(),
        "reproduce": " ".join(["python", *sys.argv]),
    })
    print(f"{target}: mean return {result.mean:.1f} +- {result.ci95:.1f} over "
          f"{args.episodes} episodes")


if __name__ == "__main__":
    main()
