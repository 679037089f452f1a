"""SB3 agents of every era in RL Zoo and Hugging Face layouts: load, find statistics, act.

The gym-era files under tests/data/rl-zoo/ were written by stable-baselines3 1.8 with gym
0.21 (tests/data/make_gym_era_agents.py) from the SB3 2.x agents in tests/data/sb3-2.x/
and the shipped checkpoints/sac-halfcheetah.zip: each must act exactly like its source.
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
from typer.testing import CliRunner

from rlprune import ClosedLoopEvaluator, ComponentGrouper, load_agent, prune_physically
from rlprune.adapters import SB3Adapter, shipped_checkpoint
from rlprune.adapters.rl_zoo import rl_zoo_files
from rlprune.adapters.sb3_algorithms import ALGORITHMS
from rlprune.analysis.evaluate import StateRecorder
from rlprune.cli import app
from rlprune.search import baseline_plan

DATA = Path(__file__).parent / "data"
LOGS = DATA / "rl-zoo" / "logs"
SAC_V3 = LOGS / "sac" / "HalfCheetah-v3_1" / "HalfCheetah-v3.zip"
PENDULUM = {algo: LOGS / algo / "InvertedPendulum-v2_1" / "InvertedPendulum-v2.zip"
            for algo in ("ppo", "a2c", "trpo")}
TQC_V1 = LOGS / "tqc" / "Pendulum-v1_1" / "Pendulum-v1.zip"
runner = CliRunner()


def _copy_run(algo: str, tmp_path: Path, stats: bool = True) -> Path:
    """A copy of an RL Zoo run folder (without its statistics if ``stats`` is False)."""
    run = tmp_path / "logs" / algo / "InvertedPendulum-v2_1"
    shutil.copytree(PENDULUM[algo].parent, run)
    if not stats:
        (run / "InvertedPendulum-v2" / "vecnormalize.pkl").unlink()
    return run / "InvertedPendulum-v2.zip"


def test_gym_is_not_installed_here():
    """What users without gym have: the files below must load without it."""
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("gym")


def test_gym_era_sac_acts_exactly_like_the_shipped_agent(capsys):
    old = load_agent(SAC_V3)
    assert "saved with gym (SB3 1.x); read observation_space, action_space" in \
        capsys.readouterr().err
    shipped = load_agent("sac-halfcheetah")
    assert old.kind == "sb3-sac" and old.describe()["task"] == "HalfCheetah-v3"
    obs = np.random.default_rng(0).normal(size=(32, 17))
    np.testing.assert_array_equal(old.act(obs), shipped.act(obs))
    evaluator = ClosedLoopEvaluator.for_agent(old, episodes=2, max_episode_steps=150)
    assert evaluator.env_spec == "HalfCheetah-v5"
    assert capsys.readouterr().err.count("HalfCheetah-v3 needs mujoco-py") == 1
    np.testing.assert_array_equal(evaluator.evaluate(old).returns,
                                  evaluator.evaluate(shipped).returns)


def _sb3_returns(algo: str, seeds: list[int], steps: int) -> np.ndarray:
    """The SB3 2.x source agent acting through SB3's own VecNormalize (no rlprune code)."""
    folder = DATA / "sb3-2.x" / f"{algo}-InvertedPendulum-v5"
    model = ALGORITHMS[algo.upper()].load_class().load(
        folder / f"{algo}-InvertedPendulum-v5.zip", device="cpu")
    stats = VecNormalize.load(str(folder / "vec_normalize.pkl"),
                              DummyVecEnv([lambda: gym.make("InvertedPendulum-v5")]))
    returns = []
    for seed in seeds:
        env = gym.make("InvertedPendulum-v5", max_episode_steps=steps)
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(stats.normalize_obs(obs[None]), deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action[0])
            total, done = total + reward, terminated or truncated
        returns.append(total)
    return np.array(returns)


@pytest.mark.parametrize("algo", ["ppo", "a2c", "trpo"])
def test_rl_zoo_statistics_are_found_in_the_env_folder_and_applied(algo):
    agent = load_agent(PENDULUM[algo])
    assert Path(agent.meta["vecnormalize"]) == \
        PENDULUM[algo].parent / "InvertedPendulum-v2" / "vecnormalize.pkl"
    evaluator = ClosedLoopEvaluator.for_agent(agent, episodes=3, max_episode_steps=300)
    normalised = evaluator.evaluate(agent).returns
    raw = evaluator.evaluate(SB3Adapter(agent.model, agent.algorithm)).returns
    np.testing.assert_array_equal(normalised, _sb3_returns(algo, [0, 1, 2], 300))
    assert normalised.min() == 300 and raw.max() < 150  # balanced only with its statistics


