"""Perturbation sets for robust objectives: grids, seeded draws from ranges, and the unseen
systems the held-out check scores."""

from __future__ import annotations

import numpy as np
import pytest

from rlprune.analysis.perturbation_sets import DEFAULT_DRAWS, perturbation_points
from rlprune.search import objective_for
from rlprune.settings import Evaluation
from tests.conftest import linear_policy


def test_draws_are_seeded_inside_their_ranges_and_keep_fixed_values():
    spec = "mass=0.5~1.5,friction=0.8~1.2,obs_noise=0.01,draws=5"
    points = perturbation_points(spec, seed=3)
    assert len(points) == 5 and points == perturbation_points(spec, seed=3)
    assert all(0.5 <= p["mass"] <= 1.5 and 0.8 <= p["friction"] <= 1.2
               and p["obs_noise"] == 0.01 for p in points)
    assert len({p["mass"] for p in points}) == 5  # five different systems
    other = perturbation_points(spec, seed=1003)
    assert not {p["mass"] for p in other} & {p["mass"] for p in points}
    assert len(perturbation_points("mass=0.5~1.5", seed=0)) == DEFAULT_DRAWS


def test_a_grid_is_scored_on_its_midpoints_where_values_must_be_unseen():
    assert perturbation_points("mass=0.5:1.5:3,delay=1", 0) == [
        {"mass": m, "delay": 1.0} for m in (0.5, 1.0, 1.5)]
    unseen = perturbation_points("mass=0.5:1.5:3,delay=1", 0, unseen=True)
    assert unseen == [{"mass": 0.75, "delay": 1.0}, {"mass": 1.25, "delay": 1.0}]


@pytest.mark.parametrize("spec,match", [
    ("mass=1.5~0.5", "LOW must not exceed HIGH"),
    ("mass=0.5~1.5,draws=0", "draws must be a whole number >= 1"),
    ("mass=0.5~x", "NAME=LOW~HIGH with numbers"),
    ("gravity=0.5~1.5", "unknown perturbation|perturbation grid entry"),
    ("mass=0.5~1.5,friction=0.5:1:3", "not both"),
    ("mass=1,draws=4", "draws=N needs ranges"),
])
def test_malformed_sets_are_refused(spec, match):
    with pytest.raises(ValueError, match=match):
        perturbation_points(spec, 0)


def test_the_held_out_objective_plays_systems_the_search_never_saw():
    agent = linear_policy()
    search = Evaluation("dmc/cartpole-swingup", episodes=1, seed=0, max_episode_steps=5,
                        perturb="mass=0.5~1.5,draws=3", aggregate="worst")
    searched = objective_for(agent, search).describe()["perturbations"]
    checked = objective_for(agent, search.held_out(1, 5)).describe()["perturbations"]
    masses = [{p["perturb"]["mass"] for p in parts} for parts in (searched, checked)]
    assert len(masses[0]) == len(masses[1]) == 3 and not masses[0] & masses[1]
    score = objective_for(agent, search)(agent)
    assert score.value == min(score.details["per_perturbation"])
    assert np.isfinite(score.value)
