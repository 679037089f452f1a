"""Cost per control step: FLOPs counted against torch's FLOP counter while the agent acts,
the latency model's shapes against a physically pruned agent, step timing, and latency
targets through the CLI. (How close predictions come to measured times is a benchmark:
scripts/bench_latency.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

import rlprune
from rlprune.analysis.latency import measure_step
from rlprune.cli import app
from rlprune.latency_report import width_staircase
from rlprune.pruning.accounting import CostModel
from rlprune.pruning.latency import LatencyModel, LayerTimes
from rlprune.search import baseline_plan
from rlprune.settings import Target
from tdmpc2 import ModelConfig
from tests.conftest import small_tdmpc2

runner = CliRunner()


@pytest.mark.parametrize("name", ["small-tdmpc2", "sac-halfcheetah"])
def test_flops_per_step_equal_what_torch_counts_while_acting(name):
    agent = small_tdmpc2() if name == "small-tdmpc2" else rlprune.load_agent(name)
    envs = 4  # no padding rows
    obs = np.random.default_rng(0).normal(size=(envs, *agent.observation_space.shape))
    agent.reset(0)
    with FlopCounterMode(display=False) as counter:
        agent.act(obs.astype(np.float32))
    grouper = rlprune.ComponentGrouper(agent, list(agent.step_calls()))
    assert counter.get_total_flops() == envs * CostModel(grouper).dense.step_flops


def test_a_plans_predicted_time_is_the_pruned_agents_own():
    dense = small_tdmpc2()
    grouper = rlprune.ComponentGrouper(dense)
    plan = baseline_plan(grouper, "magnitude", 0.6, 0.02)
    pruned = rlprune.prune_physically(dense, plan)
    times = LayerTimes(threads=1)
    counts = {gid: len(channels) for gid, channels in plan.removed.items()}
    before = LatencyModel(grouper, times).compute(counts)  # predicted from the plan
    after = LatencyModel(rlprune.ComponentGrouper(pruned), times).compute({})  # its layers
    assert before == after
    assert after > 0  # (smaller or not is for the benchmark: tiny layers time as noise)
    assert LayerTimes.from_dict(json.loads(json.dumps(times.to_dict()))).to_dict() \
        == times.to_dict()


def test_step_timing_refuses_what_does_not_act_and_bad_threads():
    with pytest.raises(TypeError, match="does not act"):
        measure_step(rlprune.load_agent("digits-autoencoder"))
    with pytest.raises(ValueError, match="threads must be >= 1"):
        measure_step(small_tdmpc2(), threads=0)
    timing = measure_step(small_tdmpc2(), steps=3)
    assert len(timing.seconds) == 3 and timing.median > 0


def test_speedup_targets_are_fractions_of_step_time():
    assert Target.speedup(2.0).sparsity == 0.5 and Target.speedup(4.0).measure == "latency"
    with pytest.raises(ValueError, match="speed-up must be >= 1"):
        Target.speedup(0.5)


def test_prune_to_a_speedup_reports_measured_and_predicted(tmp_path):
    # Wide enough that compute, not the planner's bookkeeping, is most of a step.
    dense = small_tdmpc2(ModelConfig(obs_dim=5, action_dim=1, latent_dim=32, mlp_dim=256,
                                     enc_dim=64))
    dense.save(tmp_path / "dense.pt")
    out = tmp_path / "run"
    # A run folder keeps its calibration (a resumed run predicts alike). Planting one
    # with no overhead keeps this test off the machine's timing noise.
    out.mkdir()
    (out / "latency.json").write_text(json.dumps({
        "threads": 1, "dense_seconds": [0.01], "overhead": 0.0, "scale": 1.0,
        "table": LayerTimes(1).to_dict()}))
    run = runner.invoke(app, ["prune", str(tmp_path / "dense.pt"), "--out", str(out),
                              "--speedup", "1.25", "--tol", "0.05", "--episodes", "1",
                              "--max-episode-steps", "20", "--env", "dmc/cartpole-swingup",
                              "--eval-episodes", "0", "--no-planner-budgets", "--json"])
    assert run.exit_code == 0, run.output
    report = json.loads((out / "report.json").read_text())
    plan = report["result"]["plan"]
    assert plan["measure"] == "latency" and abs(plan["achieved"] - 0.2) <= 0.05
    assert report["latency"]["predicted_speedup"] == pytest.approx(1 / (1 - plan["achieved"]))
    assert report["latency"]["dense"]["median_ms"] > 0 and report["latency"]["speedup"] > 0
    assert report["settings"]["target"] == {"sparsity": pytest.approx(0.2), "tol": 0.05,
                                            "measure": "latency"}
    kept = json.loads((out / "latency.json").read_text())
    assert kept["overhead"] == 0.0 and kept["table"]["seconds"]  # the table it filled
    flops = runner.invoke(app, ["prune", str(tmp_path / "dense.pt"), "--out",
                                str(tmp_path / "flops"), "--target", "flops=0.5", "--tol",
                                "0.03", "--episodes", "1", "--max-episode-steps", "20",
                                "--env", "dmc/cartpole-swingup", "--eval-episodes", "0"])
    assert flops.exit_code == 0, flops.output
    plan = json.loads((tmp_path / "flops" / "report.json").read_text())["result"]["plan"]
    assert abs(1 - plan["step_flops"] / plan["dense_step_flops"] - 0.5) <= 0.03


def test_latency_command_compares_agents_to_the_first(tmp_path):
    dense = small_tdmpc2()
    plan = baseline_plan(rlprune.ComponentGrouper(dense), "magnitude", 0.6, 0.02)
    rlprune.prune_physically(dense, plan).save(tmp_path / "pruned.pt")
    dense.save(tmp_path / "dense.pt")
    run = runner.invoke(app, ["latency", str(tmp_path / "dense.pt"), str(tmp_path / "pruned.pt"),
                              "--steps", "3", "--json"])
    assert run.exit_code == 0, run.output
    first, second = json.loads(run.output)["rows"]
    assert first["speedup"] == 1.0 and second["predicted_ms"] > 0 and second["p90_ms"] > 0
    assert second["params"] < first["params"] and second["step_mflops"] < first["step_mflops"]


def test_zero_planner_iterations_act_with_the_policy_prior_alone():
    agent = rlprune.load_agent("cartpole-swingup", planner="iterations=0")
    obs = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    prior, example = agent.export_graphs()["policy"]  # encoder + tanh(policy mean)
    with torch.no_grad():
        np.testing.assert_allclose(agent.act(obs), prior(torch.as_tensor(obs)).numpy(),
                                   rtol=1e-6, atol=1e-6)
    with FlopCounterMode(display=False) as counter:
        agent.act(obs)
    grouper = rlprune.ComponentGrouper(agent, list(agent.step_calls()))
    assert set(agent.step_calls()) == {"encoder", "pi"}
    assert counter.get_total_flops() == 4 * CostModel(grouper).dense.step_flops


def test_width_staircase_times_the_costliest_layer_of_the_planner(tmp_path):
    agent = small_tdmpc2()
    agent.save(tmp_path / "agent.pt")
    run = runner.invoke(app, ["latency", str(tmp_path / "agent.pt"), "--widths", "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["component"] == "dynamics"
    staircase = width_staircase(agent)
    assert staircase["component"] == "dynamics"  # MPPI runs it on every sample and step
    assert staircase["rows"] == agent.agent.planner.cfg.num_samples
    widths = [int(w) for w in staircase["widths"]]
    assert widths == list(range(16, 33)) and all(v > 0 for v in staircase["widths"].values())
    assert [m["round_to"] for m in staircase["multiples"]] == [2, 4, 8, 16, 32, 64]
    assert staircase["suggested_round_to"] in (1, 2, 4, 8, 16, 32, 64)
