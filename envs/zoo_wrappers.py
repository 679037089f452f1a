"""The env wrappers RL Zoo applies when an agent acts, applied the same way here.

An RL Zoo ``config.yml`` names them (``env_wrapper``, ``frame_stack``); an agent acting
without them sees other observations than it was trained on. They travel as JSON-able
specs ``[name, kwargs]`` (in an agent's card, its ``describe()`` and ``make_env``):

- ``stable_baselines3.common.atari_wrappers.AtariWrapper``: as in training, except that
  rewards are not clipped and a lost life does not end the episode, so a return is the game
  score RL Zoo reports (its ``Monitor`` counts whole games);
- ``sb3_contrib.common.wrappers.TimeFeatureWrapper``;
- ``frame_stack`` (``{"n": N}``): the last N observations on the last axis, oldest first,
  zeros before the first, as SB3's ``VecFrameStack``;
- ``channels_first``: image observations transposed to (channels, height, width), as SB3's
  ``VecTransposeImage`` does for a policy that stores channel-first images;
- ``flatten_dict``: dict observations as one vector, the keys' arrays flattened and joined
  in the space's key order (the agent splits them again).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["WRAPPERS", "apply_wrappers", "is_supported_wrapper"]

ATARI = "stable_baselines3.common.atari_wrappers.AtariWrapper"
TIME_FEATURE = "sb3_contrib.common.wrappers.TimeFeatureWrapper"


class WholeGames(gym.Wrapper):
    """A lost life continues the game: the wrapped chain is reset as a vectorised env would
    on AtariWrapper's life-loss ``terminated`` (its reset presses on in the same game, the
    frame stack starts afresh); the episode ends when the game does."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated and not truncated and self.env.unwrapped.ale.lives() > 0:
            obs, _ = self.env.reset()
            terminated = False
        return obs, reward, terminated, truncated, info


class StackFrames(gym.ObservationWrapper):
    """The last ``n`` observations concatenated on the last axis, oldest first; zeros stand
    for the frames before the first (SB3's ``VecFrameStack``)."""

    def __init__(self, env: gym.Env, n: int) -> None:
        super().__init__(env)
        if int(n) != n or n < 1:
            raise ValueError(f"frame_stack must be a whole number >= 1, got {n}")
        space = env.observation_space
        self.observation_space = gym.spaces.Box(
            np.repeat(space.low, n, axis=-1), np.repeat(space.high, n, axis=-1),
            dtype=space.dtype)
        self.frames: deque = deque(maxlen=int(n))

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.frames.extend(np.zeros_like(obs) for _ in range(self.frames.maxlen))
        return self.observation(obs), info

    def observation(self, observation):
        self.frames.append(observation)
        return np.concatenate(list(self.frames), axis=-1)


class ChannelsFirst(gym.ObservationWrapper):
    """(height, width, channels) images as (channels, height, width)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(
            np.moveaxis(space.low, -1, 0), np.moveaxis(space.high, -1, 0), dtype=space.dtype)

    def observation(self, observation):
        return np.moveaxis(observation, -1, 0)


def _atari(env: gym.Env, **kwargs: Any) -> gym.Env:
    from stable_baselines3.common.atari_wrappers import AtariWrapper

    return AtariWrapper(env, **{**kwargs, "clip_reward": False})


def _time_feature(env: gym.Env, **kwargs: Any) -> gym.Env:
    from sb3_contrib.common.wrappers import TimeFeatureWrapper

    return TimeFeatureWrapper(env, **kwargs)


def _channels_first(env: gym.Env) -> gym.Env:
    """Transposes only channel-last images (a channel-first env is left as it is)."""
    shape = env.observation_space.shape or ()
    return ChannelsFirst(env) if len(shape) == 3 and shape[-1] < shape[0] else env


def _flatten_dict(env: gym.Env) -> gym.Env:
    if not isinstance(env.observation_space, gym.spaces.Dict):
        return env
    return gym.wrappers.FlattenObservation(env)


WRAPPERS: dict[str, Callable[..., gym.Env]] = {
    ATARI: _atari, TIME_FEATURE: _time_feature,
    "frame_stack": lambda env, n: StackFrames(env, n),
    "channels_first": _channels_first, "flatten_dict": _flatten_dict,
}


def is_supported_wrapper(name: str) -> bool:
    return name in WRAPPERS


def apply_wrappers(env: gym.Env, specs: Sequence[Sequence[Any]]) -> gym.Env:
    """``env`` inside the wrappers ``[name, kwargs]`` (innermost first).

    Raises:
        ValueError: a wrapper rlprune does not apply.
    """
    for name, kwargs in specs:
        if name not in WRAPPERS:
            raise ValueError(f"env wrapper {name!r} is not one rlprune applies "
                             f"({', '.join(WRAPPERS)})")
        env = WRAPPERS[name](env, **(kwargs or {}))
    return WholeGames(env) if any(name == ATARI for name, _ in specs) else env
