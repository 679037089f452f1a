"""A plain PyTorch actor (CleanRL-style) as an agent: spaces, task, acting, pruning."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from rlprune import ClosedLoopEvaluator, load_agent, prune_physically
from rlprune.adapters import ModuleAdapter
from rlprune.adapters.vecnormalize import ObservationNormalizer
from rlprune.analysis.evaluate import StateRecorder, agent_task
from rlprune.search import ReturnObjective, search


def plain_actor_of_shipped_sac() -> tuple[ModuleAdapter, object]:
    """The shipped SAC HalfCheetah actor rebuilt as a bare nn.Sequential (what a user
    who trained with CleanRL holds), beside the SB3 agent it came from."""
    sb3 = load_agent("sac-halfcheetah")
    actor = sb3.model.policy.actor
    net = nn.Sequential(copy.deepcopy(actor.latent_pi), copy.deepcopy(actor.mu), nn.Tanh())
    plain = ModuleAdapter(net, torch.zeros(1, 17), policy="model",
                          observation_space=sb3.observation_space,
                          action_space=sb3.action_space, task="HalfCheetah-v5")
    return plain, sb3


def test_plain_actor_returns_equal_the_sb3_agent_it_was_taken_from():
    plain, sb3 = plain_actor_of_shipped_sac()
    spec, repeat = agent_task(plain)
    assert (spec, repeat) == ("HalfCheetah-v5", 1)
    recorder = StateRecorder()
    evaluator = ClosedLoopEvaluator(spec, episodes=2, seed=3, max_episode_steps=30)
    theirs = evaluator.evaluate(sb3, recorder)
    observations, _ = recorder.arrays()
    # SB3 rescales tanh's output to the box in float32 numpy (-1 + 0.5 * (a + 1) * 2),
    # which rounds: equal to float precision, not bit for bit, so returns drift over
    # chaotic contact-rich episodes; over 30 steps they agree to about 1e-3.
    np.testing.assert_allclose(plain.act(observations), sb3.act(observations), atol=1e-6)
    ours = evaluator.evaluate(plain)
    np.testing.assert_allclose(ours.returns, theirs.returns, rtol=2e-3)
    assert ours.env_steps == int(ours.lengths.sum()) == 60


def test_plain_actor_prunes_and_still_acts_in_its_env():
    plain, _ = plain_actor_of_shipped_sac()
    objective = ReturnObjective.for_agent(plain, episodes=1, seed=0, max_episode_steps=100)
    result = search(plain, objective, 0.5, 0.02, method="magnitude", progress=False)
    assert abs(result.plan.sparsity - 0.5) <= 0.02
    pruned = prune_physically(plain, result.plan)
    dense_params = sum(p.numel() for p in plain.modules["model"].parameters())
    pruned_params = sum(p.numel() for p in pruned.modules["model"].parameters())
    assert pruned_params < 0.6 * dense_params
    score = objective(pruned)
    assert np.isfinite(score.value)
    assert pruned.describe()["task"] == "HalfCheetah-v5"
    obs = np.random.default_rng(0).normal(size=(5, 17)).astype(np.float32)
    actions = pruned.act(obs)
    assert actions.shape == (5, 6) and np.all(np.abs(actions) <= 1.0)


def test_discrete_policy_acts_by_argmax_of_its_logits():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    agent = ModuleAdapter(net, torch.zeros(1, 4), policy="model",
                          observation_space=gym.spaces.Box(-np.inf, np.inf, (4,)),
                          action_space=gym.spaces.Discrete(2), task="CartPole-v1")
    obs = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    expected = net(torch.as_tensor(obs)).argmax(-1).numpy()
    np.testing.assert_array_equal(agent.act(obs), expected)
    result = ClosedLoopEvaluator("CartPole-v1", episodes=2, seed=0).evaluate(agent)
    assert not result.any_failed and result.env_steps == int(result.lengths.sum()) > 0


def test_observation_normaliser_is_applied_when_acting_and_in_the_exported_policy():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
    rng = np.random.default_rng(0)
    mean, var = rng.normal(size=3), rng.uniform(0.5, 4.0, size=3)
    agent = ModuleAdapter(net, torch.zeros(1, 3), policy="model",
                          observation_space=gym.spaces.Box(-np.inf, np.inf, (3,)),
                          action_space=gym.spaces.Box(-2.0, 2.0, (1,)), task="Pendulum-v1",
                          normalizer=ObservationNormalizer.from_stats(mean, var))
    obs = rng.normal(size=(8, 3)).astype(np.float32) * 5
    scaled = np.clip((obs - mean) / np.sqrt(var + 1e-8), -10, 10).astype(np.float32)
    expected = np.clip(net(torch.as_tensor(scaled)).detach().numpy(), -2, 2)
    np.testing.assert_allclose(agent.act(obs), expected, atol=1e-6)
    policy, _ = agent.export_graphs()["policy"]
    np.testing.assert_allclose(policy(torch.as_tensor(obs)).detach().numpy(),
                               net(torch.as_tensor(scaled)).detach().numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="one shape"):
        ObservationNormalizer.from_stats(mean, var[:2])


@pytest.mark.parametrize("options, match", [
    ({"observation_space": gym.spaces.Box(-1, 1, (4,))}, "together"),
    ({"observation_space": gym.spaces.Box(-1, 1, (4,)),
      "action_space": gym.spaces.MultiBinary(2), "policy": "model"}, "Box or Discrete"),
])
def test_acting_module_needs_consistent_options(options, match):
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises((ValueError, TypeError), match=match):
        ModuleAdapter(net, torch.zeros(1, 4), **options)