def test_best_model_and_hugging_face_flat_layouts_find_their_files(tmp_path):
    run = _copy_run("ppo", tmp_path).parent
    shutil.copy(run / "InvertedPendulum-v2.zip", run / "best_model.zip")
    best = rl_zoo_files(run / "best_model.zip")
    assert (best.algo, best.env_id, best.normalized) == ("ppo", "InvertedPendulum-v2", True)
    assert best.vecnormalize == run / "InvertedPendulum-v2" / "vecnormalize.pkl"
    flat = DATA / "sb3-2.x" / "ppo-InvertedPendulum-v5"
    hub = rl_zoo_files(flat / "ppo-InvertedPendulum-v5.zip")
    assert (hub.algo, hub.env_id, hub.vecnormalize) == ("ppo", "InvertedPendulum-v5",
                                                        flat / "vec_normalize.pkl")


@pytest.mark.parametrize("config, normalized", [
    ("normalize: true\n", True),
    ("normalize: 'dict(norm_obs=False, norm_reward=True)'\n", False),
    ("normalize: \"{'norm_obs': True}\"\n", True),
    ("normalize: false\n", False),
    ("normalize: true\nnormalize_kwargs: {norm_obs: false}\n", False),
    ("!!python/object/apply:collections.OrderedDict\n- - - normalize\n    - true\n", True),
])
def test_config_normalize_forms(tmp_path, config, normalized):
    (tmp_path / "agent.zip").write_bytes(b"")
    (tmp_path / "config.yml").write_text(config)
    (tmp_path / "vecnormalize.pkl").write_bytes(b"")
    files = rl_zoo_files(tmp_path / "agent.zip")
    assert files.normalized is normalized
    assert files.statistics() == (tmp_path / "vecnormalize.pkl" if normalized else None)


def test_settings_that_rlprune_cannot_honour_are_refused(tmp_path):
    (tmp_path / "agent.zip").write_bytes(b"")
    (tmp_path / "config.yml").write_text(
        "env_wrapper: rl_zoo3.wrappers.HistoryWrapper\nframe_stack: 1\n")
    with pytest.raises(ValueError, match="env_wrapper: rl_zoo3.wrappers.HistoryWrapper"):
        rl_zoo_files(tmp_path / "agent.zip").check_supported()
    (tmp_path / "config.yml").write_text("normalize: dict(norm_obs=os.system('x'))\n")
    with pytest.raises(ValueError, match="not a dict of literals"):
        rl_zoo_files(tmp_path / "agent.zip")
    (tmp_path / "config.yml").write_text("!!python/object/apply:os.system ['x']\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        rl_zoo_files(tmp_path / "agent.zip")


def test_wrappers_rlprune_applies_become_specs_in_every_config_form(tmp_path):
    (tmp_path / "agent.zip").write_bytes(b"")
    time_feature = "sb3_contrib.common.wrappers.TimeFeatureWrapper"
    for form in (time_feature, f"[{time_feature}]", f"[{{{time_feature}: {{max_steps: 500}}}}]"):
        (tmp_path / "config.yml").write_text(f"env_wrapper: {form}\nframe_stack: 2\n")
        files = rl_zoo_files(tmp_path / "agent.zip")
        files.check_supported()
        kwargs = {"max_steps": 500} if "max_steps" in form else {}
        assert files.env_wrappers == ([time_feature, kwargs], ["frame_stack", {"n": 2}])


def test_env_kwargs_are_applied_when_acting(tmp_path):
    path = _copy_run("ppo", tmp_path)
    (path.parent / "InvertedPendulum-v2" / "env_kwargs.yml").write_text(
        "reset_noise_scale: 0.1\n")
    agent = load_agent(path)
    assert agent.describe()["env_kwargs"] == {"reset_noise_scale": 0.1}
    first = []
    for kwargs in ({}, {"reset_noise_scale": 0.1}):  # default 0.01: positions start in +-0.01
        recorder = StateRecorder()
        ClosedLoopEvaluator("InvertedPendulum-v5", episodes=4, max_episode_steps=2,
                            env_kwargs=kwargs).evaluate(SB3Adapter(agent.model, "PPO"), recorder)
        first.append(np.abs(recorder.steps[0][0][:, :2]).max())
    recorder = StateRecorder()
    ClosedLoopEvaluator.for_agent(agent, episodes=4, max_episode_steps=2).evaluate(agent,
                                                                                 recorder)
    assert first[0] <= 0.01 < first[1] == np.abs(recorder.steps[0][0][:, :2]).max()


def test_gym_era_tqc_acts_like_its_source_and_prunes_every_head(tmp_path):
    old = load_agent(TQC_V1)
    source = load_agent(DATA / "sb3-2.x" / "tqc-Pendulum-v1" / "tqc-Pendulum-v1.zip")
    obs = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    np.testing.assert_array_equal(old.act(obs), source.act(obs))
    assert set(old.components()) == {"actor", "qf0", "qf1"}
    every = list(old.components())
    plan = baseline_plan(ComponentGrouper(old, every), "magnitude", 0.5, 0.05)
    assert {gid.split("/")[0] for gid in plan.removed} == set(every)
    heads = prune_physically(old, plan, every).components()
    assert all(sum(p.numel() for p in heads[name].module.parameters()) <
               sum(p.numel() for p in module.module.parameters())
               for name, module in old.components().items())
    pruned = prune_physically(old, baseline_plan(ComponentGrouper(old), "magnitude", 0.5,
                                                 0.05))
    pruned.save(tmp_path / "pruned.zip")
    np.testing.assert_allclose(load_agent(tmp_path / "pruned.zip").act(obs), pruned.act(obs),
                               rtol=1e-6, atol=1e-6)


def test_cli_takes_the_task_from_the_folder_with_and_without_env():
    args = ["eval", str(PENDULUM["ppo"]), "--episodes", "2", "--max-episode-steps", "60",
            "--json"]
    own = runner.invoke(app, args)
    assert own.exit_code == 0, own.output
    assert "InvertedPendulum-v2 needs mujoco-py (not installable); running " \
           "InvertedPendulum-v5 instead" in own.stderr
    given = runner.invoke(app, [*args, "--env", "InvertedPendulum-v5"])
    assert given.exit_code == 0, given.output
    assert "needs mujoco-py" not in given.stderr
    assert json.loads(own.stdout)["returns"] == json.loads(given.stdout)["returns"] == [60, 60]


def test_cli_refuses_a_normalised_agent_without_statistics(tmp_path):
    path = _copy_run("a2c", tmp_path, stats=False)
    out = tmp_path / "run"
    result = runner.invoke(app, ["prune", str(path), "--out", str(out), "--sparsity", "0.5"])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "VecNormalize-normalised" in line and "--vecnormalize" in line
    assert str(path.parent / "InvertedPendulum-v2") in line and not out.exists()
    stats = PENDULUM["a2c"].parent / "InvertedPendulum-v2" / "vecnormalize.pkl"
    assert load_agent(path, vecnormalize=stats).normalizer is not None


def test_cli_refuses_mismatched_spaces_naming_both_shapes():
    result = runner.invoke(app, ["eval", str(SAC_V3), "--env", "Hopper-v5", "--episodes", "1",
                                 "--max-episode-steps", "5"])
    assert result.exit_code == 2
    assert "expects shape (17,), Hopper-v5 gives shape (11,)" in result.stderr
    assert "pass --env with the task" in result.stderr


def test_a_newer_version_with_other_spaces_is_refused_naming_the_old_id(capsys):
    agent = load_agent(shipped_checkpoint("sac-halfcheetah"))
    evaluator = ClosedLoopEvaluator("Ant-v3", episodes=1, max_episode_steps=5)
    assert "Ant-v3 needs mujoco-py" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"Ant-v5 gives shape \(105,\) \(run for Ant-v3"):
        evaluator.check_agent(agent)


