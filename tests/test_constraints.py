"""Stability constraints in the search: candidates outside the bounds are rejected before
they play an episode; the others keep their score."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rlprune import ComponentGrouper, prune_physically
from rlprune.cli import app
from rlprune.search import ReturnObjective, baseline_plan
from rlprune.search.constraints import StabilityConstrained, StabilityLimits
from tests.conftest import linear_policy, small_tdmpc2


@pytest.fixture(scope="module")
def world_model():
    dense = small_tdmpc2()
    objective = ReturnObjective.for_agent(dense, 1, 0, 20, env="dmc/cartpole-swingup")
    candidate = prune_physically(dense, baseline_plan(ComponentGrouper(dense), "magnitude",
                                                      0.5, 0.05))
    return dense, objective, candidate


def test_a_candidate_within_bounds_keeps_its_score(world_model):
    dense, objective, candidate = world_model
    loose = StabilityConstrained(objective, dense, StabilityLimits(1e9, 1e9))
    assert loose(candidate).value == objective(candidate).value
    assert loose.describe()["constraints"] == {"max_rollout_error": 1e9,
                                               "max_jacobian_radius": 1e9}


def test_a_candidate_outside_is_rejected_without_playing(world_model):
    dense, objective, candidate = world_model
    tight = StabilityConstrained(objective, dense, StabilityLimits(max_jacobian_radius=1e-6))
    score = tight(candidate)
    assert score.value == float("-inf") and score.env_steps == 0
    assert score.details["rejected"]["max_jacobian_radius"] > 1e-6


def test_bounds_are_checked_and_need_a_world_model():
    with pytest.raises(ValueError, match="max_rollout_error must be > 0"):
        StabilityLimits(max_rollout_error=0)
    policy = linear_policy()
    objective = ReturnObjective.for_agent(policy, 1, 0, 5, env="dmc/cartpole-swingup")
    with pytest.raises(ValueError, match="no latent space"):
        StabilityConstrained(objective, policy, StabilityLimits(max_jacobian_radius=2.0))


def test_prune_records_its_constraints_and_rejections(tmp_path):
    small_tdmpc2().save(tmp_path / "agent.pt")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "prune", str(tmp_path / "agent.pt"), "--out", str(out), "--sparsity", "0.3",
        "--method", "cmaes", "--budget", "3", "--episodes", "1", "--max-episode-steps", "10",
        "--env", "dmc/cartpole-swingup", "--eval-episodes", "0", "--max-jacobian-radius",
        "1e-6", "--quiet"])
    assert result.exit_code == 0, result.output
    state = json.loads((out / "search_state.json").read_text())
    assert state["objective"]["constraints"] == {"max_jacobian_radius": 1e-6}
    rejected = [r for r in state["history"] if "rejected" in r["details"]]
    assert rejected and all(r["env_steps"] == 0 and r["metric"] == float("-inf")
                            and r["details"]["rejected"]["max_jacobian_radius"] > 1e-6
                            for r in rejected)


def test_the_loop_a_planner_acts_in_can_be_bounded(world_model):
    dense, objective, candidate = world_model
    tight = StabilityConstrained(objective, dense, StabilityLimits(max_planner_radius=1e-6))
    score = tight(candidate)
    assert score.value == float("-inf") and score.env_steps == 0
    assert list(score.details["rejected"]) == ["max_planner_radius"]
    assert score.details["rejected"]["max_planner_radius"] > 1e-6
    loose = StabilityConstrained(objective, dense, StabilityLimits(max_planner_radius=1e9))
    assert loose(candidate).value == objective(candidate).value
    with pytest.raises(ValueError, match="max_planner_radius must be > 0"):
        StabilityLimits(max_planner_radius=-1.0)
