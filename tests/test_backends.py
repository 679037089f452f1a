"""Backends: the acting networks of a copy run compiled, in bfloat16 or in ONNX Runtime,
and the controller around them acts unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import rlprune
from rlprune import backends
from rlprune.backends import BACKENDS, BackendUnavailable, on_backend
from rlprune.cli import app
from rlprune.pruning.latency import LayerTimes
from tdmpc2 import ModelConfig
from tests.conftest import small_tdmpc2


def network_outputs(agent, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    inputs = {name: torch.randn(16, *c.example_input.shape[1:], generator=generator)
              for name, c in agent.components().items()}
    with torch.no_grad():
        return {name: net(inputs[name]) for name, net in agent.acting_networks().items()}


@pytest.mark.parametrize("name, atol", [("onnxruntime", 1e-4), ("bf16", 0.1)])
def test_networks_on_a_backend_compute_what_eager_does(name, atol):
    if BACKENDS[name].missing():
        pytest.skip(BACKENDS[name].missing())
    dense = small_tdmpc2()
    moved = on_backend(dense, name)
    eager, other = network_outputs(dense), network_outputs(moved)
    assert set(other) == set(dense.agent.model.components())  # every network MPPI runs
    for network in eager:
        assert other[network].dtype == torch.float32
        torch.testing.assert_close(other[network], eager[network], atol=atol, rtol=0.05)
    if name == "bf16":  # it really runs in bfloat16
        assert any(not torch.equal(other[n], eager[n]) for n in eager)
        assert next(moved.agent.model.encoder.parameters()).dtype == torch.bfloat16
    obs = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    moved.reset(3)
    first = moved.act(obs)
    moved.reset(3)
    assert np.isfinite(first).all() and np.array_equal(moved.act(obs), first)  # seeded
    assert next(dense.agent.model.encoder.parameters()).dtype == torch.float32  # a copy


def test_backends_refuse_what_they_cannot_run(monkeypatch):
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        on_backend(small_tdmpc2(), "tpu")
    with pytest.raises(ValueError, match="acts through code rlprune does not run"):
        on_backend(rlprune.load_agent("sac-halfcheetah"), "onnxruntime")
    monkeypatch.setattr(backends.shutil, "which", lambda name: None)
    with pytest.raises(BackendUnavailable, match="needs a C\\+\\+ compiler"):
        on_backend(small_tdmpc2(), "compile")
    agent = rlprune.load_agent("sac-halfcheetah")
    assert on_backend(agent, "eager") is agent  # eager times any agent


@pytest.mark.slow
def test_a_compiled_planner_acts_like_the_eager_one():
    dense = small_tdmpc2()
    compiled = on_backend(dense, "compile")
    for network, output in network_outputs(compiled).items():
        torch.testing.assert_close(output, network_outputs(dense)[network], atol=1e-4,
                                   rtol=1e-4)


def test_latency_command_times_each_backend(tmp_path):
    small_tdmpc2().save(tmp_path / "agent.pt")
    run = CliRunner().invoke(app, ["latency", str(tmp_path / "agent.pt"), "--backend",
                                   "eager,onnxruntime", "--steps", "3", "--json"])
    assert run.exit_code == 0, run.output
    rows = json.loads(run.output)["rows"]
    assert [r["backend"] for r in rows] == ["eager", "onnxruntime"]
    assert rows[0]["speedup"] == 1.0 and all(r["median_ms"] > 0 for r in rows)


def test_layer_times_are_measured_on_their_backend():
    times = LayerTimes(1, backend="onnxruntime")
    assert times.linear(64, 64, 256) > 0
    again = LayerTimes.from_dict(json.loads(json.dumps(times.to_dict())))
    assert again.backend.name == "onnxruntime" and again.to_dict() == times.to_dict()
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        LayerTimes(1, backend="tpu")


def test_prune_times_and_predicts_a_speedup_on_the_backend_it_names(tmp_path):
    # Layers wide enough that their compute, not onnxruntime's fixed cost per call, sets
    # their time: a 32-wide layer costs what a 1-wide one does there, and the target would
    # be out of reach on a quiet machine
    small_tdmpc2(ModelConfig(obs_dim=5, action_dim=1, latent_dim=16, mlp_dim=512,
                             enc_dim=512)).save(tmp_path / "agent.pt")
    out = tmp_path / "run"
    # A calibration with no overhead planted on this backend keeps the target reachable
    # whatever this machine's timing noise (the layer table fills on onnxruntime)
    out.mkdir()
    (out / "latency.json").write_text(json.dumps({
        "threads": 1, "backend": "onnxruntime", "dense_seconds": [0.01], "overhead": 0.0,
        "scale": 1.0, "table": LayerTimes(1, backend="onnxruntime").to_dict()}))
    run = CliRunner().invoke(app, [
        "prune", str(tmp_path / "agent.pt"), "--out", str(out), "--speedup", "1.2", "--tol",
        "0.1", "--backend", "onnxruntime", "--no-planner-budgets", "--episodes", "1",
        "--max-episode-steps", "10", "--env", "dmc/cartpole-swingup", "--eval-episodes", "0"])
    assert run.exit_code == 0, run.output
    report = json.loads((out / "report.json").read_text())
    assert report["latency"]["backend"] == "onnxruntime" and report["latency"]["speedup"] > 0
    assert report["settings"]["backend"] == "onnxruntime"
    kept = json.loads((out / "latency.json").read_text())
    assert kept["backend"] == kept["table"]["backend"] == "onnxruntime"
    assert "onnxruntime" in run.output


def test_a_planner_on_a_whole_step_backend_plans_from_the_same_random_numbers():
    dense = small_tdmpc2()
    whole = on_backend(dense, "onnxruntime-step")
    obs = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    for agent in (dense, whole):
        agent.reset(5)
        action = agent.act(obs)
        assert action.shape == (3, 1) and np.all(np.abs(action) <= 1)
    # the same draws refine to the same mean; only the final pick draws its number otherwise
    torch.testing.assert_close(whole.agent.planner._prev_mean, dense.agent.planner._prev_mean,
                               atol=1e-5, rtol=1e-5)
    assert dense.agent.planner.graph is None  # the copy was changed, not the agent
    with pytest.raises(ValueError, match="does not plan"):
        on_backend(rlprune.load_agent("sac-halfcheetah"), "onnxruntime-step")
