"""Benchmark the TD-MPC2 agent on this machine; prints one JSON object.

    python scripts/bench_tdmpc2.py [--size cpu] [--threads 2] [--repeats 5]
        [--iterations 6 --samples 512]

Reports ms per update (batch 256, horizon 3), ms per batched plan for N = 1, 4, 16
environments and the ratio against N single plans, and parameters and FLOPs per
component (FLOPs: Linear layers, one sample). ``plan_gflop`` is the arithmetic of one
plan. On a CPU even small planners are arithmetic-bound (2 x 32 samples: 0.14 GFLOP in
11 ms), so N batched plans cost about N single ones (measured 0.97-1.35x for N = 16 with
6 x 512, 4 x 256 and 2 x 32); batching pays where one plan leaves the hardware idle.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from rlprune.adapters import TDMPC2Adapter
from rlprune.pruning.accounting import CostModel
from rlprune.pruning.grouping import ComponentGrouper
from tdmpc2 import PlannerConfig, TDMPC2Agent, TrainConfig, model_config_for


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1000


def plan_flops(flops: dict[str, int], planner: PlannerConfig) -> float:
    """FLOPs of one plan for one env: per iteration every sample rolls dynamics and
    reward over the horizon, draws a terminal action from pi and is valued by two Q
    heads; the policy's own proposals roll pi and dynamics once per plan."""
    h = planner.horizon
    per_sample = h * (flops["dynamics"] + flops["reward"]) + flops["pi"] + 2 * flops["Q0"]
    proposals = planner.num_pi_trajs * h * (flops["pi"] + flops["dynamics"])
    return planner.iterations * planner.num_samples * per_sample + proposals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--obs-dim", type=int, default=5)
    parser.add_argument("--action-dim", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=PlannerConfig.iterations)
    parser.add_argument("--samples", type=int, default=PlannerConfig.num_samples)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = model_config_for(args.size, args.obs_dim, args.action_dim)
    planner = PlannerConfig().reduced(args.iterations, args.samples)
    agent = TDMPC2Agent(cfg, planner, train_cfg=TrainConfig(), seed=0)
    rng = np.random.default_rng(0)
    batch = (torch.randn(4, 256, cfg.obs_dim), torch.rand(3, 256, cfg.action_dim) * 2 - 1,
             torch.rand(3, 256, 1), torch.zeros(3, 256, 1))
    result = {"size": args.size, "threads": args.threads,
              "planner": {"iterations": planner.iterations, "samples": planner.num_samples},
              "update_ms": timed(lambda: agent.update(*batch), args.repeats), "plan_ms": {}}
    for n in (1, 4, 16):
        obs = rng.normal(size=(n, cfg.obs_dim)).astype(np.float32)
        first = np.zeros(n, dtype=bool)
        result["plan_ms"][n] = timed(lambda o=obs, f=first: agent.act(o, f), args.repeats)
    single = result["plan_ms"][1]
    result["batched_vs_sequential"] = {n: n * single / ms for n, ms in result["plan_ms"].items()}
    grouper = ComponentGrouper(TDMPC2Adapter(agent))
    dense = CostModel(grouper).dense
    result["params"] = dense.params_by_component
    result["flops"] = dense.flops_by_component
    result["params_total"], result["flops_total"] = dense.params, dense.flops
    result["plan_gflop"] = plan_flops(dense.flops_by_component, planner) / 1e9
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
