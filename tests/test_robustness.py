"""Robustness studies on real DMC cartpole: a resumed study reuses a grid point only for
the same agent, by name and weights."""

from __future__ import annotations

import json

import torch

from rlprune.analysis.robustness import robustness_study, weights_id
from tests.conftest import small_tdmpc2

GRID = {"mass": [0.8, 1.2]}


def _study(agents: dict, out) -> dict:
    rows = robustness_study(agents, "dmc/cartpole-swingup", GRID, out, episodes=1,
                            action_repeat=2, max_episode_steps=15)
    return {(r["agent"], r["perturb"]["mass"]): r for r in rows}


def test_a_resumed_study_re_evaluates_an_agent_whose_weights_changed(tmp_path):
    kept, changed = small_tdmpc2(), small_tdmpc2()
    first = _study({"kept": kept, "changed": changed}, tmp_path)
    before = weights_id(changed)
    with torch.no_grad():
        for parameter in changed.components()["pi"].module.parameters():
            parameter.mul_(-1.0)  # another policy prior under the same name
    assert weights_id(changed) != before and weights_id(kept) == weights_id(small_tdmpc2())
    second = _study({"kept": kept, "changed": changed}, tmp_path)
    fresh = _study({"changed": changed}, tmp_path / "fresh")
    for mass in GRID["mass"]:
        assert second["kept", mass] == first["kept", mass]  # reused, wall time included
        assert second["changed", mass]["weights"] == weights_id(changed)
        assert second["changed", mass]["mean"] == fresh["changed", mass]["mean"]
    assert [second["changed", m]["mean"] for m in GRID["mass"]] != \
        [first["changed", m]["mean"] for m in GRID["mass"]]
    saved = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert len(saved) == 4  # the changed agent's rows replaced, not appended
