"""Latent stability metrics: exact on a linear system, zero drift against itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rlprune
from rlprune.analysis.evaluate import StateRecorder
from rlprune.analysis.stability import action_deviation, latent_stability
from rlprune.search import baseline_plan, importance_scores
from tests.conftest import linear_policy, small_tdmpc2


class LinearLatentAgent:
    """z' = A z + B a with a = K z: the closed-loop Jacobian is A + B K everywhere."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, k: torch.Tensor) -> None:
        self.a, self.b, self.k = a, b, k
        self.meta = {}

    def latent(self, obs) -> torch.Tensor:
        return torch.as_tensor(np.asarray(obs), dtype=torch.float32)

    def latent_step(self, z, action):
        return z @ self.a.T + action @ self.b.T

    def policy_mean(self, z):
        return z @ self.k.T


def test_spectral_radius_and_lyapunov_on_a_linear_closed_loop():
    torch.manual_seed(0)
    a = torch.diag(torch.tensor([0.5, 0.9, -0.3]))
    b = torch.tensor([[1.0], [0.0], [0.5]])
    k = torch.tensor([[0.1, -0.2, 0.0]])
    stable = LinearLatentAgent(a, b, k)
    expected = np.abs(np.linalg.eigvals((a + b @ k).numpy())).max()
    obs = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    report = latent_stability(stable, stable, [(obs, np.zeros((20, 1), np.float32))],
                              max_samples=10)
    assert report.spectral_radius_dense["max"] == pytest.approx(expected, rel=1e-5)
    assert report.encoder_drift == 0 and report.rollout_error == [0.0, 0.0, 0.0]
    # Stable linear loop with V from its own Lyapunov equation: V decreases everywhere
    # except at the equilibrium itself.
    assert report.lyapunov_decrease_dense == 1.0
    unstable = LinearLatentAgent(a * 2.5, b, k)
    report = latent_stability(stable, unstable, [(obs, np.zeros((20, 1), np.float32))],
                              max_samples=10)
    assert report.spectral_radius_pruned["max"] > 1
    assert report.lyapunov_decrease_pruned < 1.0
    assert report.rollout_error[0] > 0 and report.rollout_error[2] > report.rollout_error[0]


def test_pruned_world_model_drifts_from_dense_on_closed_loop_states():
    agent = small_tdmpc2()
    recorder = StateRecorder()
    rlprune.ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=2, seed=0, action_repeat=2,
                                max_episode_steps=40).evaluate(agent, recorder)
    trajectories = recorder.trajectories()
    assert [len(o) for o, _ in trajectories] == [20, 20]
    same = latent_stability(agent, agent, trajectories, max_samples=16)
    assert same.encoder_drift == 0 and max(same.rollout_error) == 0
    plan = baseline_plan(rlprune.ComponentGrouper(agent), "random", 0.5, 0.05)
    pruned = rlprune.prune_physically(agent, plan)
    report = latent_stability(agent, pruned, trajectories, max_samples=16)
    assert report.encoder_drift > 0 and min(report.rollout_error) > 0
    assert report.spectral_radius_dense == same.spectral_radius_dense
    assert 0.0 <= report.lyapunov_decrease_pruned <= 1.0

    # Pruning the latent itself: compared on the latent dimensions the pruned agent kept.
    grouper = rlprune.ComponentGrouper(agent, interfaces=["latent"])
    ranking = rlprune.ChannelRanking(grouper, importance_scores(grouper, "l2"))
    plan = ranking.plan(rlprune.Coefficients.from_dict(
        [g.id for g in grouper.groups], {"interface/latent": 0.01}), 0.3, 0.05)
    narrow = rlprune.prune_physically(agent, plan)
    assert narrow.latent_width == 8  # one of the two SimNorm blocks is left
    report = latent_stability(agent, narrow, trajectories, max_samples=16)
    assert report.encoder_drift > 0 and np.isfinite(report.rollout_error).all()
    assert report.spectral_radius_dense == same.spectral_radius_dense
    assert 0.0 <= report.lyapunov_decrease_pruned <= 1.0


def test_action_deviation_for_agents_without_latent():
    dense, other = linear_policy(seed=0), linear_policy(seed=1)
    obs = np.random.default_rng(0).normal(size=(10, 5)).astype(np.float32)
    assert action_deviation(dense, dense, obs).max_abs == 0
    assert action_deviation(dense, other, obs).rmse > 0


def test_planner_loop_radius_matches_the_exact_jacobian_without_planning():
    """With 0 MPPI iterations the planner acts with the policy prior's mean: the radius
    estimated by finite differences through ``planner_action`` equals autograd's."""
    from rlprune.analysis.stability import _spectral_radii, planner_radii
    from tdmpc2.config import PlannerConfig

    agent = small_tdmpc2()
    agent.agent.set_planner(PlannerConfig(iterations=0))
    obs = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    latents = agent.latent(obs)
    exact = _spectral_radii(agent, latents)
    estimated = planner_radii(agent, latents, seed=3, krylov=16)  # the latent's width
    np.testing.assert_allclose(estimated, exact, rtol=1e-3)


def test_planner_loop_radius_is_seeded_and_leaves_the_planner_as_it_was():
    from rlprune.analysis.stability import planner_radii

    agent = small_tdmpc2()
    evaluator = rlprune.ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=2, seed=0,
                                            action_repeat=2, max_episode_steps=20)
    before = evaluator.evaluate(agent).returns
    latents = agent.latent(np.random.default_rng(1).normal(size=(3, 5)).astype(np.float32))
    first = planner_radii(agent, latents, seed=5, krylov=6)
    assert np.isfinite(first).all() and (first > 0).all()
    np.testing.assert_array_equal(planner_radii(agent, latents, seed=5, krylov=6), first)
    # a plan's random numbers matter: another seed plans (and differentiates) other samples
    assert not np.array_equal(planner_radii(agent, latents, seed=6, krylov=6), first)
    np.testing.assert_array_equal(evaluator.evaluate(agent).returns, before)


def test_stability_report_names_the_acting_loop_of_a_planner():
    from rlprune.analysis.stability import stability_report

    agent = small_tdmpc2()
    recorder = StateRecorder()
    rlprune.ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=2, seed=0, action_repeat=2,
                                max_episode_steps=20).evaluate(agent, recorder)
    report = stability_report(agent, agent.clone(), recorder.trajectories(), planner_samples=3)
    assert "MPPI" in report["loop_planner"] and "pi(z)" in report["loop"]
    assert report["jacobian_radius_max_planner"] == report["jacobian_radius_max_planner_dense"]
