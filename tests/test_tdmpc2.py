"""The TD-MPC2 agent: structure, numerics, planning, learning and checkpoints."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

import envs
from tdmpc2 import (
    ModelConfig,
    PlannerConfig,
    TDMPC2Agent,
    TrainConfig,
    load_agent,
    model_config_for,
    read_checkpoint,
    save_agent,
)
from tdmpc2.buffer import ReplayBuffer
from tdmpc2.numerics import TwoHot
from tdmpc2.trainer import Trainer
from tdmpc2.world_model import SimNorm

SMALL_PLANNER = PlannerConfig(horizon=3, iterations=2, num_samples=64, num_elites=8,
                              num_pi_trajs=8)


def small_agent(seed: int = 0, train: bool = False) -> TDMPC2Agent:
    cfg = ModelConfig(obs_dim=5, action_dim=1, latent_dim=32, mlp_dim=64, enc_dim=64)
    return TDMPC2Agent(cfg, SMALL_PLANNER, 0.99, train_cfg=TrainConfig() if train else None,
                       seed=seed)


def test_components_are_named_and_shaped():
    agent = TDMPC2Agent(model_config_for("cpu", obs_dim=5, action_dim=1))
    comps = agent.model.components()
    assert list(comps) == ["encoder", "dynamics", "reward", "pi", "Q0", "Q1", "Q2", "Q3", "Q4"]
    z = agent.model.encode(torch.randn(7, 5))
    a = torch.rand(7, 1) * 2 - 1
    assert z.shape == (7, 64)
    assert agent.model.next(z, a).shape == (7, 64)
    assert agent.model.reward_logits(z, a).shape == (7, 101)
    assert agent.model.q_logits(z, a).shape == (5, 7, 101)
    action, mean, entropy = agent.model.policy(z, torch.randn(7, 1))
    assert action.shape == mean.shape == (7, 1) and entropy.shape == (7, 1)
    assert action.abs().max() <= 1
    total = sum(p.numel() for p in agent.model.acting_state_dict().values())
    assert 0.5e6 < total < 2e6  # the CPU preset's promised size


def test_simnorm_outputs_are_simplices():
    x = torch.randn(4, 64) * 5
    y = SimNorm(8)(x).reshape(4, 8, 8)
    assert (y >= 0).all()
    torch.testing.assert_close(y.sum(-1), torch.ones(4, 8))


def test_two_hot_round_trip_and_loss_minimum():
    th = TwoHot(101, -10, 10)
    values = torch.tensor([[-250.0], [-1.5], [0.0], [0.3], [42.0]])
    encoded = th.encode(values)
    torch.testing.assert_close(encoded.sum(-1), torch.ones(5))
    # Decoding the log of a two-hot target gives the value back (up to the tiny mass of
    # the other bins after softmax of log-probabilities).
    decoded = th.decode(torch.log(encoded + 1e-12))
    torch.testing.assert_close(decoded, values, rtol=1e-3, atol=1e-3)
    assert th.loss(torch.log(encoded + 1e-12), values).mean() < th.loss(
        torch.zeros(5, 101), values).mean()


def test_planner_is_deterministic_for_a_seed_and_batched():
    agent = small_agent()
    obs = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    first = np.ones(4, bool)
    agent.planner.reseed(3)
    a1 = agent.act(obs, first)
    agent.planner.reseed(3)
    a2 = agent.act(obs, first)
    agent.planner.reseed(4)
    a3 = agent.act(obs, first)
    assert a1.shape == (4, 1) and np.all(np.abs(a1) <= 1)
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, a3)


def _filled_buffer(steps: int = 400) -> ReplayBuffer:
    env = envs.make_env("dmc/cartpole-swingup", action_repeat=2)
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(1000, 5, 1)
    obs, _ = env.reset(seed=0)
    buffer.start_episode(obs)
    for _ in range(steps):
        action = rng.uniform(-1, 1, size=1)
        obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, terminated)
        if terminated or truncated:
            obs, _ = env.reset()
            buffer.start_episode(obs)
    return buffer


def test_buffer_samples_stay_within_episodes():
    buffer = _filled_buffer(600)  # crosses one episode boundary (500 steps)
    obs, action, reward, terminated = buffer.sample(512, 3, np.random.default_rng(1))
    assert obs.shape == (4, 512, 5) and action.shape == (3, 512, 1)
    assert torch.isfinite(action).all()  # never the NaN action of an episode start


def test_short_real_training_lowers_losses():
    torch.manual_seed(0)
    agent = small_agent(train=True)
    buffer = _filled_buffer(400)
    rng = np.random.default_rng(0)
    fixed = buffer.sample(256, 3, np.random.default_rng(123))

    def losses() -> float:
        snapshot = [p.detach().clone() for p in agent.model.parameters()]
        opt_state = (agent.optim.state_dict(), agent.pi_optim.state_dict())
        info = agent.update(*fixed)  # measure on a fixed batch, then undo the step
        with torch.no_grad():
            for p, s in zip(agent.model.parameters(), snapshot):
                p.copy_(s)
        agent.optim.load_state_dict(opt_state[0])
        agent.pi_optim.load_state_dict(opt_state[1])
        return info.consistency * 20 + info.reward * 0.1 + info.value * 0.1

    before = losses()
    for _ in range(150):
        agent.update(*buffer.sample(64, 3, rng))
    after = losses()
    assert after < 0.7 * before


def test_checkpoint_round_trip_gives_identical_actions(tmp_path):
    agent = small_agent(seed=5)
    with torch.no_grad():  # non-trivial reward/Q heads (they start at zero)
        for p in agent.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_agent(tmp_path / "a.pt", agent, meta={"task": "dmc/cartpole-swingup"})
    loaded = load_agent(tmp_path / "a.pt", seed=7)
    obs = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    agent.planner.reseed(1)
    loaded.planner.reseed(1)
    np.testing.assert_array_equal(agent.act(obs), loaded.act(obs))
    assert loaded.meta == {"task": "dmc/cartpole-swingup"}
    data = torch.load(tmp_path / "a.pt", weights_only=True)
    assert not any(k.startswith("target_Qs") for k in data["state_dict"])


def test_pruned_widths_round_trip(tmp_path):
    cfg = ModelConfig(obs_dim=5, action_dim=1, latent_dim=32, mlp_dim=64, enc_dim=64,
                      hidden_widths={"pi": [20, 12], "Q": [30, 30], "Q2": [8, 9]})
    agent = TDMPC2Agent(cfg, SMALL_PLANNER)
    assert agent.model.pi[0].out_features == 20 and agent.model.pi[3].out_features == 12
    assert agent.model.Qs[0][0].out_features == 30 and agent.model.Qs[2][0].out_features == 8
    save_agent(tmp_path / "p.pt", agent)
    loaded = load_agent(tmp_path / "p.pt")
    assert loaded.model.cfg.hidden_widths == cfg.hidden_widths
    obs = np.zeros((2, 5), np.float32)
    assert loaded.act(obs).shape == (2, 1)


def test_loading_bad_files_gives_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tdmpc2 checkpoint"):
        read_checkpoint(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x02 definitely not a checkpoint")
    with pytest.raises(ValueError, match="not a readable torch checkpoint|pickled"):
        read_checkpoint(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="not a tdmpc2 agent"):
        read_checkpoint(foreign)
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "tdmpc2-agent", "obj": argparse.Namespace(payload=1)}, pickled)
    with pytest.raises(ValueError, match="pickled Python objects"):
        read_checkpoint(pickled)


def test_trainer_resumes_where_it_stopped(tmp_path):
    cfg = TrainConfig(steps=240, seed_steps=60, batch_size=16, eval_every=240,
                      eval_episodes=1, save_every=100, collect_iterations=1,
                      collect_samples=32)
    first = Trainer(cfg, tmp_path)
    # A short, capped episode length keeps this test quick.
    first.env = envs.make_env(cfg.task, action_repeat=2, max_episode_steps=100)
    first.run()
    assert (tmp_path / "resume.pt").exists() and (tmp_path / "agent.pt").exists()
    resumed = Trainer(cfg, tmp_path)
    assert resumed.step == first.step == 120
    for a, b in zip(first.agent.model.state_dict().values(),
                    resumed.agent.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert resumed.buffer.size == first.buffer.size
