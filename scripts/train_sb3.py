"""Train an SB3 agent (default: SAC on HalfCheetah-v5), resumably, to ship in checkpoints/.

    python scripts/train_sb3.py --algo SAC --env HalfCheetah-v5 --steps 300000 \
        --run-dir runs/sac-halfcheetah

Every ``--save-every`` steps the model and its replay buffer are written atomically to
RUN_DIR; running the same command again continues from them. ``agent.zip`` is the
acting model; ``eval.csv`` logs seeded deterministic evaluations and ``best.zip`` keeps
the best-evaluated snapshot (off-policy returns swing between evaluations: on Hopper
1831 at 160k steps, 925 at 180k), so a good policy is never overwritten.

``--actor-arch 86,132`` trains a smaller actor beside full-size critics: the from-scratch
baseline of issue #20 (a dense actor of a pruned actor's widths, same env-step budget;
``scripts/robust_study.py --scratch``).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
from pathlib import Path

import numpy as np
import stable_baselines3
import torch
from stable_baselines3.common.callbacks import BaseCallback

import envs
from rlprune.adapters import SB3Adapter
from rlprune.analysis.evaluate import ClosedLoopEvaluator
from rlprune.io import atomic_write


class Checkpoint(BaseCallback):
    """Saves model + replay buffer every ``every`` steps and evaluates the policy."""

    def __init__(self, run_dir: Path, every: int, evaluator: ClosedLoopEvaluator,
                 algo: str) -> None:
        super().__init__()
        self.run_dir, self.every, self.evaluator, self.algo = run_dir, every, evaluator, algo

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0:
            save(self.model, self.run_dir)
            result = self.evaluator.evaluate(SB3Adapter(self.model, self.algo))
            path = self.run_dir / "eval.csv"
            new = not path.exists()
            with path.open("a", newline="") as f:
                writer = csv.writer(f)
                if new:
                    writer.writerow(["env_steps", "mean_return", "ci95"])
                writer.writerow([self.num_timesteps, result.mean, result.ci95])
            if result.mean > best_return(path, exclude_last=True):
                atomic_write(self.run_dir / "best.zip",
                             lambda tmp: shutil.copyfile(self.run_dir / "agent.zip", tmp))
        return True


def best_return(eval_csv: Path, exclude_last: bool = False) -> float:
    """The best mean return logged so far (-inf if none)."""
    with eval_csv.open() as f:
        rows = list(csv.DictReader(f))
    rows = rows[:-1] if exclude_last else rows
    return max((float(r["mean_return"]) for r in rows), default=float("-inf"))


def widths(text: str) -> list[int]:
    """``"86,132"`` -> ``[86, 132]``, refusing anything but positive integers."""
    try:
        values = [int(w) for w in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise SystemExit(f"widths must be positive integers separated by commas, got {text!r}")
    return values


def net_arch(shared: str, actor: str | None, off_policy: bool) -> list[int] | dict:
    """SB3's ``net_arch``: one list for every network, or the actor's own widths beside the
    critics' (``pi``/``qf`` off-policy, ``pi``/``vf`` on-policy)."""
    if actor is None:
        return widths(shared)
    return {"pi": widths(actor), "qf" if off_policy else "vf": widths(shared)}


def save(model, run_dir: Path) -> None:
    atomic_write(run_dir / "agent.zip", lambda tmp: model.save(tmp + ".zip") or
                 os.replace(tmp + ".zip", tmp))
    if hasattr(model, "save_replay_buffer"):
        atomic_write(run_dir / "replay.pkl", lambda tmp: model.save_replay_buffer(tmp + ".pkl")
                     or os.replace(tmp + ".pkl", tmp))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algo", default="SAC")
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-every", type=int, default=20_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--net-arch", default="256,256", help="hidden widths of every network")
    parser.add_argument("--actor-arch", default=None,
                        help="hidden widths of the actor alone (default: --net-arch)")
    parser.add_argument("--run-dir", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    algo = getattr(stable_baselines3, args.algo)
    env = envs.make_env(args.env)
    if (run_dir / "agent.zip").exists():
        model = algo.load(run_dir / "agent.zip", env=env, device="cpu")
        if (run_dir / "replay.pkl").exists():
            model.load_replay_buffer(run_dir / "replay.pkl")
        print(f"resuming at {model.num_timesteps} steps")
    else:
        off_policy = {"buffer_size": args.steps} if hasattr(algo, "save_replay_buffer") else {}
        model = algo("MlpPolicy", env, seed=args.seed, device="cpu",
                     policy_kwargs={"net_arch": net_arch(args.net_arch, args.actor_arch,
                                                         off_policy=bool(off_policy))},
                     **off_policy)
    evaluator = ClosedLoopEvaluator(args.env, episodes=args.eval_episodes, seed=10_000)
    remaining = args.steps - model.num_timesteps
    if remaining > 0:
        model.learn(remaining, callback=Checkpoint(run_dir, args.save_every, evaluator,
                                                   args.algo),
                    reset_num_timesteps=False, progress_bar=False)
    save(model, run_dir)
    print(f"done: {model.num_timesteps} steps; returns in {run_dir / 'eval.csv'}")
    np.savetxt(run_dir / "done.txt", [model.num_timesteps])


if __name__ == "__main__":
    main()
