"""ONNX export agrees with PyTorch, and SB3 policies with model.predict."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

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
                                        *(f"Q{i}" for i in range(5))}
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
