"""Writes the gym-era (SB3 1.x) agents under tests/data/rl-zoo/ and their SB3 2.x sources.

Public pretrained SB3 agents (RL Zoo, the Hugging Face ``sb3/`` models) were saved by
stable-baselines3 1.x with ``gym``: their pickles name ``gym.spaces``, and RL Zoo keeps their
statistics and settings in ``logs/ALGO/ENV_1/ENV/``. These files are made by those old
libraries themselves, so the tests load what users have, not our idea of it.

Good weights come from SB3 2.x (this repo's venv) and are transplanted into SB3 1.8 models
built on a dummy ``gym`` 0.21 env with the same spaces; the old library then saves them:

- ``sac/HalfCheetah-v3_1``: the shipped ``checkpoints/sac-halfcheetah.zip`` (no statistics).
- ``ppo/InvertedPendulum-v2_1``, ``a2c/InvertedPendulum-v2_1``: trained here under
  ``VecNormalize`` on InvertedPendulum-v5 (same spaces as v2); the old ``VecNormalize`` gets
  the source's running statistics and is pickled by the old SB3 (``vecnormalize.pkl``).
- ``tqc/Pendulum-v1_1``: a small sb3-contrib TQC, re-saved by sb3-contrib 1.8.
- ``dqn/CartPole-v1_1``, ``qrdqn/CartPole-v1_1``: RL Zoo's CartPole settings (smaller
  networks), discrete actions.
- ``trpo/InvertedPendulum-v2_1``, ``ars/InvertedPendulum-v2_1``: trained under
  ``VecNormalize`` like ppo/a2c (ARS with its ``LinearPolicy``, as RL Zoo publishes it).

The SB3 2.x sources (with ``vec_normalize.pkl``/``config.yml`` beside them, the Hugging Face
flat layout) go to tests/data/sb3-2.x/: the tests compare the old files against them.

Stage 1, in this repo's venv (SB3 2.x; writes the sources and /tmp/gymera-transfer/)::

    MUJOCO_GL=egl .venv/bin/python tests/data/make_gym_era_agents.py sources [NAME...]

Stage 2, in a throwaway gym-era venv (never this repo's venv)::

    /root/.pyenv/versions/3.11.7/bin/python -m venv /tmp/gymera
    /tmp/gymera/bin/pip install torch==2.13.0
    /tmp/gymera/bin/pip install "setuptools<66" "wheel<0.40"
    /tmp/gymera/bin/pip install --no-build-isolation gym==0.21.0
    /tmp/gymera/bin/pip install stable-baselines3==1.8.0 sb3-contrib==1.8.0 numpy==1.26.4 \
        cloudpickle==2.2.1 pandas==2.1.4 "matplotlib<3.9" pyyaml==6.0.1
    /tmp/gymera/bin/python tests/data/make_gym_era_agents.py old [NAME...]
"""

from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parent
ZOO = DATA / "rl-zoo" / "logs"
SOURCES = DATA / "sb3-2.x"
TRANSFER = Path("/tmp/gymera-transfer")
ROOT = DATA.parents[1]

_CARTPOLE_Q = {
    "n_timesteps": 50000.0, "policy": "MlpPolicy", "learning_rate": 0.0023,
    "batch_size": 64, "buffer_size": 100000, "learning_starts": 1000, "gamma": 0.99,
    "target_update_interval": 10, "train_freq": 256, "gradient_steps": 128,
    "exploration_fraction": 0.16, "exploration_final_eps": 0.04}
"""RL Zoo's CartPole-v1 settings, shared by its DQN and QR-DQN."""

