"""Benchmark: predicted vs measured time per control step, dense and pruned; prints JSON.

    python scripts/bench_latency.py [--agents cartpole-swingup,sac-halfcheetah]
        [--threads 1,2] [--sparsities 0.5,0.8] [--speedups 1.5,2] [--episodes 0]
        [--backends eager] [--out results/bench_latency.json]

For each agent and thread count: the latency model is calibrated on two measured steps
(the dense agent, and every group halved: ``rlprune.step_timing.calibrate``), then each
plan (global magnitude at parameter sparsities, and magnitude ranked to predicted
speed-ups) is predicted from the layer table, pruned physically and measured (median of
``--steps`` warm steps). With ``--backends eager,bf16,...`` every step runs on each
backend in turn (layer table measured and model calibrated per backend); speed-ups are
over the dense agent on the first backend. Every ratio comes from this one run.
``--episodes N`` adds each pruned agent's held-out return (seeds 1000.., full episodes;
minutes per row for a planner on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

import rlprune
from rlprune.analysis.latency import measure_step
from rlprune.backends import on_backend
from rlprune.pruning.latency import LayerTimes
from rlprune.pruning.ranking import InfeasibleTarget
from rlprune.pruning.targets import make_measure
from rlprune.report import write_json
from rlprune.search import baseline_plan
from rlprune.settings import HELD_OUT_SEED_OFFSET
from rlprune.step_timing import calibrate
from rlprune.timing import torch_threads


def plans(grouper, sparsities, speedups, model):
    """(label, plan) of magnitude at each parameter sparsity and each predicted speed-up."""
    for rho in sparsities:
        yield f"params={rho}", baseline_plan(grouper, "magnitude", rho, 0.02)
    latency = make_measure("latency", grouper, model)
    for factor in speedups:
        try:
            yield f"speedup={factor}", baseline_plan(grouper, "magnitude", 1 - 1 / factor,
                                                     0.02, measure=latency)
        except InfeasibleTarget as e:
            print(f"  speed-up {factor}: {e}", flush=True)


def held_out_return(agent, episodes: int) -> float:
    """Mean return on full held-out episodes (seeds from 1000)."""
    evaluator = rlprune.ClosedLoopEvaluator.for_agent(agent, None, episodes=episodes,
                                                      seed=HELD_OUT_SEED_OFFSET)
    return evaluator.evaluate(agent).mean


def bench_agent(name: str, threads: int, backend: str, args) -> list[dict]:
    agent = rlprune.load_agent(name)
    grouper = rlprune.ComponentGrouper(agent)

    def prepare(agent):
        with torch_threads(threads):
            return on_backend(agent, backend)

    model, dense = calibrate(agent, LayerTimes(threads, backend=backend), args.steps, prepare)
    rows = [{"agent": name, "threads": threads, "backend": backend, "plan": "dense",
             "params": 0.0,
             "overhead_ms": 1e3 * model.overhead, "scale": model.scale,
             "predicted_ms": 1e3 * model.predict({}), "measured_ms": 1e3 * dense.median,
             "p90_ms": 1e3 * dense.p90, "speedup": 1.0, "predicted_speedup": 1.0}]
    if args.episodes:
        rows[0]["return"] = held_out_return(prepare(agent), args.episodes)
    for label, plan in plans(grouper, args.sparsities, args.speedups, model):
        counts = {gid: len(channels) for gid, channels in plan.removed.items()}
        pruned = prepare(rlprune.prune_physically(agent, plan))
        measured = measure_step(pruned, threads, args.steps)
        predicted = model.predict(counts)
        row = {"agent": name, "threads": threads, "backend": backend, "plan": label,
               "params": plan.sparsity,
               "predicted_ms": 1e3 * predicted, "measured_ms": 1e3 * measured.median,
               "p90_ms": 1e3 * measured.p90,
               "error_pct": 100 * (predicted - measured.median) / measured.median,
               "speedup": dense.median / measured.median,
               "predicted_speedup": model.predict({}) / predicted}
        if args.episodes:
            row["return"] = held_out_return(pruned, args.episodes)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", default="cartpole-swingup,sac-halfcheetah")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--sparsities", default="0.5,0.8")
    parser.add_argument("--speedups", default="1.5,2")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per agent")
    parser.add_argument("--episodes", type=int, default=0, help="held-out episodes per row")
    parser.add_argument("--backends", default="eager", help="comma-separated backends")
    parser.add_argument("--out", default="results/bench_latency.json")
    args = parser.parse_args()
    args.sparsities = [float(x) for x in args.sparsities.split(",") if x]
    args.speedups = [float(x) for x in args.speedups.split(",") if x]
    rows = [row for name in args.agents.split(",")
            for threads in (int(t) for t in args.threads.split(","))
            for backend in args.backends.split(",")
            for row in bench_agent(name, threads, backend, args)]
    for row in rows:  # speed-up over the dense agent on the first backend, same threads
        first = next(r for r in rows if r["agent"] == row["agent"]
                     and r["threads"] == row["threads"] and r["plan"] == "dense")
        row["speedup_over_first_backend"] = first["measured_ms"] / row["measured_ms"]
    errors = [abs(r["error_pct"]) for r in rows if "error_pct" in r]
    result = {"machine": {"cpu": platform.processor() or platform.machine(),
                          "cores": torch.get_num_threads(), "torch": torch.__version__},
              "rows": rows, "max_abs_error_pct": max(errors, default=None)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(Path(args.out), result)
    print(json.dumps({"max_abs_error_pct": result["max_abs_error_pct"], "out": args.out}))


if __name__ == "__main__":
    main()
