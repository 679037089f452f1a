"""``make_env``: one entry point for DMC tasks and registered Gymnasium ids.

Specs: ``"dmc/cartpole-swingup"`` (any ``domain-task`` of ``dm_control.suite``; TD-MPC2's
``cup-catch`` alias is accepted) or any Gymnasium id such as ``"Pendulum-v1"``. Ids whose
Gymnasium entry needs mujoco-py (``HalfCheetah-v3``, ``Hopper-v2``: what public pretrained
agents were trained on; mujoco-py no longer installs) run on the newest version of the task.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym

from envs.dmc import DMCEnv, dmc_task_names
from envs.perturb import PerturbationSpec, apply_perturbations
from envs.zoo_wrappers import apply_wrappers

try:  # Atari games (RL Zoo's DQN, QR-DQN, PPO and A2C agents) where ale-py is installed
    import ale_py

    gym.register_envs(ale_py)
except ImportError:
    pass

__all__ = ["ActionRepeat", "current_spec", "episode_length", "make_env", "make_vector_env",
           "resolve_spec"]

DMC_PREFIX = "dmc/"
_DMC_ALIASES = {"cup": "ball_in_cup"}


class ActionRepeat(gym.Wrapper):
    """Repeats each action ``repeat`` times and sums the rewards; stops early at episode end."""

    def __init__(self, env: gym.Env, repeat: int) -> None:
        super().__init__(env)
        if int(repeat) != repeat or repeat < 1:
            raise ValueError(f"action_repeat must be a whole number >= 1, got {repeat}")
        self.repeat = int(repeat)

    def step(self, action):
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


def _close_matches(name: str) -> str:
    known = [DMC_PREFIX + t for t in dmc_task_names()] + list(gym.registry.keys())
    matches = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    return f"; did you mean {', '.join(matches)}?" if matches else ""


def _needs_mujoco_py(env_spec: gym.envs.registration.EnvSpec) -> bool:
    entry = env_spec.entry_point
    name = entry if isinstance(entry, str) else getattr(entry, "__name__", "")
    return "mujoco_py" in name


def current_spec(spec: str) -> str:
    """``spec``, or the newest version of its task when its Gymnasium entry needs mujoco-py
    (one line on stderr says so).

    HalfCheetah, Hopper and Walker2d v5 have the spaces of v2/v3; other tasks changed theirs
    (Ant-v5's default observation): evaluators compare spaces before any episode.
    """
    old = gym.registry.get(spec)
    if old is None or not _needs_mujoco_py(old):
        return spec
    versions = [s for s in gym.registry.values() if s.namespace == old.namespace
                and s.name == old.name and s.version is not None and not _needs_mujoco_py(s)]
    if not versions:
        raise ValueError(f"{spec} needs mujoco-py, which does not install with current "
                         "Python and MuJoCo, and no newer version of it is registered")
    new = max(versions, key=lambda s: s.version).id
    print(f"rlprune: note: {spec} needs mujoco-py (not installable); running {new} instead",
          file=sys.stderr)
    return new


def resolve_spec(spec: str) -> tuple[str, str, str | None]:
    """Splits a spec into (kind, name, task): ``("dmc", domain, task)`` or ``("gym", id, None)``.

    Raises:
        ValueError: the spec names no DMC task and no registered Gymnasium id.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"env spec must be a non-empty string, got {spec!r}")
    if spec.startswith(DMC_PREFIX):
        domain, _, task = spec[len(DMC_PREFIX):].partition("-")
        domain = _DMC_ALIASES.get(domain, domain)
        if f"{domain}-{task}" in dmc_task_names():
            return "dmc", domain, task
        raise ValueError(f"unknown DMC task {spec!r}{_close_matches(spec)}")
    if spec in gym.registry:
        return "gym", current_spec(spec), None
    raise ValueError(f"unknown env {spec!r}{_close_matches(spec)}")


def make_env(
    spec: str,
    *,
    action_repeat: int = 1,
    max_episode_steps: int | None = None,
    perturb: str | Mapping[str, float] | list[PerturbationSpec] | None = None,
    perturb_seed: int = 0,
    render_mode: str | None = None,
    wrappers: Sequence[Sequence[Any]] = (),
    **gym_kwargs: Any,
) -> gym.Env:
    """Builds one environment.

    Args:
        spec: ``"dmc/domain-task"`` or a Gymnasium id.
        action_repeat: agent steps span this many env steps, rewards summed.
        max_episode_steps: override the episode limit (in env steps, before repeat).
        perturb: perturbations to wrap the env in (see ``envs.perturb``).
        perturb_seed: base seed of the noise perturbations.
        render_mode: ``None`` or ``"rgb_array"``.
        wrappers: RL Zoo wrappers the agent acts through (``envs.zoo_wrappers``), applied
            before the perturbations.
        **gym_kwargs: passed on to ``gymnasium.make`` for Gymnasium ids.

    Raises:
        ValueError: unknown spec, bad option, or a perturbation the env does not support.
    """
    kind, name, task = resolve_spec(spec)
    if kind == "dmc":
        if gym_kwargs:
            raise ValueError(f"DMC tasks take no extra options, got {sorted(gym_kwargs)}")
        env: gym.Env = DMCEnv(name, task, render_mode=render_mode)
        if max_episode_steps is not None:
            env = gym.wrappers.TimeLimit(env, max_episode_steps)
    else:
        env = gym.make(name, max_episode_steps=max_episode_steps, render_mode=render_mode,
                       **gym_kwargs)
    env = apply_wrappers(env, wrappers)
    env = apply_perturbations(env, perturb, seed=perturb_seed)
    if action_repeat != 1:
        env = ActionRepeat(env, action_repeat)
    return env


def episode_length(env: gym.Env) -> int | None:
    """Agent steps in a full-length episode (time limit divided by action repeat)."""
    limit = None
    inner: gym.Env | None = env
    repeat = 1
    while inner is not None:
        if isinstance(inner, ActionRepeat):
            repeat *= inner.repeat
        if isinstance(inner, gym.wrappers.TimeLimit):
            limit = inner._max_episode_steps if limit is None else limit
        if isinstance(inner, DMCEnv):
            limit = inner.max_episode_steps if limit is None else limit
        inner = getattr(inner, "env", None)
    return None if limit is None else -(-limit // repeat)


def make_vector_env(
    spec: str, num_envs: int, *, vectorization: str = "sync", **options: Any
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``make_env(spec, **options)`` in a Gymnasium vector env.

    Seed each copy through ``reset(seed=[s0, s1, ...])``; perturbation noise follows the
    episode seeds, so copy ``i`` reproduces ``make_env(spec).reset(seed=s_i)`` exactly.

    Args:
        vectorization: ``"sync"`` (one process; best for cheap envs) or ``"async"``
            (one process per copy).
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    resolve_spec(spec)  # fail here, not inside a worker process
    fns = [lambda: make_env(spec, **options) for _ in range(num_envs)]
    if vectorization == "sync":
        return gym.vector.SyncVectorEnv(fns)
    if vectorization == "async":
        return gym.vector.AsyncVectorEnv(fns)
    raise ValueError(f"vectorization must be 'sync' or 'async', got {vectorization!r}")
