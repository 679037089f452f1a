"""Planner budgets as part of a time target: which budgets are screened, the adapter's
cheaper copies, and a speed-up prune of the shipped cartpole agent that picks one. (What
the budgets buy in return is measured in README "Prune to a deadline".)"""

from __future__ import annotations

import json
import statistics

import pytest
from typer.testing import CliRunner

import rlprune
from rlprune.cli import app
from rlprune.planner_budget import BUDGETS_FILE, budget_options
from rlprune.pruning.ranking import Measure
from rlprune.search import baseline_plan
from rlprune.settings import Target
from rlprune.step_timing import StepTiming
from rlprune.timing import Timing

runner = CliRunner()


def test_screened_budgets_are_the_richest_that_meet_the_deadline_and_the_next_richer():
    timing = StepTiming(1, Timing([0.100]), None)  # dense step: 100 ms
    seconds = {(4, 256): 0.100, (3, 256): 0.078, (2, 256): 0.052, (1, 256): 0.028,
               (4, 128): 0.056, (3, 128): 0.045, (2, 128): 0.031, (1, 128): 0.018,
               (4, 64): 0.030, (3, 64): 0.024, (2, 64): 0.017, (1, 64): 0.010,
               (0, 256): 0.0003}
    options = {(o.iterations, o.samples): o.network_saving
               for o in budget_options((4, 256), seconds, timing, Target.speedup(2, 0.02))}
    # 50 ms is the deadline; within the tolerance a budget alone may take 52 ms
    assert options == {(4, 256): pytest.approx(0.5), (3, 256): pytest.approx(1 - 50 / 78),
                       (2, 256): 0.0, (4, 128): pytest.approx(1 - 50 / 56), (3, 128): 0.0,
                       (4, 64): 0.0, (0, 256): 0.0}
    # where no budget of a sample count meets it alone, its cheapest one is cut too
    slow = {**seconds, (1, 64): 0.060, (2, 64): 0.070, (3, 64): 0.080, (4, 64): 0.090,
            (0, 256): 0.060}
    options = {(o.iterations, o.samples)
               for o in budget_options((4, 256), slow, timing, Target.speedup(2, 0.02))}
    assert (1, 64) in options and (0, 256) not in options


def test_a_cheaper_planner_is_a_copy_that_saves_its_budget(tmp_path):
    dense = rlprune.load_agent("cartpole-swingup")
    assert dense.planner_budget() == (4, 256)
    cheap = dense.with_planner_budget(2, 64)
    assert cheap.planner_budget() == (2, 64) and dense.planner_budget() == (4, 256)
    assert cheap.agent.planner_cfg.num_elites == 8  # TD-MPC2's 1/8 of the samples
    cheap.save(tmp_path / "cheap.pt")
    assert rlprune.load_agent(str(tmp_path / "cheap.pt")).planner_budget() == (2, 64)
    with pytest.raises(ValueError, match="num_pi_trajs"):  # 24 policy proposals
        dense.with_planner_budget(2, 16)


def test_a_speedup_prune_screens_budgets_and_saves_the_best(tmp_path):
    out = tmp_path / "run"
    args = ["prune", "cartpole-swingup", "--out", str(out), "--speedup", "2", "--tol", "0.05",
            "--method", "magnitude", "--episodes", "1", "--max-episode-steps", "30",
            "--eval-episodes", "0", "--quiet", "--json"]
    run = runner.invoke(app, args)
    assert run.exit_code == 0, run.output
    report = json.loads((out / "report.json").read_text())
    budgets = report["planner_budget"]
    options = {(o["iterations"], o["samples"]): o for o in budgets["options"]}
    assert budgets["own"] == {"iterations": 4, "samples": 256}
    # the own budget with its networks cut (where the timings this busy machine took allow
    # a cut that large), and budgets that meet the deadline alone: the policy prior at least
    assert options.get((4, 256), {"network_saving": 0.5})["network_saving"] == 0.5
    assert options[(0, 256)]["network_saving"] == 0
    best = max(o["metric"] for o in options.values())
    chosen = budgets["chosen"]
    assert chosen["metric"] == best and json.loads(run.output)["planner_budget"] == chosen
    pruned = rlprune.load_agent(str(out / "pruned.pt"))
    assert pruned.planner_budget() == (chosen["iterations"], chosen["samples"])
    plan = report["result"]["plan"]
    if chosen["network_saving"] == 0:  # nothing left to cut
        assert plan["params"] == plan["dense_params"]
    else:
        assert abs(plan["achieved"] - chosen["network_saving"]) <= 0.05
    # the predicted speed-up is the budget's measured one times the cut's predicted one
    dense_ms = json.loads((out / "latency.json").read_text())["dense_seconds"]
    assert report["latency"]["predicted_speedup"] == pytest.approx(
        1e3 * statistics.median(dense_ms) / chosen["step_ms"] / (1 - plan["achieved"]))
    # a second run resumes: the same options and scores, nothing played again
    screened = (out / BUDGETS_FILE).read_text()
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert (out / BUDGETS_FILE).read_text() == screened
    assert json.loads((out / "report.json").read_text())["planner_budget"] == budgets
    other = runner.invoke(app, [*args[:-2], "--episodes", "2"])
    assert other.exit_code == 2 and "planner-budget screening with other settings" in \
        other.output
    # options played side by side on a process pool score as they do here
    pool = tmp_path / "pool"
    run = runner.invoke(app, [*args, "--out", str(pool), "--executor", "process",
                              "--workers", "2"])
    assert run.exit_code == 0, run.output
    pooled = {(o["iterations"], o["samples"]): o for o in json.loads(
        (pool / BUDGETS_FILE).read_text())["options"]}
    assert pooled[(0, 256)]["metric"] == options[(0, 256)]["metric"]


def test_a_target_of_nothing_removes_nothing_even_where_small_cuts_time_slower():
    # Measured layer tables are not monotone: a few channels off can predict a slower step
    agent = rlprune.load_agent("cartpole-swingup")
    grouper = rlprune.ComponentGrouper(agent)
    def bumpy(removed):
        cut = sum(removed.values())
        return 0.0 if not cut else 0.01 if cut % 2 else -0.01

    plan = baseline_plan(grouper, "magnitude", 0.0, 0.03, measure=Measure("latency", bumpy))
    assert not any(plan.removed.values()) and plan.achieved == 0.0
