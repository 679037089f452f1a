"""Lockstep episodes over a list of envs: the one rollout loop the project uses.

N episodes run side by side, one batched policy call per step; an episode that has
ended is masked out and its env is not stepped again. A plain list, because it beats
Gymnasium's and SB3's vector envs here (their per-step info merging dominates; numbers in
the README's "Design choices, measured"). Non-finite actions or rewards end that episode
and flag it as failed instead of crashing the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

__all__ = ["EpisodeBatch", "run_episodes"]

Policy = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(observations [N, ...], first_step [N] bool) -> actions [N, ...]."""
StepCallback = Callable[[np.ndarray, np.ndarray, np.ndarray], None]
"""(observations, actions, active [N] bool), called before each env step."""


@dataclass(frozen=True)
class EpisodeBatch:
    """Per-episode outcome of one lockstep run."""

    returns: np.ndarray
    lengths: np.ndarray
    failed: np.ndarray
    """True where the policy produced a non-finite action or the env a non-finite reward."""


def run_episodes(
    envs: Sequence[gym.Env],
    policy: Policy,
    seeds: Sequence[int],
    on_step: StepCallback | None = None,
) -> EpisodeBatch:
    """Runs one episode per env, env ``i`` reset with ``seeds[i]``.

    Args:
        envs: the envs (one per episode; ``make_env`` copies).
        policy: batched policy; it sees every row, ended episodes keep their last
            observation (so row i always is episode i).
        seeds: episode seeds.
        on_step: optional observer of every step (e.g. to record visited states).
    """
    n = len(envs)
    if len(seeds) != n:
        raise ValueError(f"need one seed per env ({n}), got {len(seeds)}")
    obs = np.stack([env.reset(seed=int(seed))[0] for env, seed in zip(envs, seeds)])
    returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    failed = np.zeros(n, dtype=bool)
    first = np.ones(n, dtype=bool)
    while active.any():
        actions = np.asarray(policy(obs, first))
        finite = np.isfinite(actions.reshape(n, -1)).all(1)
        failed |= ~finite & active
        active &= finite
        if not active.any():
            break
        if on_step is not None:
            on_step(obs, actions, active.copy())
        for i in np.flatnonzero(active):
            obs[i], reward, terminated, truncated, _ = envs[i].step(actions[i])
            if not np.isfinite(reward):
                failed[i], active[i] = True, False
                continue
            returns[i] += reward
            lengths[i] += 1
            active[i] = not (terminated or truncated)
        first[:] = False
    return EpisodeBatch(returns, lengths, failed)
