"""Shared fixtures: small real environments and rollouts with fixed action sequences."""

from __future__ import annotations

import os

# Headless machines have no display: render through EGL unless the user chose a backend.
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# Tests run in parallel workers (pytest -n 2 on 2 cores): one intra-op thread each, or
# the workers' thread pools fight over the cores and everything slows down manyfold.
torch.set_num_threads(1)


def rollout(env, seed: int, actions: np.ndarray):
    """Observations and rewards of one episode driven by a fixed action sequence."""
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards)


@pytest.fixture
def action_sequence():
    """A fixed, seeded action sequence factory: (steps, dim) -> actions in [-1, 1]."""
    def make(steps: int, dim: int, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).uniform(-1, 1, size=(steps, dim)).astype(np.float32)
    return make
