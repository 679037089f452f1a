"""Seeded, parameterised perturbations for controller robustness studies.

Each perturbation is a Gymnasium wrapper that works on DMC tasks and Gymnasium MuJoCo
envs alike. They compose (wrap one around another) and can be named by a spec string
such as ``"mass=2,obs_noise=0.05,delay=1"`` so a command line can ask for them.

Noise wrappers draw from a generator keyed by ``(wrapper seed, episode seed)`` whenever
``reset(seed=...)`` is called, so the same episode seed gives the same noise sequence in
a single env and in a vector env.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

__all__ = [
    "PERTURBATIONS",
    "ActionDelay",
    "ActionNoise",
    "ObservationNoise",
    "PhysicsScale",
    "PerturbationSpec",
    "apply_perturbations",
    "mujoco_model",
    "parse_perturbations",
]


def _episode_rng(base_seed: int, episode_seed: int | None, current: np.random.Generator):
    """A fresh generator for a seeded episode; otherwise keep drawing from ``current``."""
    if episode_seed is None:
        return current
    return np.random.default_rng([base_seed, episode_seed])


class ObservationNoise(gym.ObservationWrapper):
    """Adds zero-mean Gaussian noise of standard deviation ``std`` to every observation."""

    def __init__(self, env: gym.Env, std: float, seed: int = 0) -> None:
        super().__init__(env)
        if not std >= 0:
            raise ValueError(f"obs_noise std must be >= 0, got {std}")
        self.std, self.seed = float(std), seed
        self._rng = np.random.default_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._rng = _episode_rng(self.seed, seed, self._rng)
        return super().reset(seed=seed, options=options)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        noise = self._rng.normal(0.0, self.std, size=np.shape(observation))
        return (observation + noise).astype(np.asarray(observation).dtype)


class ActionNoise(gym.ActionWrapper):
    """Adds Gaussian noise of standard deviation ``std`` (in units of half the action range)."""

    def __init__(self, env: gym.Env, std: float, seed: int = 0) -> None:
        super().__init__(env)
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ValueError("act_noise needs a continuous (Box) action space")
        if not std >= 0:
            raise ValueError(f"act_noise std must be >= 0, got {std}")
        self.std, self.seed = float(std), seed
        self._rng = np.random.default_rng(seed)
        self._half_range = (env.action_space.high - env.action_space.low) / 2.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._rng = _episode_rng(self.seed, seed, self._rng)
        return super().reset(seed=seed, options=options)

    def action(self, action: np.ndarray) -> np.ndarray:
        noise = self._rng.normal(0.0, self.std, size=self.action_space.shape) * self._half_range
        noisy = np.asarray(action) + noise
        return np.clip(noisy, self.action_space.low, self.action_space.high).astype(
            self.action_space.dtype
        )


class ActionDelay(gym.Wrapper):
    """Applies each action ``steps`` env steps late; the first ``steps`` actions are neutral.

    Neutral is the centre of the action box (zero torque for the usual [-1, 1] spaces).
    """

    def __init__(self, env: gym.Env, steps: int) -> None:
        super().__init__(env)
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ValueError("delay needs a continuous (Box) action space")
        if int(steps) != steps or steps < 0:
            raise ValueError(f"delay must be a whole number of steps >= 0, got {steps}")
        self.steps = int(steps)
        space = env.action_space
        self._neutral = ((space.low + space.high) / 2.0).astype(space.dtype)
        self._queue: collections.deque[np.ndarray] = collections.deque()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._queue = collections.deque([self._neutral.copy()] * self.steps)
        return self.env.reset(seed=seed, options=options)

    def step(self, action: np.ndarray):
        self._queue.append(np.asarray(action, dtype=self.action_space.dtype))
        return self.env.step(self._queue.popleft())


def mujoco_model(env: gym.Env) -> mujoco.MjModel:
    """The MuJoCo model under a DMC or Gymnasium MuJoCo env.

    Raises:
        ValueError: the env is not simulated by MuJoCo.
    """
    base = env.unwrapped
    physics = getattr(base, "physics", None)
    if physics is not None and hasattr(physics, "model"):
        return physics.model.ptr
    model = getattr(base, "model", None)
    if isinstance(model, mujoco.MjModel):
        return model
    raise ValueError(
        f"{type(base).__name__} is not a MuJoCo env: mass/damping/friction perturbations "
        "need a DMC task or a Gymnasium MuJoCo env"
    )


class PhysicsScale(gym.Wrapper):
    """Scales a MuJoCo model quantity (mass, joint damping, friction) by a constant factor.

    ``mass`` scales body masses and inertias together, so bodies stay physically
    consistent; ``damping`` scales every joint's damping; ``friction`` scales the
    sliding, torsional and rolling friction of every geom. The nominal values are
    kept and the scale is re-applied at every reset.
    """

    FIELDS = {"mass": ("body_mass", "body_inertia"), "damping": ("dof_damping",),
              "friction": ("geom_friction",)}

    def __init__(self, env: gym.Env, quantity: str, scale: float) -> None:
        super().__init__(env)
        if quantity not in self.FIELDS:
            raise ValueError(f"unknown physics quantity {quantity!r}; one of {list(self.FIELDS)}")
        if not scale > 0 or not np.isfinite(scale):
            raise ValueError(f"{quantity} scale must be a finite number > 0, got {scale}")
        self.quantity, self.scale = quantity, float(scale)
        self._model = mujoco_model(env)
        self._nominal = {f: getattr(self._model, f).copy() for f in self.FIELDS[quantity]}
        self._apply()

    def _apply(self) -> None:
        for field, nominal in self._nominal.items():
            getattr(self._model, field)[:] = nominal * self.scale

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._apply()
        return self.env.reset(seed=seed, options=options)


@dataclass(frozen=True)
class PerturbationSpec:
    """One named perturbation and its parameter, e.g. ``PerturbationSpec("mass", 2.0)``."""

    name: str
    """A key of ``PERTURBATIONS``."""
    value: float
    """Scale factor (physics), noise std, or delay in steps."""

    def __post_init__(self) -> None:
        if self.name not in PERTURBATIONS:
            raise ValueError(
                f"unknown perturbation {self.name!r}; known: {', '.join(sorted(PERTURBATIONS))}"
            )


def _physics(quantity: str):
    return lambda env, value, seed: PhysicsScale(env, quantity, value)


PERTURBATIONS = {
    "obs_noise": lambda env, value, seed: ObservationNoise(env, value, seed=seed),
    "act_noise": lambda env, value, seed: ActionNoise(env, value, seed=seed),
    "delay": lambda env, value, seed: ActionDelay(env, value),
    "mass": _physics("mass"),
    "damping": _physics("damping"),
    "friction": _physics("friction"),
}
"""Perturbation name -> ``factory(env, value, seed) -> wrapped env``."""


def parse_perturbations(
    spec: str | Mapping[str, float] | list[PerturbationSpec] | None,
) -> list[PerturbationSpec]:
    """Reads ``"mass=2,obs_noise=0.05"``, ``{"mass": 2}`` or a list of specs.

    Raises:
        ValueError: an unknown name, a missing ``=``, or a value that is not a number.
    """
    if spec is None or spec == "":
        return []
    if isinstance(spec, list):
        return list(spec)
    if isinstance(spec, Mapping):
        items = list(spec.items())
    else:
        items = []
        for part in str(spec).split(","):
            name, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"perturbation {part!r} must look like name=value, e.g. mass=2")
            items.append((name.strip(), value.strip()))
    parsed = []
    for name, value in items:
        try:
            number = float(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"perturbation {name}={value!r}: value must be a number") from e
        parsed.append(PerturbationSpec(name, number))
    return parsed


def apply_perturbations(
    env: gym.Env, spec: str | Mapping[str, float] | list[PerturbationSpec] | None, seed: int = 0
) -> gym.Env:
    """Wraps ``env`` in each perturbation of ``spec``, in the order given."""
    for index, item in enumerate(parse_perturbations(spec)):
        env = PERTURBATIONS[item.name](env, item.value, seed + index)
    return env
