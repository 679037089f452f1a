"""Distillation fine-tuning of pruned agents towards their dense originals."""

from __future__ import annotations

import numpy as np
import pytest

import rlprune
from rlprune.analysis.evaluate import StateRecorder
from rlprune.finetune import distill, distill_if_better
from rlprune.models.digits_autoencoder import digits_split
from rlprune.search import PSNRObjective, Score, VisitedInputs, baseline_plan, importance_scores
from tests.conftest import small_tdmpc2


def test_distillation_recovers_autoencoder_psnr():
    dense = rlprune.load_agent("digits-autoencoder")
    train, test = digits_split(0)
    pruned = rlprune.prune_physically(dense, baseline_plan(
        rlprune.ComponentGrouper(dense), "magnitude", 0.5, 0.02))
    before = pruned.psnr(test)
    result = distill(dense, pruned, train.numpy(), steps=200)
    assert pruned.psnr(test) > before + 3  # measured: 10.0 -> 16.9 dB after 300 steps
    assert all(result.loss_after[n] < result.loss_before[n] for n in ("encoder", "decoder"))
    with pytest.raises(ValueError, match="steps and action_samples must be >= 0"):
        distill(dense, pruned, train.numpy(), steps=-1)


def test_distillation_of_a_latent_pruned_world_model_with_refresh():
    dense = small_tdmpc2()
    evaluator = rlprune.ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=2, seed=0,
                                            action_repeat=2, max_episode_steps=40)
    recorder = StateRecorder()
    evaluator.evaluate(dense, recorder)
    observations, actions = recorder.arrays()
    grouper = rlprune.ComponentGrouper(dense, interfaces=["latent"])
    ranking = rlprune.ChannelRanking(grouper, importance_scores(grouper, "l2"))
    plan = ranking.plan(rlprune.Coefficients.from_dict(
        [g.id for g in grouper.groups], {"interface/latent": 0.01}), 0.4, 0.05)
    pruned = rlprune.prune_physically(dense, plan)
    assert pruned.latent_width == 8

    def own_states(agent):
        rec = StateRecorder()
        evaluator.evaluate(agent, rec)
        return rec.arrays()

    result = distill(dense, pruned, observations, actions, steps=30, batch_size=64,
                     refresh=own_states, action_samples=3)
    # the pruned agent's states were added, each state with its action and 3 explored ones
    assert result.samples == 2 * 4 * len(observations)
    assert sum(result.loss_after.values()) < sum(result.loss_before.values())
    assert "encoder" in result.loss_after  # trained against the kept latent dims
    assert np.isfinite(evaluator.evaluate(pruned).returns).all()


def test_distillation_explores_actions_only_where_components_read_them():
    dense = small_tdmpc2()
    rng = np.random.default_rng(0)
    observations = rng.normal(size=(50, 5)).astype(np.float32)
    actions = rng.uniform(-1, 1, size=(50, 1)).astype(np.float32)
    pruned = rlprune.prune_physically(dense, baseline_plan(
        rlprune.ComponentGrouper(dense), "magnitude", 0.5, 0.05))
    assert distill(dense, pruned, observations, actions, steps=1).samples == 5 * 50
    assert distill(dense, pruned, observations, actions, steps=1,
                   action_samples=0).samples == 50

    sac = rlprune.load_agent("sac-halfcheetah")  # its actor reads observations only
    pruned_sac = rlprune.prune_physically(sac, baseline_plan(
        rlprune.ComponentGrouper(sac), "magnitude", 0.5, 0.02))
    obs = rng.normal(size=(50, 17)).astype(np.float32)
    act = rng.uniform(-1, 1, size=(50, 6)).astype(np.float32)
    assert distill(sac, pruned_sac, obs, act, steps=1).samples == 50


class LowerPSNRIsBetter(PSNRObjective):
    """An objective that fine-tuning towards the dense autoencoder makes worse."""

    def __call__(self, agent, incumbent=None):
        return Score(-agent.psnr(self.images))


@pytest.mark.parametrize("objective_class, kept", [(PSNRObjective, True),
                                                   (LowerPSNRIsBetter, False)])
def test_fine_tuning_is_kept_only_if_the_objective_does_not_drop(objective_class, kept):
    dense = rlprune.load_agent("digits-autoencoder")
    train, test = digits_split(0)
    pruned = rlprune.prune_physically(dense, baseline_plan(
        rlprune.ComponentGrouper(dense), "magnitude", 0.5, 0.02))
    objective = objective_class(test)
    validation = objective_class(digits_split(2000)[1])  # other images decide
    baseline = validation(pruned).value
    agent, report = distill_if_better(dense, pruned, objective, VisitedInputs(objective, dense),
                                      steps=100, validation=validation)
    assert report["kept"] is kept and report["untuned_metric"] == baseline
    assert (agent is not pruned) is kept
    assert (report["metric"] >= baseline) is kept
    assert validation(pruned).value == baseline  # the untuned agent is never modified