# gym-era file -> (its SB3 2.x source, RL Zoo's statistics or None)
_ZOO_ERA = {
    "dqn": ("CartPole-v1", "CartPole-v1", False),
    "qrdqn": ("CartPole-v1", "CartPole-v1", False),
    "trpo": ("InvertedPendulum-v2", "InvertedPendulum-v5", True),
    "ars": ("InvertedPendulum-v2", "InvertedPendulum-v5", True),
}


@pytest.mark.parametrize("algo", sorted(_ZOO_ERA))
def test_gym_era_files_of_every_zoo_algorithm_act_like_their_source(algo, tmp_path):
    zoo_id, source_id, normalized = _ZOO_ERA[algo]
    old = load_agent(LOGS / algo / f"{zoo_id}_1" / f"{zoo_id}.zip")
    source = load_agent(DATA / "sb3-2.x" / f"{algo}-{source_id}" / f"{algo}-{source_id}.zip")
    assert old.kind == source.kind == f"sb3-{algo}"
    assert ("vecnormalize" in old.meta) == normalized
    evaluator = ClosedLoopEvaluator.for_agent(old, episodes=3, max_episode_steps=200)
    returns = evaluator.evaluate(old).returns
    np.testing.assert_array_equal(returns, evaluator.evaluate(source).returns)
    if algo == "ars":  # RL Zoo's ARS agents are linear: nothing to prune, said so
        with pytest.raises(ValueError, match="no hidden units to prune"):
            ComponentGrouper(old)
        return
    assert returns.min() == 200  # trained agents: they balance
    pruned = prune_physically(old, baseline_plan(ComponentGrouper(old), "magnitude", 0.5,
                                                 0.05))
    pruned.save(tmp_path / "pruned.zip")
    reloaded = old.model.__class__.load(tmp_path / "pruned.zip", device="cpu")
    obs = np.random.default_rng(0).normal(size=(8, *old.observation_space.shape))
    np.testing.assert_array_equal(
        reloaded.predict(pruned._observations(obs), deterministic=True)[0], pruned.act(obs))
