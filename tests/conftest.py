"""Shared fixtures and builders: small real agents, rollouts with fixed action sequences."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

# Headless machines have no display: render through EGL unless the user chose a backend.
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from rlprune import ClosedLoopEvaluator  # noqa: E402
from rlprune.adapters import ModuleAdapter, TDMPC2Adapter  # noqa: E402
from tdmpc2 import ModelConfig, PlannerConfig, TDMPC2Agent  # noqa: E402

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


def linear_policy(obs_dim: int = 5, action_dim: int = 1, seed: int = 0) -> ModuleAdapter:
    """A random tanh MLP policy acting in Box spaces (cartpole's, by default)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(obs_dim, 16), nn.Tanh(), nn.Linear(16, action_dim), nn.Tanh())
    return ModuleAdapter(net, torch.zeros(1, obs_dim), policy="model",
                         observation_space=gym.spaces.Box(-np.inf, np.inf, (obs_dim,)),
                         action_space=gym.spaces.Box(-1, 1, (action_dim,)))


def small_tdmpc2(cfg: ModelConfig | None = None, noise: float = 0.1) -> TDMPC2Adapter:
    """A random TD-MPC2 agent for cartpole's spaces with a cheap planner; ``noise`` spreads
    its weights like a trained agent's (no zero heads)."""
    cfg = cfg or ModelConfig(obs_dim=5, action_dim=1, latent_dim=16, mlp_dim=32, enc_dim=32)
    planner = PlannerConfig(iterations=2, num_samples=32, num_elites=4, num_pi_trajs=4)
    torch.manual_seed(0)
    agent = TDMPC2Agent(cfg, planner, seed=0)
    with torch.no_grad():
        for p in agent.model.parameters():
            p.add_(noise * torch.randn_like(p))
    return TDMPC2Adapter(agent)


def batched_and_singles(agent, env: str = "dmc/cartpole-swingup", seed: int = 7,
                        **options):
    """Three episodes in one batch, and each of them alone with its own seed."""
    def evaluator(episodes: int, first: int) -> ClosedLoopEvaluator:
        return ClosedLoopEvaluator(env, episodes=episodes, seed=first, **options)

    return evaluator(3, seed).evaluate(agent), [evaluator(1, seed + i).evaluate(agent)
                                                for i in range(3)]


def load_script(name: str):
    """A module of ``scripts/`` (not a package), imported from its file."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
