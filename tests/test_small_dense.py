"""The distill-small baseline: a dense network of the pruned widths, weights afresh,
distilled from the dense agent on its visited states."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rlprune
from rlprune.search import objective_for
from rlprune.search.visited import VisitedInputs
from rlprune.settings import Evaluation
from rlprune.small_dense import small_dense_baseline
from rlprune.sweep import sweep
from tests.conftest import load_script

SHIPPED_CARTPOLE = Path(__file__).resolve().parents[1] / "checkpoints" / "cartpole-swingup.pt"


def _params(agent) -> int:
    return sum(p.numel() for c in agent.components().values() for p in c.module.parameters())


def test_the_small_network_has_the_pruned_size_new_weights_and_learns_from_the_dense(
        tmp_path):
    dense = rlprune.load_agent("digits-autoencoder")
    objective = objective_for(dense, Evaluation())
    visited = VisitedInputs(objective, dense, tmp_path)
    untrained, rho = small_dense_baseline(visited, steps=0)(dense, 0.5, 0)
    trained, _ = small_dense_baseline(visited, steps=300)(dense, 0.5, 0)
    magnitude = rlprune.prune_physically(dense, rlprune.search.baseline_plan(
        rlprune.ComponentGrouper(dense), "magnitude", 0.5, 0.01))
    assert abs(rho - 0.5) <= 0.01 and _params(trained) == _params(magnitude)
    first = next(iter(trained.components().values())).module
    pruned_first = next(iter(magnitude.components().values())).module
    assert not all(p.equal(q) for p, q in zip(first.parameters(), pruned_first.parameters()))
    # distillation is what makes it work: clearly better than its fresh initialisation
    assert objective(trained).value > objective(untrained).value + 2  # dB


def test_sweep_rows_of_the_baseline_beside_magnitude(tmp_path):
    dense = rlprune.load_agent("digits-autoencoder")
    objective = objective_for(dense, Evaluation())
    extra = {"distill-small": small_dense_baseline(VisitedInputs(objective, dense, tmp_path),
                                                   steps=100)}
    rows = sweep(dense, objective, [0.5], ["magnitude", "distill-small"], tmp_path,
                 extra_methods=extra, log=lambda line: None)
    assert [r["method"] for r in rows] == ["dense", "magnitude", "distill-small"]
    assert (tmp_path / rows[-1]["agent_file"]).exists()


def test_a_tdmpc2_model_trains_from_scratch_at_a_pruned_agents_widths(tmp_path):
    """The from-scratch baseline: ``TrainConfig(widths_of=pruned)`` builds the pruned
    architecture with fresh weights, trains it, and saves an agent of that size."""
    import envs
    from tdmpc2.checkpoint import load_agent as load_tdmpc2
    from tdmpc2.config import TrainConfig
    from tdmpc2.trainer import Trainer

    dense = rlprune.load_agent("cartpole-swingup")
    pruned = rlprune.prune_physically(dense, rlprune.search.baseline_plan(
        rlprune.ComponentGrouper(dense), "magnitude", 0.5, 0.01))
    pruned.save(tmp_path / "pruned.pt")
    cfg = TrainConfig(steps=120, seed_steps=40, batch_size=8, eval_every=120, eval_episodes=1,
                      save_every=120, collect_iterations=1, collect_samples=32,
                      widths_of=str(tmp_path / "pruned.pt"))
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.env = envs.make_env(cfg.task, action_repeat=2, max_episode_steps=60)
    trainer.run()
    small = load_tdmpc2(tmp_path / "run" / "agent.pt")
    assert _params(rlprune.load_agent(tmp_path / "run" / "agent.pt")) == _params(pruned)
    assert small.model.cfg.hidden_widths == pruned.agent.model.cfg.hidden_widths
    fresh = dict(small.model.named_parameters())
    assert not all(fresh[name].equal(p) for name, p in pruned.agent.model.named_parameters())


def test_widths_of_refuses_another_tasks_model(tmp_path):
    from tdmpc2.config import TrainConfig
    from tdmpc2.trainer import Trainer

    with pytest.raises(ValueError, match="obs_dim"):
        Trainer(TrainConfig(task="dmc/pendulum-swingup", steps=10,
                            widths_of=str(SHIPPED_CARTPOLE)),
                tmp_path)


def test_train_sb3_gives_the_actor_its_own_widths():
    train_sb3 = load_script("train_sb3")
    assert train_sb3.net_arch("256,256", "86,132", off_policy=True) == {
        "pi": [86, 132], "qf": [256, 256]}
    assert train_sb3.net_arch("64,64", "32", off_policy=False) == {"pi": [32], "vf": [64, 64]}
    assert train_sb3.net_arch("256,256", None, off_policy=True) == [256, 256]
    with pytest.raises(SystemExit, match="positive integers"):
        train_sb3.net_arch("256,256", "86,x", off_policy=True)


def test_a_sweep_shows_a_trained_small_agent_as_a_scratch_small_row(tmp_path):
    """The row is the file's agent, evaluated like every other row: here the file holds
    the magnitude-pruned network itself, so both rows must agree exactly."""
    from typer.testing import CliRunner

    from rlprune.cli import app

    dense = rlprune.load_agent("digits-autoencoder")
    small = rlprune.prune_physically(dense, rlprune.search.baseline_plan(
        rlprune.ComponentGrouper(dense), "magnitude", 0.5, 0.01))
    small.save(tmp_path / "small.pt")
    result = CliRunner().invoke(app, [
        "sweep", "digits-autoencoder", "--out", str(tmp_path / "run"), "--sparsities", "0.5",
        "--methods", "magnitude", "--scratch", f"0.5={tmp_path / 'small.pt'}", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in json.loads(result.stdout)["rows"]}
    assert set(rows) == {"dense", "magnitude", "scratch-small"}
    assert rows["scratch-small"]["metric"] == rows["magnitude"]["metric"]
    assert abs(rows["scratch-small"]["sparsity"] - rows["magnitude"]["sparsity"]) < 1e-9
