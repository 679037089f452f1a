"""The closed-loop evaluator on real DMC episodes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rlprune import ClosedLoopEvaluator, load_agent
from rlprune.analysis.evaluate import StateRecorder
from rlprune.search import ReturnObjective
from rlprune.timing import torch_threads
from tests.conftest import batched_and_singles, linear_policy, small_tdmpc2


def test_batched_equals_sequential_for_a_deterministic_policy():
    batched, singles = batched_and_singles(linear_policy(), action_repeat=2,
                                           max_episode_steps=120)
    np.testing.assert_array_equal(batched.returns, [s.returns[0] for s in singles])
    assert batched.env_steps == sum(s.env_steps for s in singles) == 3 * 120
    assert batched.lengths.tolist() == [60, 60, 60]


def test_batched_equals_sequential_for_a_planning_agent():
    """Planner noise comes in one stream per batch row (seed + i): a batch of MPPI
    episodes makes the same draws as each episode planned alone with its own seed."""
    batched, singles = batched_and_singles(small_tdmpc2(), action_repeat=2,
                                           max_episode_steps=120)
    np.testing.assert_array_equal(batched.returns, [s.returns[0] for s in singles])


def test_same_seed_same_returns_for_a_planning_agent():
    agent = small_tdmpc2()
    evaluator = ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=2, seed=3,
                                    action_repeat=2, max_episode_steps=60)
    a, b = evaluator.evaluate(agent), evaluator.evaluate(agent)
    np.testing.assert_array_equal(a.returns, b.returns)
    other = ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=2, seed=4, action_repeat=2,
                                max_episode_steps=60).evaluate(agent)
    assert not np.array_equal(a.returns, other.returns)
    assert a.ci95 > 0 and np.isfinite(a.mean) and a.std >= 0


def test_an_evaluation_acts_on_its_own_thread_count_whatever_the_process_uses():
    """Returns must not depend on the machine's or the worker's thread count: a planner's
    closed loop turns sums rounded another way into other returns."""
    agent = small_tdmpc2()
    act, seen = agent.act, []
    agent.act = lambda *args: (seen.append(torch.get_num_threads()), act(*args))[1]

    def evaluate(**threads):
        return ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=2, seed=3, action_repeat=2,
                                   max_episode_steps=20, **threads).evaluate(agent)

    with torch_threads(3):
        one = evaluate()
        assert not one.any_failed and set(seen) == {1} and torch.get_num_threads() == 3
        seen.clear()
        evaluate(threads=2)
        assert set(seen) == {2}
    with torch_threads(2):
        np.testing.assert_array_equal(evaluate().returns, one.returns)
    # a run state records a thread count only when it is not the default (older states
    # stay resumable)
    assert "threads" not in ReturnObjective(ClosedLoopEvaluator("dmc/cartpole-swingup")).describe()
    assert ReturnObjective(ClosedLoopEvaluator("dmc/cartpole-swingup", threads=2)).describe()[
        "threads"] == 2
    with pytest.raises(ValueError, match="threads must be >= 1"):
        ClosedLoopEvaluator("dmc/cartpole-swingup", threads=0)


def test_recorder_sees_every_visited_state():
    recorder = StateRecorder()
    result = ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=2, seed=0, action_repeat=2,
                                 max_episode_steps=40).evaluate(linear_policy(), recorder)
    obs, actions = recorder.arrays()
    assert obs.shape == (result.lengths.sum(), 5) and actions.shape == (result.lengths.sum(), 1)


def test_space_mismatch_is_reported_before_any_episode():
    evaluator = ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=1)
    with pytest.raises(ValueError, match="observation space mismatch"):
        evaluator.evaluate(linear_policy(obs_dim=3))
    with pytest.raises(ValueError, match="action space mismatch"):
        evaluator.evaluate(linear_policy(action_dim=2))


def test_nan_actions_flag_the_episode_and_the_run_goes_on():
    policy = linear_policy()

    class Broken:
        """Delegates to ``policy`` but emits NaN for env 1 after a few steps."""

        def __init__(self):
            self.calls = 0
            self.observation_space, self.action_space = (policy.observation_space,
                                                         policy.action_space)
            self.kind = "broken"

        def reset(self, seed):
            self.calls = 0

        def act(self, obs, first_step=None):
            self.calls += 1
            actions = policy.act(obs)
            if self.calls > 5:
                actions[1] = np.nan
            return actions

    result = ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=3, seed=0, action_repeat=2,
                                 max_episode_steps=60).evaluate(Broken())
    assert result.failed.tolist() == [False, True, False]
    assert result.lengths.tolist() == [30, 5, 30]


class _ExplodingEnv(__import__("gymnasium").Env):
    """A 5-dim, 1-action env whose simulator fails after a few steps."""

    def __init__(self, render_mode=None):
        gym = __import__("gymnasium")
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
        self.action_space = gym.spaces.Box(-1, 1, (1,), np.float32)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(5, np.float32), {}

    def step(self, action):
        self.t += 1
        if self.t > 3:
            raise RuntimeError("simulation diverged")
        return np.zeros(5, np.float32), 1.0, False, False, {}


def test_env_that_raises_is_recorded_not_fatal():
    import gymnasium

    gymnasium.register("RlpruneExploding-v0", entry_point=_ExplodingEnv)
    result = ClosedLoopEvaluator("RlpruneExploding-v0", episodes=2, seed=5).evaluate(
        linear_policy())
    assert result.any_failed and result.failed.all()
    assert "simulation diverged" in result.error and "(5, 6)" in result.error


def test_bad_evaluator_inputs():
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=0)
    with pytest.raises(ValueError, match="did you mean"):
        ClosedLoopEvaluator("dmc/cartpole-swingupp")
    with pytest.raises(ValueError, match="not a MuJoCo env"):
        ClosedLoopEvaluator("Pendulum-v1", perturb="mass=2")


def test_load_agent_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no agent file|no shipped checkpoint"):
        load_agent(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="no shipped checkpoint named 'nope'"):
        load_agent("nope")
    bogus = tmp_path / "agent.bin"
    bogus.write_bytes(b"123")
    with pytest.raises(ValueError, match="unknown agent format"):
        load_agent(bogus)
    with pytest.raises(TypeError, match="example_inputs"):
        load_agent(nn.Linear(2, 2))


def test_load_agent_passes_adapters_through_and_wraps_modules():
    policy = linear_policy()
    assert load_agent(policy) is policy
    wrapped = load_agent(nn.Linear(3, 2), example_inputs=torch.zeros(1, 3))
    assert wrapped.kind == "module" and set(wrapped.components()) == {"model"}


def test_parts_of_the_episode_list_reproduce_the_full_run():
    agent = small_tdmpc2()
    evaluator = ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=4, seed=5,
                                    action_repeat=2, max_episode_steps=40)
    full = evaluator.evaluate(agent)
    parts = [evaluator.evaluate(agent, episodes=range(0, 1)),
             evaluator.evaluate(agent, episodes=range(1, 4))]
    np.testing.assert_array_equal(full.returns, np.concatenate([p.returns for p in parts]))
    assert parts[1].seeds == (6, 7, 8)
    with pytest.raises(ValueError, match="contiguous part"):
        evaluator.evaluate(agent, episodes=range(2, 6))