# name -> (algo, gymnasium id used for training, the gym-era id RL Zoo would record,
#          RL Zoo hyperparameters as its config.yml records them)
AGENTS = {
    "sac": ("sac", "HalfCheetah-v5", "HalfCheetah-v3", {
        "learning_starts": 10000, "n_timesteps": 1000000.0, "policy": "MlpPolicy"}),
    "ppo": ("ppo", "InvertedPendulum-v5", "InvertedPendulum-v2", {
        "normalize": True, "n_envs": 1, "policy": "MlpPolicy", "n_timesteps": 30000.0,
        "batch_size": 64, "n_steps": 512, "gamma": 0.99, "learning_rate": "lin_3e-4",
        "clip_range": "lin_0.2",
        "policy_kwargs": "dict(net_arch=dict(pi=[64, 64], vf=[64, 64]))"}),
    "a2c": ("a2c", "InvertedPendulum-v5", "InvertedPendulum-v2", {
        "normalize": "dict(norm_obs=True, norm_reward=False)", "n_envs": 1,
        "policy": "MlpPolicy", "n_timesteps": 30000.0, "gamma": 0.99,
        "learning_rate": "lin_7e-4",
        "policy_kwargs": "dict(net_arch=dict(pi=[32, 32], vf=[32, 32]))"}),
    "tqc": ("tqc", "Pendulum-v1", "Pendulum-v1", {
        "learning_starts": 500, "n_timesteps": 6000.0, "policy": "MlpPolicy",
        "policy_kwargs": "dict(net_arch=[64, 64], n_critics=2)"}),
    "dqn": ("dqn", "CartPole-v1", "CartPole-v1", {
        **_CARTPOLE_Q, "policy_kwargs": "dict(net_arch=[64, 64])"}),
    "qrdqn": ("qrdqn", "CartPole-v1", "CartPole-v1", {
        **_CARTPOLE_Q, "policy_kwargs": "dict(net_arch=[64, 64], n_quantiles=10)"}),
    "trpo": ("trpo", "InvertedPendulum-v5", "InvertedPendulum-v2", {
        "normalize": True, "n_envs": 1, "policy": "MlpPolicy", "n_timesteps": 30000.0,
        "batch_size": 128, "n_steps": 1024, "gamma": 0.99, "learning_rate": 0.001,
        "policy_kwargs": "dict(net_arch=dict(pi=[64, 64], vf=[64, 64]))"}),
    "ars": ("ars", "InvertedPendulum-v5", "InvertedPendulum-v2", {
        "normalize": "dict(norm_obs=True, norm_reward=False)", "n_envs": 1,
        "policy": "LinearPolicy", "n_timesteps": 20000.0, "n_delta": 4,
        "policy_kwargs": "dict()"}),
}
_TRAINING = {"ppo": {"n_steps": 512, "batch_size": 64, "learning_rate": 3e-4},
             "a2c": {"learning_rate": 7e-4}, "tqc": {"learning_starts": 500},
             "trpo": {"n_steps": 1024, "batch_size": 128, "learning_rate": 1e-3},
             "ars": {"n_delta": 4}}
"""Constructor settings of the sources (DQN and QR-DQN take theirs from the config)."""
_DQN_KEYS = ("learning_rate", "batch_size", "buffer_size", "learning_starts", "gamma",
             "target_update_interval", "train_freq", "gradient_steps",
             "exploration_fraction", "exploration_final_eps")


def _algorithm_class(algo: str):
    """The SB3 or sb3-contrib class (either era: both name them alike)."""
    import sb3_contrib
    import stable_baselines3 as sb3

    contrib = {"tqc": "TQC", "qrdqn": "QRDQN", "trpo": "TRPO", "ars": "ARS"}
    if algo in contrib:
        return getattr(sb3_contrib, contrib[algo])
    return getattr(sb3, algo.upper())


def _space(space) -> dict:
    if hasattr(space, "n"):
        return {"n": int(space.n)}
    return {"low": space.low.tolist(), "high": space.high.tolist(),
            "dtype": str(space.dtype), "shape": list(space.shape)}


def _rms(rms) -> dict:
    return {"mean": np.asarray(rms.mean).tolist(), "var": np.asarray(rms.var).tolist(),
            "count": float(rms.count)}


def _train_source(name: str):
    """A small SB3 2.x agent (and its VecNormalize) trained on the gymnasium task."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    import envs

    algo, env_id, _, config = AGENTS[name]
    venv = make_vec_env(lambda: envs.make_env(env_id), n_envs=1, seed=0)
    kwargs = _TRAINING.get(algo) or {k: config[k] for k in _DQN_KEYS}
    policy_kwargs = eval(config["policy_kwargs"])  # noqa: S307 - our own literal above
    if config.get("normalize"):
        venv = VecNormalize(venv, norm_reward=algo == "ppo", gamma=0.99)
    model = _algorithm_class(algo)(config["policy"], venv, seed=0, device="cpu",
                                   policy_kwargs=policy_kwargs, **kwargs)
    model.learn(int(config["n_timesteps"]))
    folder = SOURCES / f"{algo}-{env_id}"
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / f"{algo}-{env_id}.zip")  # the Hugging Face flat layout
    if isinstance(venv, VecNormalize):
        venv.save(str(folder / "vec_normalize.pkl"))
    _write_yaml(folder / "config.yml", OrderedDict(sorted(config.items())))
    return model, venv if isinstance(venv, VecNormalize) else None


def sources(names: list[str]) -> None:
    """Stage 1 (SB3 2.x): writes the sources and what stage 2 needs to rebuild them."""
    from stable_baselines3 import SAC

    torch.set_num_threads(1)
    TRANSFER.mkdir(parents=True, exist_ok=True)
    for name in names:
        if name == "sac":
            model, stats = SAC.load(ROOT / "checkpoints" / "sac-halfcheetah.zip",
                                    device="cpu"), None
        else:
            model, stats = _train_source(name)
        payload = {"state_dict": model.policy.state_dict(),
                   "policy_kwargs": {k: v for k, v in model.policy_kwargs.items()
                                     if k in ("net_arch", "n_critics", "n_quantiles", "with_bias")},
                   "observation_space": _space(model.observation_space),
                   "action_space": _space(model.action_space),
                   "num_timesteps": int(model.num_timesteps)}
        if stats is not None:
            payload["vecnormalize"] = {
                "obs_rms": _rms(stats.obs_rms), "ret_rms": _rms(stats.ret_rms),
                "clip_obs": stats.clip_obs, "clip_reward": stats.clip_reward,
                "epsilon": stats.epsilon, "gamma": stats.gamma,
                "norm_reward": stats.norm_reward}
        torch.save(payload, TRANSFER / f"{name}.pt")
        print(f"{name}: source written ({model.num_timesteps} steps)", file=sys.stderr)


def _write_yaml(path: Path, value) -> None:
    import yaml

    with path.open("w") as f:
        yaml.dump(value, f)


def _dummy_env(observation_space, action_space):
    """A gym 0.21 env with the source's spaces: SB3 1.x needs one to build a model."""
    import gym

    class Dummy(gym.Env):
        def __init__(self) -> None:
            self.observation_space, self.action_space = observation_space, action_space

        def reset(self):
            return self.observation_space.sample()

        def step(self, action):
            return self.observation_space.sample(), 0.0, False, {}

    return Dummy()


