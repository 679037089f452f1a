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
    copies = [envs.make_env(task, action_repeat=action_repeat) for _ in range(episodes)]
    planner.reseed(seed)
    try:
        batch = envs.run_episodes(
            copies, lambda obs, first: agent.act(obs, first, eval_mode=True, planner=planner),
            [seed + i for i in range(episodes)])
    finally:
        for env in copies:
            env.close()
    return batch.returns
