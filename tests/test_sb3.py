"""SB3 agents trained here for a few hundred steps: load, group, prune, save, reload, act."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, SAC, TD3

import envs
from rlprune import ClosedLoopEvaluator, ComponentGrouper, load_agent, prune_physically
from rlprune.pruning.masking import ChannelMasks
from rlprune.search import baseline_plan


@pytest.fixture(scope="module", params=["SAC", "TD3", "PPO"])
def sb3_zip(request, tmp_path_factory):
    algo = {"SAC": SAC, "TD3": TD3, "PPO": PPO}[request.param]
    kwargs = {"learning_starts": 50} if request.param != "PPO" else {"n_steps": 64,
                                                                     "batch_size": 32}
    model = algo("MlpPolicy", envs.make_env("Pendulum-v1"), seed=0, device="cpu",
                 policy_kwargs={"net_arch": [64, 64]}, **kwargs)
    model.learn(200)
    path = tmp_path_factory.mktemp(request.param) / "agent.zip"
    model.save(path)
    return request.param, path


def test_load_detects_algorithm_and_groups_the_actor(sb3_zip):
    algo, path = sb3_zip
    agent = load_agent(path)
    assert agent.kind == f"sb3-{algo.lower()}"
    grouper = ComponentGrouper(agent)  # default: the actor only
    assert set(grouper.components) == {"actor"}
    assert [g.channels for g in grouper.groups] == [64, 64]
    every = ComponentGrouper(agent, list(agent.components()))
    assert len(every.groups) > 2 and {g.component for g in every.groups} > {"actor"}


@pytest.mark.parametrize("rho", [0.2, 0.5, 0.8])
def test_pruned_actor_matches_masks_saves_reloads_and_acts(sb3_zip, rho, tmp_path):
    algo, path = sb3_zip
    agent = load_agent(path)
    grouper = ComponentGrouper(agent)
    plan = baseline_plan(grouper, "magnitude", rho, 0.02)
    assert abs(plan.sparsity - rho) <= 0.02
    obs = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    with ChannelMasks(grouper) as masks:
        masks.set_plan(plan)
        masked = agent.act(obs)
    pruned = prune_physically(agent, plan)
    np.testing.assert_allclose(pruned.act(obs), masked, rtol=1e-5, atol=1e-5)
    actor = pruned.components()["actor"].module
    assert sum(p.numel() for p in actor.parameters()) == plan.cost.params
    pruned.save(tmp_path / "pruned.zip")
    reloaded = load_agent(tmp_path / "pruned.zip")
    np.testing.assert_allclose(reloaded.act(obs), pruned.act(obs), rtol=1e-6, atol=1e-6)
    result = ClosedLoopEvaluator("Pendulum-v1", episodes=2, max_episode_steps=50).evaluate(
        reloaded)
    assert np.all(np.isfinite(result.returns))


def test_data_inputs_cover_every_component(sb3_zip):
    _, path = sb3_zip
    agent = load_agent(path)
    obs = np.zeros((4, 3), np.float32)
    inputs = agent.component_inputs(obs, agent.act(obs))
    for name, component in agent.components().items():
        assert component.module(inputs[name]).shape[0] == 4
        assert torch.isfinite(inputs[name]).all()


@pytest.fixture(scope="module")
def normalized_zip(tmp_path_factory):
    """A PPO trained under VecNormalize, saved the RL Zoo way (stats beside the zip)."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    venv = VecNormalize(make_vec_env(lambda: envs.make_env("Pendulum-v1"), n_envs=1, seed=0))
    model = PPO("MlpPolicy", venv, seed=0, device="cpu", n_steps=64, batch_size=32,
                policy_kwargs={"net_arch": [32, 32]})
    model.learn(256)
    folder = tmp_path_factory.mktemp("zoo")
    model.save(folder / "Pendulum-v1.zip")
    venv.save(str(folder / "vecnormalize.pkl"))
    return folder / "Pendulum-v1.zip", venv


