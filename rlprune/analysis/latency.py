"""Measured time per control step: what a controller costs in the loop it runs in."""

from __future__ import annotations

import itertools

import numpy as np

from rlprune.adapters.base import AgentAdapter
from rlprune.timing import Timing, time_calls, torch_threads

__all__ = ["measure_step"]


def measure_step(agent: AgentAdapter, threads: int = 1, steps: int = 20, warmup: int = 3,
                 seed: int = 0) -> Timing:
    """Seconds per ``act`` for one env, warm: after ``warmup`` steps, on observations drawn
    from the agent's observation space (seeded), as consecutive steps of one episode (a
    planner warm-starts from its previous plan).

    Raises:
        TypeError: the agent does not act (no observation space).
        ValueError: threads or steps < 1.
    """
    if agent.observation_space is None:
        raise TypeError(f"{agent.kind} agent does not act: it has no control step to time")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    space = agent.observation_space
    space.seed(seed)
    observations = [np.asarray(space.sample(), dtype=np.float32)[None]
                    for _ in range(steps + warmup)]
    stream = itertools.cycle(observations)
    first = itertools.chain([np.array([True])], itertools.repeat(np.array([False])))
    with torch_threads(threads):
        agent.reset(seed)
        # a sample of a fast policy is the mean of a few ms of steps (clock resolution)
        return time_calls(lambda: agent.act(next(stream), next(first)), repeats=steps,
                          warmup=warmup, min_seconds=5e-3)