def _zoo_args(algo: str, env_id: str) -> OrderedDict:
    """RL Zoo's train.py arguments (the 1.x era's set) as its args.yml records them."""
    args = argparse.Namespace(
        algo=algo, env=env_id, tensorboard_log="", trained_agent="",
        truncate_last_trajectory=True, n_timesteps=-1, num_threads=-1, log_interval=-1,
        eval_freq=25000, optimization_log_path=None, eval_episodes=5, n_eval_envs=1,
        save_freq=-1, save_replay_buffer=False, log_folder="logs", seed=0,
        vec_env="dummy", device="auto", n_trials=500, max_total_trials=None,
        optimize_hyperparameters=False, no_optim_plots=False, n_jobs=1, sampler="tpe",
        pruner="median", n_startup_trials=10, n_evaluations=None, storage=None,
        study_name=None, verbose=1, gym_packages=[], env_kwargs=None, hyperparams=None,
        uuid=False, track=False, wandb_project_name="sb3", wandb_entity=None,
        progress=False, wandb_tags=[])
    return OrderedDict([(key, vars(args)[key]) for key in sorted(vars(args))])


def _linear(value: str):
    initial = float(value.split("_")[1])
    return lambda progress_remaining: progress_remaining * initial


def _old_space(spec: dict):
    import gym

    if "n" in spec:
        return gym.spaces.Discrete(spec["n"])
    return gym.spaces.Box(low=np.array(spec["low"], dtype=spec["dtype"]),
                          high=np.array(spec["high"], dtype=spec["dtype"]),
                          dtype=np.dtype(spec["dtype"]))


def old(name: str) -> None:
    """Stage 2 (SB3 1.8 + gym 0.21): rebuilds one source and saves it the RL Zoo way."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    algo, _, zoo_id, config = AGENTS[name]
    payload = torch.load(TRANSFER / f"{name}.pt", weights_only=False)
    env = _dummy_env(_old_space(payload["observation_space"]),
                     _old_space(payload["action_space"]))
    kwargs = {k: _linear(v) for k, v in config.items()
              if k in ("learning_rate", "clip_range") and isinstance(v, str)}
    if algo in ("sac", "tqc", "dqn", "qrdqn"):
        kwargs.update(buffer_size=1000, learning_starts=config["learning_starts"])
    model = _algorithm_class(algo)(config["policy"], DummyVecEnv([lambda: env]), seed=0,
                                   device="cpu", policy_kwargs=payload["policy_kwargs"],
                                   **kwargs)
    model.policy.load_state_dict(payload["state_dict"])  # strict: same networks
    model.num_timesteps = payload["num_timesteps"]
    run = ZOO / algo / f"{zoo_id}_1"
    params = run / zoo_id
    params.mkdir(parents=True, exist_ok=True)
    model.save(run / f"{zoo_id}.zip")
    if "vecnormalize" in payload:
        stats = payload["vecnormalize"]
        vec = VecNormalize(DummyVecEnv([lambda: env]), norm_reward=stats["norm_reward"],
                           clip_obs=stats["clip_obs"], clip_reward=stats["clip_reward"],
                           gamma=stats["gamma"], epsilon=stats["epsilon"])
        for key in ("obs_rms", "ret_rms"):
            rms = getattr(vec, key)
            rms.mean = np.asarray(stats[key]["mean"], dtype=np.float64).reshape(rms.mean.shape)
            rms.var = np.asarray(stats[key]["var"], dtype=np.float64).reshape(rms.var.shape)
            rms.count = stats[key]["count"]
        vec.save(str(params / "vecnormalize.pkl"))
    _write_yaml(params / "config.yml", OrderedDict(sorted(config.items())))
    _write_yaml(params / "args.yml", _zoo_args(algo, zoo_id))
    _write_yaml(params / "env_kwargs.yml", {})
    print(f"{name}: {run / f'{zoo_id}.zip'}", file=sys.stderr)


if __name__ == "__main__":
    stage, chosen = (sys.argv[1] if len(sys.argv) > 1 else ""), sys.argv[2:] or list(AGENTS)
    if stage == "sources":
        sources(chosen)
    elif stage == "old":
        for agent in chosen:
            old(agent)
    else:
        sys.exit("usage: make_gym_era_agents.py sources|old [NAME...] (see the docstring)")
