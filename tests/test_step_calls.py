"""Adapters' cost model: the samples each component processes per control step, counted
by hooks on the real networks while the agent acts; widths recorded when pruning."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from torch import nn

import rlprune
from rlprune.search import baseline_plan
from tests.conftest import small_tdmpc2

ENVS = 4  # acting for 4 envs at once: no padding rows (see ``padded_rows``)


def counted_rows(agent, obs: np.ndarray) -> Counter:
    """Rows each component's first layer processed while ``agent`` acted once on ``obs``
    (hooked there: a component may be a view that acting never calls as a whole)."""
    rows: Counter = Counter()
    first = {name: next(m for m in c.module.modules() if isinstance(m, nn.Linear))
             for name, c in agent.components().items()}
    hooks = [layer.register_forward_hook(
        lambda module, inputs, output, name=name: rows.update({name: len(inputs[0])}))
        for name, layer in first.items()]
    try:
        agent.reset(0)
        agent.act(obs)
    finally:
        for hook in hooks:
            hook.remove()
    return rows


def test_mppi_step_calls_match_what_the_planner_runs():
    agent = small_tdmpc2()
    obs = np.random.default_rng(0).normal(size=(ENVS, 5)).astype(np.float32)
    rows = counted_rows(agent, obs)
    declared = {name: sum(c.samples for c in calls)
                for name, calls in agent.step_calls().items()}
    heads = [n for n in declared if n.startswith("Q")]
    for name in set(declared) - set(heads):
        assert rows[name] == ENVS * declared[name], name
    # Two heads per sample, drawn at random: only their total is fixed.
    assert sum(rows[n] for n in heads) == pytest.approx(ENVS * sum(declared[n] for n in heads))
    planner = agent.agent.planner.cfg
    assert declared["reward"] == planner.iterations * planner.horizon * planner.num_samples


def test_a_policy_runs_its_actor_once_and_never_its_critics():
    agent = rlprune.load_agent("sac-halfcheetah")
    obs = np.random.default_rng(0).normal(size=(ENVS, 17)).astype(np.float32)
    rows = counted_rows(agent, obs)
    assert {n: sum(c.samples for c in calls) for n, calls in agent.step_calls().items()} \
        == {"actor": 1.0}
    assert rows == Counter({"actor": ENVS})


def test_pruning_records_the_new_widths_in_the_agent_config(tmp_path):
    dense = small_tdmpc2()
    plan = baseline_plan(rlprune.ComponentGrouper(dense), "magnitude", 0.5, 0.02)
    pruned = rlprune.prune_physically(dense, plan)
    cfg = pruned.agent.model.cfg
    for name, net in pruned.agent.model.components().items():
        hidden = [m.out_features for m in net.modules() if isinstance(m, nn.Linear)][:-1]
        assert cfg.widths(name) == hidden, name
    assert dense.agent.model.cfg.hidden_widths == {}  # the dense agent is untouched
    before = cfg.to_dict()
    pruned.save(tmp_path / "pruned.pt")
    assert pruned.agent.model.cfg.to_dict() == before  # save writes, never rewrites
