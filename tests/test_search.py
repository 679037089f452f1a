"""Coefficient search under one harness: baselines, grid, CMA-ES, budget, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import envs
import rlprune
from rlprune.models.digits_autoencoder import digits_split
from rlprune.search import (
    Objective,
    PSNRObjective,
    ReturnObjective,
    Score,
    baseline_plan,
    importance_scores,
    search,
)
from rlprune.search.gradient import _rank_agreement
from rlprune.search.harness import SearchHarness
from tests.conftest import linear_policy, small_tdmpc2

SHIPPED_AE = Path(__file__).resolve().parents[1] / "checkpoints" / "digits-autoencoder.pt"


class Counting(Objective):
    """Wraps an objective and counts how often it really runs."""

    def __init__(self, objective: Objective) -> None:
        self.objective, self.calls, self.visits = objective, 0, 0
        self.closed_loop, self.physical = objective.closed_loop, objective.physical
        self.races = objective.races

    def __call__(self, agent, incumbent=None) -> Score:
        self.calls += 1
        return self.objective(agent, incumbent)

    def describe(self) -> dict:
        return self.objective.describe()

    def scored_states(self, agent):
        self.visits += 1
        return self.objective.scored_states(agent)


@pytest.fixture(scope="module")
def autoencoder():
    return rlprune.load_agent(SHIPPED_AE)


@pytest.fixture(scope="module")
def psnr_objective():
    return PSNRObjective(digits_split(0)[1])


def test_baselines_cost_one_evaluation_and_match_their_plans(autoencoder, psnr_objective):
    objective = Counting(psnr_objective)
    result = search(autoencoder, objective, 0.3, 0.02, method="magnitude", progress=False)
    assert objective.calls == 1 and result.evaluations == 1
    plan = baseline_plan(rlprune.ComponentGrouper(autoencoder), "magnitude", 0.3, 0.02)
    assert result.plan.removed == plan.removed
    pruned = rlprune.prune_physically(autoencoder, result.plan)
    assert pruned.psnr(psnr_objective.images) == pytest.approx(result.metric, abs=1e-4)


@pytest.mark.parametrize("method", ["grid", "cmaes", "gradient"])
def test_searches_respect_budget_and_target(autoencoder, psnr_objective, method):
    objective = Counting(psnr_objective)
    result = search(autoencoder, objective, 0.3, 0.02, method=method, budget=12,
                    scope="group", progress=False)
    plans = {h["plan_id"] for h in result.history if h["status"] == "scored"}
    assert objective.calls == len(plans) <= result.evaluations <= 12  # one rollout a plan
    assert abs(result.plan.sparsity - 0.3) <= 0.02


def test_cmaes_is_reproducible_for_a_seed(autoencoder, psnr_objective):
    runs = [search(autoencoder, psnr_objective, 0.5, 0.02, method="cmaes", budget=10,
                   seed=3, scope="group", progress=False) for _ in range(2)]
    assert runs[0].coefficients == runs[1].coefficients and runs[0].metric == runs[1].metric


def test_killed_search_resumes_without_repeating_evaluations(autoencoder, psnr_objective,
                                                             tmp_path):
    first = Counting(psnr_objective)
    search(autoencoder, first, 0.4, 0.02, method="cmaes", budget=6, scope="group",
           run_dir=tmp_path, progress=False)
    assert first.calls == 6 and (tmp_path / "search_state.json").exists()
    second = Counting(psnr_objective)
    resumed = search(autoencoder, second, 0.4, 0.02, method="cmaes", budget=10,
                     scope="group", run_dir=tmp_path, progress=False)
    assert second.calls == 4 and resumed.evaluations == 10
    with pytest.raises(ValueError, match="other settings"):
        search(autoencoder, psnr_objective, 0.5, 0.02, method="cmaes", budget=10,
               scope="group", run_dir=tmp_path, progress=False)
    # another method, or other images to score on, would mix incomparable histories
    with pytest.raises(ValueError, match="method 'cmaes'"):
        search(autoencoder, psnr_objective, 0.4, 0.02, method="grid", budget=10,
               scope="group", run_dir=tmp_path, progress=False)
    other_images = PSNRObjective(psnr_objective.images[:50])
    with pytest.raises(ValueError, match="objective"):
        search(autoencoder, other_images, 0.4, 0.02, method="cmaes", budget=10,
               scope="group", run_dir=tmp_path, progress=False)


def test_infeasible_candidates_are_skipped_before_scoring(autoencoder, psnr_objective):
    objective = Counting(psnr_objective)
    # round_to=64 makes most coefficient settings miss the narrow tolerance.
    with pytest.raises(rlprune.InfeasibleTarget):
        search(autoencoder, objective, 0.37, 0.001, method="grid", budget=5,
               round_to=64, progress=False)
    assert objective.calls == 0


def test_return_objective_search_on_a_world_model():
    agent = small_tdmpc2()
    evaluator = rlprune.ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=2, seed=0,
                                            action_repeat=2, max_episode_steps=30)
    result = search(agent, ReturnObjective(evaluator), 0.3, 0.03, method="grid", budget=4,
                    progress=False)
    plans = {h["plan_id"] for h in result.history if h["status"] == "scored"}
    assert result.evaluations == 4 and result.env_steps == len(plans) * 2 * 30
    assert np.isfinite(result.metric) and abs(result.plan.sparsity - 0.3) <= 0.03


def test_ensemble_heads_share_one_coefficient_per_component_search():
    agent = small_tdmpc2()
    never_scored = Counting(ReturnObjective(rlprune.ClosedLoopEvaluator("dmc/cartpole-swingup")))
    grouper = rlprune.ComponentGrouper(agent)
    ranking = rlprune.ChannelRanking(grouper, importance_scores(grouper, "l2"))
    harness = SearchHarness(agent, grouper, ranking, never_scored, 0.3, 0.03, budget=1,
                            progress=False)
    assert harness.units == ["encoder", "dynamics", "reward", "pi", "Qs"]
    coefficients = harness.coefficients(np.array([1.0, 1.0, 1.0, 1.0, 0.25])).as_dict()
    q_groups = [g.id for g in grouper.groups if g.component.startswith("Q")]
    assert len(q_groups) == 2 * agent.agent.model.cfg.num_q
    assert all(coefficients[g] == 0.25 for g in q_groups)
    assert all(v == 1.0 for g, v in coefficients.items() if g not in q_groups)
    only_q = rlprune.ComponentGrouper(agent, ["Q0", "Q1"])  # one family: per group
    harness = SearchHarness(agent, only_q, rlprune.ChannelRanking(
        only_q, importance_scores(only_q, "l2")), never_scored, 0.3, 0.03, budget=1,
        progress=False)
    assert harness.scope == "group" and len(harness.units) == 4


def test_unknown_method_is_rejected(autoencoder, psnr_objective):
    with pytest.raises(ValueError, match="unknown search method 'bayes'"):
        search(autoencoder, psnr_objective, 0.3, 0.02, method="bayes")


def test_gradient_search_on_a_world_model_counts_surrogate_rollouts(tmp_path):
    agent = small_tdmpc2()
    evaluator = rlprune.ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=2, seed=0,
                                            action_repeat=2, max_episode_steps=30)
    objective = Counting(ReturnObjective(evaluator))
    result = search(agent, objective, 0.4, 0.03, method="gradient", budget=5,
                    run_dir=tmp_path, progress=False)
    # The dense agent's states, then one refresh with a candidate's own episodes: that
    # rollout is the halfway snapshot's evaluation, so 4 more candidates are scored.
    assert result.evaluations == 5 and result.env_steps == 6 * 2 * 30
    assert (objective.visits, objective.calls) == (2, 4)
    assert abs(result.plan.sparsity - 0.4) <= 0.03
    assert all(p.requires_grad for p in agent.components()["pi"].module.parameters())
    again = search(agent, objective, 0.4, 0.03, method="gradient", budget=5,
                   run_dir=tmp_path, progress=False)  # a rerun replays nothing
    assert (objective.visits, objective.calls) == (2, 4)
    assert again.env_steps == result.env_steps and again.metric == result.metric
    refresh = result.history[0]  # scored from its refresh rollout: as the harness would
    grouper = rlprune.ComponentGrouper(agent)
    harness = SearchHarness(agent, grouper, rlprune.ChannelRanking(
        grouper, importance_scores(grouper, "l2")), ReturnObjective(evaluator), 0.4, 0.03,
        budget=1, progress=False)
    assert harness.evaluate(np.array(json.loads(refresh["key"]))) == refresh["metric"]


def test_gradient_search_with_one_evaluation_rolls_out_only_its_final_answer(tmp_path):
    agent = small_tdmpc2()
    evaluator = rlprune.ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=2, seed=0,
                                            action_repeat=2, max_episode_steps=30)
    objective = Counting(ReturnObjective(evaluator))
    lean = search(agent, objective, 0.4, 0.03, method="gradient", budget=1, progress=False)
    assert (objective.visits, objective.calls) == (1, 1)  # no refresh: dense states only
    assert lean.evaluations == 1 and lean.env_steps == 2 * 2 * 30
    assert abs(lean.plan.sparsity - 0.4) <= 0.03


def constant_policy(push: float):
    """A cartpole controller that always pushes with ``push`` (0: leaves the pole be)."""
    policy = linear_policy()
    with torch.no_grad():
        for p in policy.modules["model"].parameters():
            p.zero_()
        policy.modules["model"][2].bias.fill_(float(np.arctanh(push)))
    return policy


def test_racing_stops_a_clearly_worse_candidate_and_plays_out_a_good_one():
    evaluator = rlprune.ClosedLoopEvaluator("dmc/cartpole-balance", episodes=8, seed=0,
                                            max_episode_steps=100)
    racing = ReturnObjective(evaluator, race=True, chunk=2)
    incumbent = ReturnObjective(evaluator)(constant_policy(0.0))
    assert incumbent.complete and len(incumbent.details["returns"]) == 8
    worse = racing(constant_policy(0.9), incumbent)
    assert not worse.complete and worse.value < incumbent.value
    assert worse.env_steps == 2 * 100 and worse.env_steps_saved == 6 * 100
    same = racing(constant_policy(0.0), incumbent)
    assert same.complete and same.value == incumbent.value and same.env_steps == 800
    assert racing(constant_policy(0.9)).complete  # no incumbent yet: every episode


def test_racing_search_keeps_only_fully_measured_candidates_as_best(tmp_path):
    agent = small_tdmpc2()
    evaluator = rlprune.ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=4, seed=0,
                                            action_repeat=2, max_episode_steps=40)
    result = search(agent, ReturnObjective(evaluator, race=True), 0.5, 0.02, method="cmaes",
                    budget=6, scope="group", run_dir=tmp_path, progress=False)
    scored = [h for h in result.history if h["status"] == "scored"]
    best = max((h for h in scored if h["complete"]), key=lambda h: h["metric"])
    assert result.metric == best["metric"]
    assert result.env_steps_saved == sum(h["env_steps_saved"] for h in scored)
    assert result.env_steps == sum(h["env_steps"] for h in scored)
    assert all(h["complete"] == (h["env_steps"] == 4 * 40) for h in scored)


def test_activation_baseline_ranks_channels_by_what_visited_states_use(autoencoder,
                                                                       psnr_objective):
    result = search(autoencoder, psnr_objective, 0.3, 0.02, method="activation",
                    progress=False)
    magnitude = search(autoencoder, psnr_objective, 0.3, 0.02, method="magnitude",
                       progress=False)
    assert result.evaluations == 1 and abs(result.plan.sparsity - 0.3) <= 0.02
    assert result.plan.removed != magnitude.plan.removed


def test_gradient_search_with_a_pruned_latent(tmp_path):
    agent = small_tdmpc2()
    evaluator = rlprune.ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=2, seed=0,
                                            action_repeat=2, max_episode_steps=30)
    result = search(agent, ReturnObjective(evaluator), 0.4, 0.03, method="gradient",
                    budget=3, interfaces=("latent",), progress=False)
    assert "interface/latent" in result.coefficients
    assert abs(result.plan.sparsity - 0.4) <= 0.03


def test_planner_agreement_falls_as_a_shipped_planner_is_pruned_harder():
    agent = rlprune.load_agent("cartpole-swingup")
    env = envs.make_env("dmc/cartpole-swingup")
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    visited = [obs]
    for _ in range(47):  # random pushes: the cart and pole in many states
        obs, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape))
        visited.append(obs)
    obs = np.stack(visited)
    dense = agent.plan_values(obs, 32, seed=3)
    assert dense.shape == (48, 32) and torch.equal(dense, agent.plan_values(obs, 32, seed=3))
    assert _rank_agreement(dense, dense) == pytest.approx(1.0)
    grouper = rlprune.ComponentGrouper(agent)
    agreement = []
    for rho in (0.2, 0.6):
        plan = baseline_plan(grouper, "magnitude", rho, 0.02)
        with rlprune.ChannelMasks(grouper) as masks:
            masks.set_plan(plan)
            agreement.append(_rank_agreement(dense, agent.plan_values(obs, 32, seed=3)))
    assert 1.0 > agreement[0] > agreement[1]


def test_candidates_with_the_same_plan_are_rolled_out_once(tmp_path):
    agent = small_tdmpc2()
    evaluator = rlprune.ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=2,
                                            action_repeat=2, max_episode_steps=20)
    objective = Counting(ReturnObjective(evaluator))
    grouper = rlprune.ComponentGrouper(agent)
    ranking = rlprune.ChannelRanking(grouper, importance_scores(grouper, "l2"))
    harness = SearchHarness(agent, grouper, ranking, objective, 0.3, 0.03, budget=4,
                            progress=False, run_dir=tmp_path)
    ones = np.ones(len(harness.units))
    # Scaling every coefficient alike ranks the channels alike: the same plan three times.
    metrics = harness.evaluate_many([ones, 0.5 * ones, 2.0 * ones])
    assert objective.calls == 1 and metrics[0] == metrics[1] == metrics[2]
    reused = [h for h in harness.history if "same_plan_as" in h]
    assert len(reused) == 2 and all(h["env_steps"] == 0 for h in reused)
    assert harness.evaluations == 3 and harness.env_steps == 2 * 20  # 20 env steps each
    harness.close()
    resumed = SearchHarness(agent, grouper, ranking, objective, 0.3, 0.03, budget=4,
                            progress=False, run_dir=tmp_path)
    resumed.evaluate(3.0 * ones)  # a resumed run knows the plans it scored
    assert objective.calls == 1


class OutputOfA(Objective):
    """Minus the squared error of component ``a``'s output against the dense ``a``; the
    other component does not matter to it (magnitude cannot know that)."""

    def __init__(self, dense, inputs: torch.Tensor) -> None:
        self.inputs = inputs
        with torch.no_grad():
            self.target = dense.modules["a"](inputs)

    def __call__(self, agent, incumbent=None) -> Score:
        with torch.no_grad():
            return Score(-float(((agent.modules["a"](self.inputs) - self.target) ** 2).mean()))

    def describe(self) -> dict:
        return {"metric": "output-of-a"}

    def scored_states(self, agent):
        return self(agent), self.inputs.numpy(), None


@pytest.mark.parametrize("method", ["grid", "cmaes"])
def test_a_search_beats_magnitude_where_magnitude_cuts_what_matters(method):
    torch.manual_seed(0)
    nets = {name: torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(),
                                      torch.nn.Linear(32, 32), torch.nn.ReLU(),
                                      torch.nn.Linear(32, 4)) for name in ("a", "b")}
    agent = rlprune.adapters.ModuleAdapter(nets, {n: torch.zeros(1, 8) for n in nets})
    objective = OutputOfA(agent, torch.randn(256, 8))
    magnitude = search(agent, objective, 0.35, 0.02, method="magnitude", progress=False)
    found = search(agent, objective, 0.35, 0.02, method=method, budget=12,
                   scope="component", progress=False)
    # Magnitude cuts both networks alike; the search learns to cut the one that does
    # not matter, and loses (almost) nothing.
    assert magnitude.plan.component_sparsity()["a"] > 0.2
    assert found.plan.component_sparsity()["a"] < magnitude.plan.component_sparsity()["a"]
    assert found.metric > 0.5 * magnitude.metric  # errors are negative: a smaller error
