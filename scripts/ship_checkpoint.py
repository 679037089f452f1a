"""Copy a trained agent into checkpoints/ with a JSON card of measured returns.

    python scripts/ship_checkpoint.py --run-dir runs/cartpole-swingup --name cartpole-swingup
    python scripts/ship_checkpoint.py --run-dir runs/sac-halfcheetah --name sac-halfcheetah \\
        --env HalfCheetah-v5

A TD-MPC2 run dir (``agent.pt``) ships with a CPU-sized MPPI budget
(``--iterations``/``--samples``; ours, TD-MPC2's default is 6 x 512); an SB3 run dir
(``agent.zip``, from scripts/train_sb3.py) ships its zip as is, with ``--env`` in the
card (SB3 files do not record their env). The card records the returns of ``--episodes``
seeded episodes measured by rlprune's evaluator, and the parameters per component.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import shutil
import sys
from pathlib import Path

import tdmpc2
from rlprune.adapters import SB3Adapter, TDMPC2Adapter
from rlprune.analysis.evaluate import ClosedLoopEvaluator
from rlprune.io import atomic_write
from rlprune.report import write_json

ROOT = Path(__file__).resolve().parents[1]


def tdmpc2_agent(run_dir: Path, target: Path, args) -> tuple[TDMPC2Adapter, dict]:
    agent = tdmpc2.load_agent(run_dir / "agent.pt")
    planner = agent.planner_cfg.reduced(args.iterations, args.samples)
    agent.set_planner(planner)
    tdmpc2.save_agent(target, agent, meta=agent.meta)
    return TDMPC2Adapter(agent), {
        "env_steps_trained": agent.meta.get("env_steps"), "train_seed": agent.meta.get("seed"),
        "size_preset": agent.meta.get("size"), "planner": dataclasses.asdict(planner)}


def sb3_agent(run_dir: Path, target: Path, args) -> tuple[SB3Adapter, dict]:
    if not args.env:
        raise SystemExit("an SB3 agent needs --env (its zip does not record the env)")
    atomic_write(target, lambda tmp: shutil.copyfile(run_dir / "agent.zip", tmp))
    adapter = SB3Adapter.from_path(target)
    adapter.meta["task"] = args.env
    return adapter, {"algorithm": adapter.algorithm,
                     "env_steps_trained": int(adapter.model.num_timesteps),
                     "net_arch": adapter.model.policy_kwargs.get("net_arch")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--name", required=True, help="file stem in checkpoints/")
    parser.add_argument("--env", help="env spec of an SB3 agent")
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    run_dir = Path(args.run_dir)
    is_sb3 = (run_dir / "agent.zip").exists()
    target = ROOT / "checkpoints" / f"{args.name}{'.zip' if is_sb3 else '.pt'}"
    adapter, facts = (sb3_agent if is_sb3 else tdmpc2_agent)(run_dir, target, args)
    info = adapter.describe()
    evaluator = ClosedLoopEvaluator(info["task"], episodes=args.episodes, seed=args.seed,
                                    action_repeat=info["action_repeat"])
    result = evaluator.evaluate(adapter)
    params = {name: sum(p.numel() for p in c.module.parameters())
              for name, c in adapter.components().items()}
    write_json(target.with_suffix(".json"), {
        "name": args.name, "kind": adapter.kind, "task": info["task"],
        "action_repeat": info["action_repeat"], **facts,
        "params_per_component": params, "params_total": sum(params.values()),
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
