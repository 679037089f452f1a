"""The env layer on real DMC and Gymnasium MuJoCo environments."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from tests.conftest import rollout


@pytest.mark.parametrize("spec", ["dmc/cartpole-swingup", "dmc/pendulum-swingup",
                                  "dmc/walker-walk", "dmc/cup-catch"])
def test_dmc_tasks_pass_gymnasium_check_env(spec):
    env = envs.make_env(spec)
    check_env(env, skip_render_check=True)
    assert env.observation_space.dtype == np.float32
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)


def test_dmc_render_returns_rgb_frame():
    env = envs.make_env("dmc/cartpole-swingup", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
    assert frame.std() > 0  # a real picture, not a blank buffer


def test_same_seed_same_trajectory_and_different_seed_differs(action_sequence):
    actions = action_sequence(60, 1)
    a = rollout(envs.make_env("dmc/cartpole-swingup"), 3, actions)
    b = rollout(envs.make_env("dmc/cartpole-swingup"), 3, actions)
    c = rollout(envs.make_env("dmc/cartpole-swingup"), 4, actions)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.allclose(a[0][0], c[0][0])


def test_action_repeat_sums_rewards_and_shortens_episode(action_sequence):
    env1 = envs.make_env("dmc/cartpole-swingup")
    env2 = envs.make_env("dmc/cartpole-swingup", action_repeat=2)
    assert envs.episode_length(env1) == 1000 and envs.episode_length(env2) == 500
    actions = action_sequence(10, 1)
    _, r1 = rollout(env1, 0, np.repeat(actions, 2, axis=0))
    obs2, r2 = rollout(env2, 0, actions)
    np.testing.assert_allclose(r2, r1.reshape(-1, 2).sum(1), rtol=1e-12)
    assert len(obs2) == 11


def test_full_dmc_episode_truncates_at_time_limit():
    env = envs.make_env("dmc/cartpole-swingup", action_repeat=4)
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(np.zeros(1))
        steps += 1
        done = terminated or truncated
    assert steps == 250 and truncated and not terminated


def test_max_episode_steps_override():
    env = envs.make_env("dmc/cartpole-swingup", max_episode_steps=30, action_repeat=2)
    assert envs.episode_length(env) == 15
    obs, _ = rollout(env, 0, np.zeros((100, 1)))
    assert len(obs) == 16


@pytest.mark.parametrize("spec,quantity", [
    ("dmc/cartpole-swingup", "mass"), ("dmc/pendulum-swingup", "damping"),
    ("dmc/cheetah-run", "friction"), ("InvertedPendulum-v5", "mass"),
    ("HalfCheetah-v5", "damping"),
])
def test_physics_scale_changes_trajectory_and_unit_scale_changes_nothing(
        spec, quantity, action_sequence):
    dim = envs.make_env(spec).action_space.shape[0]
    actions = action_sequence(40, dim)
    base = rollout(envs.make_env(spec), 1, actions)[0]
    unit = rollout(envs.make_env(spec, perturb={quantity: 1.0}), 1, actions)[0]
    double = rollout(envs.make_env(spec, perturb={quantity: 2.0}), 1, actions)[0]
    np.testing.assert_array_equal(base, unit)
    n = min(len(base), len(double))
    assert np.abs(base[:n] - double[:n]).max() > 1e-3


def test_physics_scale_touches_only_its_own_env():
    scaled = envs.make_env("dmc/cartpole-swingup", perturb="mass=3")
    plain = envs.make_env("dmc/cartpole-swingup")
    m_scaled = envs.mujoco_model(scaled).body_mass
    m_plain = envs.mujoco_model(plain).body_mass
    np.testing.assert_allclose(m_scaled, 3 * m_plain)


@pytest.mark.parametrize("perturb", ["obs_noise=0.1", "act_noise=0.3"])
def test_noise_wrappers_reproducible_with_seed(perturb, action_sequence):
    actions = action_sequence(50, 1)
    clean = rollout(envs.make_env("dmc/cartpole-swingup"), 5, actions)[0]
    a = rollout(envs.make_env("dmc/cartpole-swingup", perturb=perturb), 5, actions)[0]
    b = rollout(envs.make_env("dmc/cartpole-swingup", perturb=perturb), 5, actions)[0]
    c = rollout(envs.make_env("dmc/cartpole-swingup", perturb=perturb, perturb_seed=9), 5,
                actions)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, clean)
    assert not np.allclose(a, c)


def test_action_delay_shifts_actions(action_sequence):
    actions = action_sequence(30, 1)
    delayed = rollout(envs.make_env("dmc/cartpole-swingup", perturb="delay=2"), 0, actions)[0]
    shifted = np.concatenate([np.zeros((2, 1), np.float32), actions[:-2]])
    manual = rollout(envs.make_env("dmc/cartpole-swingup"), 0, shifted)[0]
    np.testing.assert_array_equal(delayed, manual)


def test_perturbations_compose_in_order():
    env = envs.make_env("dmc/cartpole-swingup", perturb="mass=2,obs_noise=0.05,delay=1")
    kinds = []
    while isinstance(env, gym.Wrapper):
        kinds.append(type(env).__name__)
        env = env.env
    assert kinds == ["ActionDelay", "ObservationNoise", "PhysicsScale"]


def test_vector_env_matches_single_env_returns():
    seeds = [11, 12, 13]
    options = {"action_repeat": 2, "perturb": "obs_noise=0.05,mass=1.5"}

    def policy(obs):  # a fixed deterministic feedback law
        return np.tanh(obs[..., :1] - 0.5 * obs[..., 1:2])

    single = []
    for seed in seeds:
        env = envs.make_env("dmc/cartpole-swingup", **options)
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += reward
            done = terminated or truncated
        single.append(total)

    vec = envs.make_vector_env("dmc/cartpole-swingup", 3, **options)
    obs, _ = vec.reset(seed=seeds)
    totals, done = np.zeros(3), np.zeros(3, bool)
    while not done.all():
        obs, reward, terminated, truncated, _ = vec.step(policy(obs))
        totals += np.where(done, 0, reward)
        done |= terminated | truncated
    np.testing.assert_allclose(totals, single, rtol=0, atol=1e-9)


def test_async_vector_env_matches_sync():
    seeds, actions = [3, 4], np.full((2, 1), 0.3, np.float32)
    results = []
    for mode in ("sync", "async"):
        vec = envs.make_vector_env("dmc/cartpole-swingup", 2, vectorization=mode,
                                   perturb="obs_noise=0.1")
        obs, _ = vec.reset(seed=seeds)
        obs2, reward, *_ = vec.step(actions)
        vec.close()
        results.append((obs, obs2, reward))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_unknown_task_lists_close_matches():
    with pytest.raises(ValueError, match="did you mean dmc/cartpole-swingup"):
        envs.make_env("dmc/cartpole-swingupp")
    with pytest.raises(ValueError, match="HalfCheetah-v5"):
        envs.make_env("HalfCheetah-v9")


@pytest.mark.parametrize("perturb,match", [
    ("mass=0", "must be a finite number > 0"),
    ("damping=-2", "must be a finite number > 0"),
    ("obs_noise=-0.1", "must be >= 0"),
    ("delay=1.5", "whole number"),
    ("wind=3", "unknown perturbation 'wind'"),
    ("mass", "must look like name=value"),
    ("mass=heavy", "must be a number"),
])
def test_bad_perturbations_are_rejected(perturb, match):
    with pytest.raises(ValueError, match=match):
        envs.make_env("dmc/cartpole-swingup", perturb=perturb)


def test_physics_perturbation_on_non_mujoco_env_is_rejected():
    with pytest.raises(ValueError, match="not a MuJoCo env"):
        envs.make_env("Pendulum-v1", perturb={"mass": 2})


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="action_repeat"):
        envs.make_env("dmc/cartpole-swingup", action_repeat=0)
    with pytest.raises(ValueError, match="num_envs"):
        envs.make_vector_env("dmc/cartpole-swingup", 0)
    with pytest.raises(ValueError, match="vectorization"):
        envs.make_vector_env("dmc/cartpole-swingup", 2, vectorization="threads")
