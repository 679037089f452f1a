"""Candidate populations scored in worker processes and on a local Ray instance."""

from __future__ import annotations

import pytest

import rlprune
from rlprune.search import InProcessExecutor, ProcessExecutor, ReturnObjective, search
from tests.conftest import small_tdmpc2


def racing_search(executor):
    evaluator = rlprune.ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=4, seed=0,
                                            action_repeat=2, max_episode_steps=40)
    return search(small_tdmpc2(), ReturnObjective(evaluator, race=True), 0.5, 0.02,
                  method="cmaes", budget=7, scope="group", progress=False,
                  executor=executor)


def outcome(result):
    return [(h["key"], h["status"], h["metric"], h.get("env_steps")) for h in result.history]


@pytest.fixture(scope="module")
def in_process():
    return racing_search(InProcessExecutor())


def test_process_pool_scores_exactly_as_in_process(in_process):
    pooled = racing_search(ProcessExecutor(workers=2))
    assert outcome(pooled) == outcome(in_process)
    assert pooled.metric == in_process.metric and pooled.evaluations == 7


def test_ray_executor_scores_exactly_as_in_process(in_process):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = racing_search(rlprune.search.RayExecutor(workers=2))
    finally:
        ray.shutdown()
    assert outcome(on_ray) == outcome(in_process)


def test_unknown_executor_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown executor 'dask'"):
        rlprune.search.make_executor("dask")
