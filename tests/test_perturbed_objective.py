"""Robust pruning: candidates scored over a set of perturbed systems, aggregated."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import rlprune
from rlprune.cli import app
from rlprune.search import PerturbedReturnObjective, ReturnObjective, aggregate, objective_for
from rlprune.settings import Evaluation
from tests.conftest import small_tdmpc2


def test_aggregates_of_per_system_returns():
    values = np.array([5.0, 1.0, 3.0, 2.0])
    assert aggregate(values, "mean") == 2.75 and aggregate(values, "worst") == 1.0
    assert aggregate(values, "cvar:0.5") == 1.5  # the worst half
    assert aggregate(values, "cvar:0.1") == 1.0  # at least one system
    for bad in ("median", "cvar:0", "cvar:1.5", "cvar:x"):
        with pytest.raises(ValueError, match="mean, worst or cvar:ALPHA"):
            aggregate(values, bad)


def test_each_system_plays_the_episodes_it_would_alone():
    agent = small_tdmpc2()
    evaluation = Evaluation("dmc/cartpole-swingup", episodes=2, max_episode_steps=20,
                            perturb="mass=0.5:1.5:2", aggregate="worst")
    objective = objective_for(agent, evaluation)
    assert isinstance(objective, PerturbedReturnObjective)
    score = objective(agent)
    alone = [ReturnObjective(rlprune.ClosedLoopEvaluator(
        "dmc/cartpole-swingup", episodes=2, max_episode_steps=20, perturb={"mass": m}))(agent)
        for m in (0.5, 1.5)]
    assert score.details["per_perturbation"] == [s.value for s in alone]
    assert score.value == min(s.value for s in alone)
    assert score.env_steps == sum(s.env_steps for s in alone)
    assert [p["perturb"] for p in objective.describe()["perturbations"]] == \
        [{"mass": 0.5}, {"mass": 1.5}]
    with pytest.raises(ValueError, match="needs a perturbation set"):
        Evaluation(aggregate="worst")


def test_prune_scores_candidates_and_the_check_on_the_perturbation_set(tmp_path):
    small_tdmpc2().save(tmp_path / "agent.pt")
    run = CliRunner().invoke(app, [
        "prune", str(tmp_path / "agent.pt"), "--out", str(tmp_path / "run"), "--sparsity",
        "0.3", "--method", "grid", "--budget", "2", "--episodes", "1", "--max-episode-steps",
        "10", "--env", "dmc/cartpole-swingup", "--perturb", "mass=0.5:1.5:2", "--aggregate",
        "cvar:0.5", "--eval-episodes", "1", "--eval-max-episode-steps", "10", "--json"])
    assert run.exit_code == 0, run.output
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    searched = json.loads((tmp_path / "run" / "search_state.json").read_text())["objective"]
    assert searched["aggregate"] == "cvar:0.5" and len(searched["perturbations"]) == 2
    assert report["held_out"]["objective"]["aggregate"] == "cvar:0.5"
    # the check plays a system the search never did (the grid's midpoint), and the report
    # shows dense and pruned there
    assert [p["perturb"] for p in report["held_out"]["objective"]["perturbations"]] == \
        [{"mass": 1.0}]
    assert len(report["held_out"]["pruned"]["per_perturbation"]) == 1
    assert "Robustness envelope" in (tmp_path / "run" / "report.md").read_text()
    assert report["settings"]["evaluation"]["perturb"] == "mass=0.5:1.5:2"
