"""The agents shipped in checkpoints/: small, weights-only, prunable, and as the card says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import rlprune
from rlprune.search import baseline_plan, importance_scores

CHECKPOINTS = [p for p in sorted((Path(__file__).resolve().parents[1] / "checkpoints").iterdir())
               if p.suffix in (".pt", ".zip")
               and "task" in json.loads(p.with_suffix(".json").read_text())]


@pytest.fixture(params=CHECKPOINTS, ids=[p.stem for p in CHECKPOINTS])
def shipped(request):
    path = request.param
    return path, json.loads(path.with_suffix(".json").read_text())


def test_there_are_shipped_dmc_gymnasium_and_sac_agents():
    """The README's main job runs on cartpole; the SB3 targets on the SAC agent."""
    assert {"cartpole-swingup", "inverted-pendulum", "sac-halfcheetah"} <= {
        p.stem for p in CHECKPOINTS}


def test_file_is_small_loadable_by_name_and_matches_its_card(shipped):
    path, card = shipped
    assert path.stat().st_size < 10 * 2**20
    if path.suffix == ".pt":  # our own format: weights only
        assert torch.load(path, weights_only=True)["format"] == "tdmpc2-agent"
    agent = rlprune.load_agent(path.stem)
    params = {n: sum(p.numel() for p in c.module.parameters())
              for n, c in agent.components().items()}
    assert params == card["params_per_component"]
    assert agent.describe()["task"] == card["task"]
    assert len(card["eval"]["returns"]) == card["eval"]["episodes"]


def plan_for(agent, method: str, rho: float):
    """A magnitude or random baseline plan, or one driven by soft coefficients (random
    per group, the latent interface included)."""
    if method != "coefficients":
        return rlprune.ComponentGrouper(agent), None, method
    interfaces = ["latent"] if agent.kind == "tdmpc2" else []
    grouper = rlprune.ComponentGrouper(agent, interfaces=interfaces)
    values = torch.rand(len(grouper.groups), generator=torch.Generator().manual_seed(1)) + 0.5
    return grouper, rlprune.Coefficients([g.id for g in grouper.groups], values), "l2"


@pytest.mark.parametrize("method", ["magnitude", "random", "coefficients"])
@pytest.mark.parametrize("rho", [0.2, 0.5, 0.8])
def test_shipped_agent_prunes_to_target_and_acts(shipped, rho, method):
    path, card = shipped
    agent = rlprune.load_agent(path)
    grouper, coefficients, criterion = plan_for(agent, method, rho)
    if agent.kind == "tdmpc2":
        assert len(grouper.groups) == (18 if coefficients else 17)
    if coefficients is None:
        plan = baseline_plan(grouper, method, rho, 0.01)
    else:
        ranking = rlprune.ChannelRanking(grouper, importance_scores(grouper, criterion))
        plan = ranking.plan(coefficients, rho, 0.01)
    assert abs(plan.sparsity - rho) <= 0.01
    pruned = rlprune.prune_physically(agent, plan)
    parts = pruned.components()
    assert sum(p.numel() for name in plan.cost.params_by_component
               for p in parts[name].module.parameters()) == plan.cost.params
    result = rlprune.ClosedLoopEvaluator(card["task"], episodes=1, seed=0,
                                         action_repeat=card["action_repeat"],
                                         max_episode_steps=16).evaluate(pruned)
    assert np.all(np.isfinite(result.returns)) and not result.any_failed


@pytest.mark.slow
def test_card_returns_reproduce_from_the_same_seeds(shipped):
    path, card = shipped
    agent = rlprune.load_agent(path)
    evaluator = rlprune.ClosedLoopEvaluator(card["task"], episodes=card["eval"]["episodes"],
                                            seed=card["eval"]["seeds"][0],
                                            action_repeat=card["action_repeat"])
    result = evaluator.evaluate(agent)
    np.testing.assert_allclose(result.returns, card["eval"]["returns"], rtol=1e-6)
