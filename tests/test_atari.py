"""RL Zoo Atari agents (CnnPolicy behind AtariWrapper and a 4-frame stack): rlprune applies
the wrappers their config.yml names, scores whole games as RL Zoo reports them, and prunes
their convolutions to a zip SB3 reloads."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import DQN
from stable_baselines3.common.atari_wrappers import AtariWrapper
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecTransposeImage

import envs  # noqa: F401 - registers the ALE games
from rlprune import ClosedLoopEvaluator, ComponentGrouper, load_agent, prune_physically
from rlprune.search import baseline_plan

pytest.importorskip("ale_py")
GAME = "BreakoutNoFrameskip-v4"
FRAMES = 1200  # raw frames per episode: about 300 agent steps, several lives lost
ATARI = "stable_baselines3.common.atari_wrappers.AtariWrapper"


def _zoo_vec_env(seed: int, max_frames: int | None = None, clip_reward: bool = True):
    """The env RL Zoo trains and evaluates an Atari agent in (SB3's own wrappers)."""
    venv = DummyVecEnv([lambda: AtariWrapper(gym.make(GAME, max_episode_steps=max_frames),
                                             clip_reward=clip_reward)])
    venv.seed(seed)
    return VecTransposeImage(VecFrameStack(venv, 4))


@pytest.fixture(scope="module")
def zoo_dqn(tmp_path_factory):
    """A DQN CnnPolicy saved the RL Zoo way (config.yml names its wrappers)."""
    run = tmp_path_factory.mktemp("logs") / "dqn" / f"{GAME}_1"
    (run / GAME).mkdir(parents=True)
    model = DQN("CnnPolicy", _zoo_vec_env(0), seed=0, device="cpu", buffer_size=200,
                learning_starts=10_000, policy_kwargs={"features_extractor_kwargs":
                                                       {"features_dim": 64}})
    model.learn(50)
    model.save(run / f"{GAME}.zip")
    (run / GAME / "config.yml").write_text(
        f"env_wrapper:\n- {ATARI}\nframe_stack: 4\npolicy: CnnPolicy\n")
    return run / f"{GAME}.zip"


def _sb3_game_scores(model, seeds: list[int]) -> list[float]:
    """Whole-game scores in SB3's vectorised env: lives lost reset the env (the frame stack
    restarts, the game goes on) and unclipped rewards add up until the game is over."""
    scores = []
    for seed in seeds:
        venv = _zoo_vec_env(seed, FRAMES, clip_reward=False)
        obs, total = venv.reset(), 0.0
        while True:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, done, info = venv.step(action)
            total += float(reward[0])
            if done[0] and (info[0]["lives"] == 0 or info[0].get("TimeLimit.truncated")):
                break  # (the env has been reset already: its info is the last step's)
        scores.append(total)
    return scores


def test_atari_agent_acts_through_its_zoo_wrappers_and_scores_whole_games(zoo_dqn):
    agent = load_agent(zoo_dqn)
    assert agent.describe()["env_wrappers"] == [[ATARI, {}], ["frame_stack", {"n": 4}],
                                                ["channels_first", {}]]
    evaluator = ClosedLoopEvaluator.for_agent(agent, episodes=2, max_episode_steps=FRAMES)
    assert evaluator.observation_space.shape == (4, 84, 84)
    result = evaluator.evaluate(agent)
    assert result.error is None
    np.testing.assert_array_equal(result.returns, _sb3_game_scores(agent.model, [0, 1]))
    assert result.lengths.min() > 100  # lives lost did not end the episodes


def test_atari_agent_prunes_its_convolutions_and_keeps_its_wrappers(zoo_dqn, tmp_path):
    agent = load_agent(zoo_dqn)
    grouper = ComponentGrouper(agent)
    assert {g.id for g in grouper.groups} >= {"q_net/extractor.1.cnn.0",
                                              "q_net/extractor.1.linear.0"}
    pruned = prune_physically(agent, baseline_plan(grouper, "magnitude", 0.5, 0.05))
    pruned.save(tmp_path / "pruned.zip")
    reloaded = load_agent(tmp_path / "pruned.zip")  # the card keeps task and wrappers
    assert reloaded.describe()["env_wrappers"] == agent.describe()["env_wrappers"]
    assert reloaded.describe()["task"] == GAME
    frames = np.stack([reloaded.observation_space.sample() for _ in range(4)])
    np.testing.assert_array_equal(DQN.load(tmp_path / "pruned.zip", device="cpu").predict(
        frames, deterministic=True)[0], pruned.act(frames))
    evaluator = ClosedLoopEvaluator.for_agent(reloaded, episodes=1, max_episode_steps=400)
    assert evaluator.evaluate(reloaded).error is None