def test_vecnormalize_statistics_are_applied_kept_and_exported(normalized_zip, tmp_path):
    path, venv = normalized_zip
    agent = load_agent(path)
    assert agent.meta["vecnormalize"].endswith("vecnormalize.pkl")
    obs = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32) * 3
    expected, _ = agent.model.predict(venv.normalize_obs(obs), deterministic=True)
    np.testing.assert_array_equal(agent.act(obs), expected)
    raw, _ = agent.model.predict(obs, deterministic=True)
    assert not np.allclose(raw, expected)  # the statistics matter for this agent
    pruned = prune_physically(agent, baseline_plan(ComponentGrouper(agent), "magnitude",
                                                   0.5, 0.05))
    pruned.save(tmp_path / "pruned.zip")
    assert (tmp_path / "vecnormalize.pkl").exists()
    reloaded = load_agent(tmp_path / "pruned.zip")
    np.testing.assert_array_equal(reloaded.act(obs), pruned.act(obs))

    onnxruntime = pytest.importorskip("onnxruntime")
    from rlprune.export import export_onnx

    (graph,) = export_onnx(reloaded, tmp_path / "onnx")
    exported = onnxruntime.InferenceSession(graph.path).run(None, {"input": obs})[0]
    np.testing.assert_allclose(exported, reloaded.act(obs), rtol=1e-5, atol=1e-5)


def test_unreadable_vecnormalize_file_is_a_clear_error(sb3_zip, tmp_path):
    _, path = sb3_zip
    (tmp_path / "agent.zip").write_bytes(path.read_bytes())
    (tmp_path / "vecnormalize.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="cannot read VecNormalize statistics"):
        load_agent(tmp_path / "agent.zip")


@pytest.mark.parametrize("name", ["sac-pendulum-sb3-2.0.0.zip", "ppo-pendulum-sb3-2.0.0.zip"])
def test_agents_saved_by_an_older_sb3_release_load_prune_and_act(name, tmp_path):
    """Written by stable-baselines3 2.0.0 (tests/data/make_old_sb3_agents.py)."""
    agent = load_agent(Path(__file__).parent / "data" / name)
    assert agent.kind == f"sb3-{name.split('-')[0]}"
    pruned = prune_physically(agent, baseline_plan(ComponentGrouper(agent), "magnitude",
                                                   0.5, 0.05))
    pruned.save(tmp_path / "pruned.zip")
    reloaded = load_agent(tmp_path / "pruned.zip")
    result = ClosedLoopEvaluator("Pendulum-v1", episodes=2, max_episode_steps=50).evaluate(
        reloaded)
    assert np.all(np.isfinite(result.returns)) and not result.any_failed


def test_batched_evaluation_equals_the_sequential_loop_exactly(sb3_zip):
    _, path = sb3_zip
    from tests.conftest import batched_and_singles

    batched, singles = batched_and_singles(load_agent(path), "Pendulum-v1", seed=5,
                                           max_episode_steps=80)
    np.testing.assert_array_equal(batched.returns, [s.returns[0] for s in singles])


@pytest.mark.parametrize("sb3_zip", ["SAC", "TD3"], indirect=True)
def test_every_network_pruned_saves_reloads_with_its_env_and_trains_on(sb3_zip, tmp_path):
    algo, path = sb3_zip
    agent = load_agent(path)
    agent.meta["task"] = "Pendulum-v1"  # as RL Zoo's files or a card would say
    every = list(agent.components())
    plan = baseline_plan(ComponentGrouper(agent, every), "magnitude", 0.5, 0.02)
    pruned = prune_physically(agent, plan, every)
    widths = [[m.out_features for m in c.module.modules() if isinstance(m, torch.nn.Linear)]
              for name, c in pruned.components().items() if name != "actor"]
    assert any(w != widths[0] for w in widths)  # the critics were cut differently
    obs = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    actions = np.random.default_rng(1).uniform(-1, 1, size=(16, 1)).astype(np.float32)
    inputs = torch.as_tensor(np.concatenate([obs, actions], 1))
    q_before = {n: c.module(inputs) for n, c in pruned.components().items() if n != "actor"}
    pruned.save(tmp_path / "pruned.zip")
    reloaded = load_agent(tmp_path / "pruned.zip")  # no --env: the card says Pendulum-v1
    assert reloaded.meta["task"] == "Pendulum-v1"
    np.testing.assert_allclose(reloaded.act(obs), pruned.act(obs), rtol=1e-6, atol=1e-6)
    for name, q in q_before.items():  # zero-padded critic heads give the same values
        torch.testing.assert_close(reloaded.components()[name].module(inputs), q)
    cls = {"SAC": SAC, "TD3": TD3}[algo]
    model = cls.load(tmp_path / "pruned.zip", env=envs.make_env("Pendulum-v1"), device="cpu")
    model.learning_starts = 0
    model.learn(64)  # the optimisers fit the pruned shapes: training goes on
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())
