"""DeepMind Control Suite tasks as plain ``gymnasium.Env`` objects.

TD-MPC2 and most pruning studies in continuous control use DMC tasks; the rest of the
project speaks Gymnasium. This adapter makes a suite task look like any other Gymnasium
env: flat float32 observations, actions in [-1, 1], an action repeat, truncation at the
suite's own time limit, ``reset(seed=...)`` determinism and ``render()`` as rgb_array.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["DMCEnv", "dmc_task_names"]


def dmc_task_names() -> list[str]:
    """Every ``domain-task`` name of the suite, e.g. ``cartpole-swingup``."""
    from dm_control import suite

    return [f"{domain}-{task}" for domain, task in suite.ALL_TASKS]


class DMCEnv(gym.Env):
    """One dm_control suite task behind the Gymnasium API.

    Args:
        domain: suite domain, e.g. ``"cartpole"``.
        task: suite task, e.g. ``"swingup"``.
        render_size: (height, width) of ``render()`` frames.
        camera_id: camera used by ``render()``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        domain: str,
        task: str,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (240, 320),
        camera_id: int = 0,
    ) -> None:
        from dm_control import suite

        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.domain, self.task_name = domain, task
        self.render_mode = render_mode
        self._render_size = render_size
        self._camera_id = camera_id
        self._env = suite.load(domain, task, task_kwargs={"random": 0})
        self.physics = self._env.physics

        act_spec = self._env.action_spec()
        self._act_low = act_spec.minimum.astype(np.float64)
        self._act_high = act_spec.maximum.astype(np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, shape=act_spec.shape, dtype=np.float32)
        obs_dim = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(obs_dim,), dtype=np.float32)
        # The suite ends every episode after a fixed number of control steps; dm_control
        # keeps that number only in a private attribute.
        self.max_episode_steps = int(round(self._env._step_limit))

    @staticmethod
    def _flatten(observation: dict[str, Any]) -> np.ndarray:
        parts = [np.asarray(v, dtype=np.float32).reshape(-1) for v in observation.values()]
        return np.concatenate(parts)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            # The task draws its initial state from this RandomState: reseeding it in
            # place makes reset(seed=s) reproduce the same episode start.
            self._env.task.random.seed(seed)
        time_step = self._env.reset()
        return self._flatten(time_step.observation), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=np.float64).reshape(self.action_space.shape)
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action contains NaN or inf: {action}")
        action = np.clip(action, -1.0, 1.0)
        scaled = self._act_low + (action + 1.0) * 0.5 * (self._act_high - self._act_low)
        time_step = self._env.step(scaled)
        reward = float(time_step.reward or 0.0)
        terminated = bool(time_step.last() and time_step.discount == 0.0)
        truncated = bool(time_step.last() and not terminated)
        return self._flatten(time_step.observation), reward, terminated, truncated, {}

    def render(self) -> np.ndarray:
        height, width = self._render_size
        return self.physics.render(height=height, width=width, camera_id=self._camera_id)

    def close(self) -> None:
        self._env.close()
