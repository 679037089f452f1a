"""Batched, seeded evaluation episodes of a TD-MPC2 agent (used during training).

The pruning toolkit has its own agent-agnostic evaluator; this one keeps the agent
package free of any dependency on the toolkit.
"""

from __future__ import annotations

import numpy as np

import envs
from tdmpc2.agent import TDMPC2Agent
from tdmpc2.planner import MPPIPlanner

__all__ = ["evaluate_returns"]


def evaluate_returns(
    agent: TDMPC2Agent,
    task: str,
    episodes: int,
    seed: int,
    action_repeat: int = 2,
    planner: MPPIPlanner | None = None,
) -> np.ndarray:
    """Returns of ``episodes`` episodes run in lockstep, env ``i`` reset with ``seed + i``."""
    planner = planner or agent.planner
    vec = envs.make_vector_env(task, episodes, action_repeat=action_repeat)
    try:
        obs, _ = vec.reset(seed=[seed + i for i in range(episodes)])
        planner.reseed(seed)
        returns = np.zeros(episodes)
        done = np.zeros(episodes, dtype=bool)
        first = np.ones(episodes, dtype=bool)
        while not done.all():
            action = agent.act(obs, first_step=first, eval_mode=True, planner=planner)
            obs, reward, terminated, truncated, _ = vec.step(action)
            returns += np.where(done, 0.0, reward)
            done |= terminated | truncated
            first[:] = False
        return returns
    finally:
        vec.close()
