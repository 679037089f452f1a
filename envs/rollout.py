"""Lockstep episodes through a vector env: the one rollout loop the project uses.

N episodes run side by side, one batched policy call per step; an episode that has
ended is masked out (its later rewards never count, its env's automatic reset is
ignored). Non-finite actions or rewards end that episode and flag it as failed instead
of crashing the batch.
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
    vec: gym.vector.VectorEnv,
    policy: Policy,
    seeds: Sequence[int],
    on_step: StepCallback | None = None,
) -> EpisodeBatch:
    """Runs one episode per sub-env, env ``i`` reset with ``seeds[i]``.

    Args:
        vec: a vector env with ``len(seeds)`` sub-envs.
        policy: batched policy.
        seeds: episode seeds.
        on_step: optional observer of every step (e.g. to record visited states).
    """
    n = vec.num_envs
    if len(seeds) != n:
        raise ValueError(f"need one seed per sub-env ({n}), got {len(seeds)}")
    obs, _ = vec.reset(seed=[int(s) for s in seeds])
    returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    failed = np.zeros(n, dtype=bool)
    first = np.ones(n, dtype=bool)
    neutral = np.zeros(vec.single_action_space.shape, dtype=vec.single_action_space.dtype)
    while active.any():
        actions = np.asarray(policy(obs, first))
        finite = np.isfinite(actions.reshape(n, -1)).all(1)
        if not finite.all():
            failed |= ~finite & active
            active &= finite
            # Ended episodes still step (the vector env steps all); never feed them NaN.
            actions = np.where(finite.reshape((n,) + (1,) * (actions.ndim - 1)), actions,
                               neutral)
            if not active.any():
                break
        if on_step is not None:
            on_step(obs, actions, active.copy())
        obs, reward, terminated, truncated, _ = vec.step(actions)
        bad_reward = ~np.isfinite(reward) & active
        failed |= bad_reward
        returns += np.where(active & ~bad_reward, reward, 0.0)
        lengths += active
        active &= ~(terminated | truncated | bad_reward)
        first[:] = False
    return EpisodeBatch(returns, lengths, failed)
