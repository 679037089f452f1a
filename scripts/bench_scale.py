"""Benchmark: wall time of a sweep's cells with 1, 2, ... workers; prints JSON.

    python scripts/bench_scale.py [--agent sac-halfcheetah] [--workers 1,2]
        [--executors process,ray] [--sparsities 0.2,0.4,0.6,0.8] [--methods magnitude,cmaes]
        [--budget 6] [--episodes 2] [--eval-episodes 4] [--max-episode-steps 1000]
        [--out results/bench_scale.json]

The dense agent's run (its held-out episodes and visited states) is made once and copied
into every timed run folder, so each timing covers the independent cells only: a search
(or a baseline ranking), the held-out episodes and stability of each pruned agent. For
each executor the speed-up of N workers is its 1-worker wall time over its N-worker wall
time, measured in this one run; the rows of every run are checked equal to the first
run's (the executors must not change results). Each worker uses one torch thread.
A process pool is started for each run, so its timings include starting the worker
processes (seconds each); Ray's workers are warmed up first and then reused, as in a long
job on a running cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

import rlprune
from rlprune.report import write_json
from rlprune.search import make_executor, objective_for
from rlprune.settings import Evaluation
from rlprune.sweep import DENSE_FILE, sweep

MEASURED = ("seconds", "step_ms", "speedup")


def _ready(agent_name: str) -> str:
    """A warm-up unit: the worker has imported the sweep and loaded the agent."""
    import rlprune.sweep  # noqa: F401 - imported for its cost

    rlprune.load_agent(agent_name)
    time.sleep(1.0)  # long enough that every worker gets one
    return agent_name


def run_sweep(agent, args, out: Path, executor) -> tuple[float, list[dict]]:
    evaluation = Evaluation(None, args.episodes, 0, args.max_episode_steps, race=False)
    start = time.perf_counter()
    rows = sweep(agent, objective_for(agent, evaluation),
                 [float(s) for s in args.sparsities.split(",")], args.methods.split(","), out,
                 budget=args.budget,
                 report_objective=objective_for(agent, evaluation.held_out(args.eval_episodes)),
                 executor=executor, log=lambda line: None)
    return time.perf_counter() - start, [{k: v for k, v in r.items() if k not in MEASURED}
                                         for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="sac-halfcheetah")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--executors", default="process,ray")
    parser.add_argument("--sparsities", default="0.2,0.4,0.6,0.8")
    parser.add_argument("--methods", default="magnitude,cmaes")
    parser.add_argument("--budget", type=int, default=6)
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--eval-episodes", type=int, default=4)
    parser.add_argument("--max-episode-steps", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    agent = rlprune.load_agent(args.agent)
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        dense = workdir / "dense"
        time_in_process, reference = run_sweep(agent, args, dense, None)
        runs = [{"executor": "inprocess", "workers": 1, "seconds": time_in_process}]
        counts = [int(w) for w in args.workers.split(",")]
        for name in args.executors.split(","):
            if name == "ray":
                list(make_executor(name, max(counts)).run_units(_ready, [args.agent] * max(counts)))
            for workers in counts:
                folder = workdir / f"{name}-{workers}"
                folder.mkdir()
                for kept in (DENSE_FILE, "visited_inputs.pt"):
                    if (dense / kept).exists():
                        shutil.copy(dense / kept, folder / kept)
                seconds, rows = run_sweep(agent, args, folder,
                                          make_executor(name, workers))
                assert rows == reference, f"{name} with {workers} workers changed the rows"
                runs.append({"executor": name, "workers": workers, "seconds": seconds})
                print(json.dumps(runs[-1]), flush=True)
            if name == "ray":
                import ray
                ray.shutdown()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for run in runs:
        first = next(r for r in runs if r["executor"] == run["executor"])
        run["speedup_over_1_worker"] = first["seconds"] / run["seconds"]
    cells = len(reference) - 1
    result = {"agent": args.agent, "cells": cells, "settings": vars(args) | {"out": None},
              "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "note": "the in-process row includes the dense agent's run; the others do not",
              "runs": runs}
    print(json.dumps(result, indent=2))
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
