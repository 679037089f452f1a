"""Environments for rlprune: DMC and Gymnasium behind one ``make_env``, with perturbations."""

from envs import headless  # noqa: F401  (first: before MuJoCo is imported)
from envs.dmc import DMCEnv, dmc_task_names
from envs.perturb import (
    PERTURBATIONS,
    ActionDelay,
    ActionNoise,
    ObservationNoise,
    PerturbationSpec,
    PhysicsScale,
    apply_perturbations,
    mujoco_model,
    parse_perturbations,
)
from envs.registry import (
    ActionRepeat,
    current_spec,
    episode_length,
    make_env,
    make_vector_env,
    resolve_spec,
)
from envs.rollout import EpisodeBatch, run_episodes

__all__ = [
    "PERTURBATIONS",
    "ActionDelay",
    "ActionNoise",
    "ActionRepeat",
    "DMCEnv",
    "EpisodeBatch",
    "ObservationNoise",
    "PerturbationSpec",
    "PhysicsScale",
    "apply_perturbations",
    "current_spec",
    "dmc_task_names",
    "episode_length",
    "make_env",
    "make_vector_env",
    "mujoco_model",
    "parse_perturbations",
    "resolve_spec",
    "run_episodes",
]
