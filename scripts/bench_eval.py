"""Benchmark closed-loop evaluation: batched vs sequential; prints one JSON object.

    python scripts/bench_eval.py [--episodes 16] [--max-episode-steps 200] [--sb3 PATH]

TD-MPC2 (shipped agent): the evaluator's batched lockstep run (timed on a warm
evaluator, as every candidate after the first in a search; the first call, which also
builds the vector env, is reported apart) vs a sequential loop of one-episode
evaluations with the same seeds. SB3 (``--sb3`` zip, or a SAC agent trained
here for a few hundred steps): the same, plus SB3's own ``evaluate_policy`` on a
``--episodes``-env DummyVecEnv. Ratios are measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

import envs
import rlprune


def batched_vs_sequential(agent, spec: str, episodes: int, repeat: int,
                          max_steps: int | None, threads: int) -> dict:
    def evaluator(n: int, seed: int) -> rlprune.ClosedLoopEvaluator:
        return rlprune.ClosedLoopEvaluator(spec, episodes=n, seed=seed, action_repeat=repeat,
                                           max_episode_steps=max_steps, threads=threads)

    warm = evaluator(episodes, 0)
    start = time.perf_counter()
    warm.evaluate(agent)  # first call also builds the vector env (reused afterwards)
    t_first = time.perf_counter() - start
    start = time.perf_counter()
    batched = warm.evaluate(agent)  # what every further candidate of a search costs
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    sequential = [evaluator(1, i).evaluate(agent) for i in range(episodes)]
    t_sequential = time.perf_counter() - start
    seq_returns = np.array([r.returns[0] for r in sequential])
    return {"batched_s": t_batched, "batched_first_call_s": t_first,
            "sequential_s": t_sequential,
            "speedup": t_sequential / t_batched,
            "env_steps_per_s_batched": batched.env_steps / t_batched,
            "batched_mean": batched.mean, "sequential_mean": float(seq_returns.mean()),
            "max_return_difference": float(np.abs(batched.returns - seq_returns).max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--max-episode-steps", type=int, default=200)
    parser.add_argument("--sb3", help="SB3 zip (default: a SAC trained here on Pendulum-v1)")
    parser.add_argument("--sb3-env", default="Pendulum-v1")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = {"episodes": args.episodes, "max_episode_steps": args.max_episode_steps,
           "threads": args.threads}

    tdmpc2 = rlprune.load_agent("cartpole-swingup")
    out["tdmpc2"] = batched_vs_sequential(tdmpc2, tdmpc2.task, args.episodes,
                                          tdmpc2.action_repeat, args.max_episode_steps,
                                          args.threads)

    if args.sb3:
        sb3 = rlprune.load_agent(args.sb3)
    else:
        model = SAC("MlpPolicy", envs.make_env(args.sb3_env), seed=0, device="cpu",
                    learning_starts=100)
        model.learn(300)
        sb3 = rlprune.adapters.SB3Adapter(model, "SAC")
    out["sb3"] = batched_vs_sequential(sb3, args.sb3_env, args.episodes, 1,
                                       args.max_episode_steps, args.threads)
    vec = make_vec_env(lambda: envs.make_env(args.sb3_env,
                                             max_episode_steps=args.max_episode_steps),
                       n_envs=args.episodes, seed=0)
    start = time.perf_counter()
    mean, _ = evaluate_policy(sb3.model, vec, n_eval_episodes=args.episodes,
                              deterministic=True)
    t_sb3 = time.perf_counter() - start
    out["sb3"].update(sb3_evaluate_policy_s=t_sb3, sb3_evaluate_policy_mean=float(mean),
                      ours_vs_evaluate_policy=t_sb3 / out["sb3"]["batched_s"])
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
