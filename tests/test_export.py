"""ONNX export agrees with PyTorch, and SB3 policies with model.predict."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import torch

import rlprune
from rlprune.export import export_onnx
from rlprune.search import baseline_plan
from tests.conftest import small_tdmpc2
from tests.test_sb3 import sb3_zip  # noqa: F401  (fixture: SAC, TD3, PPO trained here)


def run_onnx(path, x):
    return onnxruntime.InferenceSession(path).run(None, {"input": x})[0]


def test_pruned_tdmpc2_exports_policy_and_every_component(tmp_path):
    agent = small_tdmpc2()
    pruned = rlprune.prune_physically(agent, baseline_plan(
        rlprune.ComponentGrouper(agent), "magnitude", 0.5, 0.05))
    graphs = export_onnx(pruned, tmp_path)
    assert {g.name for g in graphs} == {"policy", "encoder", "dynamics", "reward", "pi",
                                        *(f"Q{i}" for i in range(5)), "mppi_step"}
    assert max(g.max_abs_error for g in graphs) < 1e-4
    policy = next(g for g in graphs if g.name == "policy")
    actions = run_onnx(policy.path, np.zeros((3, 5), np.float32))
    assert actions.shape == (3, 1) and np.all(np.abs(actions) <= 1)


def test_sb3_onnx_policy_matches_predict(sb3_zip, tmp_path):  # noqa: F811
    _, path = sb3_zip
    agent = rlprune.load_agent(path)
    pruned = rlprune.prune_physically(agent, baseline_plan(
        rlprune.ComponentGrouper(agent), "magnitude", 0.5, 0.02))
    (graph,) = export_onnx(pruned, tmp_path)
    obs = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32) * 2
    expected, _ = pruned.model.predict(obs, deterministic=True)
    np.testing.assert_allclose(run_onnx(graph.path, obs), expected, rtol=1e-5, atol=1e-5)


def test_autoencoder_export(tmp_path):
    agent = rlprune.load_agent("checkpoints/digits-autoencoder.pt")
    graphs = export_onnx(agent, tmp_path)
    assert [g.name for g in graphs] == ["autoencoder", "encoder", "decoder"]
    with pytest.raises(ValueError, match="differs from PyTorch"):
        export_onnx(agent, tmp_path, atol=-1.0)


def test_the_exported_mppi_step_plans_with_the_planners_own_random_numbers(tmp_path):
    agent = small_tdmpc2()
    planner = agent.agent.planner
    graphs = {g.name: g for g in export_onnx(agent, tmp_path)}
    session = onnxruntime.InferenceSession(graphs["mppi_step"].path)
    z = agent.latent(np.random.default_rng(1).normal(size=(1, 5)).astype(np.float32))
    planner.reseed(7)
    noise = planner.draw(1)
    uniform = torch.rand(1, generator=planner.generator)
    mean0 = torch.zeros(planner.cfg.horizon, 1, 1)
    action, mean = session.run(None, dict(zip(
        [i.name for i in session.get_inputs()],
        [t.numpy() for t in (z, mean0, noise.pi, noise.samples, noise.terminal, noise.pairs,
                             uniform)])))
    # eager MPPI with the same numbers: the same refined mean, and the action is the first
    # step of the elite the uniform number picks from the elite scores
    with torch.no_grad():
        eager_mean, _, elites, score = planner.refine(z, mean0, noise)
    np.testing.assert_allclose(mean, eager_mean.numpy(), atol=1e-5)
    pick = int(torch.searchsorted(score.cumsum(1)[0], uniform))
    np.testing.assert_allclose(action, elites[0, :, pick].numpy(), atol=1e-5)
    no_planning = rlprune.load_agent("cartpole-swingup", planner="iterations=0")
    assert "mppi_step" not in {g.name for g in export_onnx(no_planning, tmp_path / "prior")}
