"""The distill-small baseline: a dense network of the pruned widths, weights afresh,
distilled from the dense agent on its visited states."""

from __future__ import annotations

import rlprune
from rlprune.search import objective_for
from rlprune.search.visited import VisitedInputs
from rlprune.settings import Evaluation
from rlprune.small_dense import small_dense_baseline
from rlprune.sweep import sweep


def _params(agent) -> int:
    return sum(p.numel() for c in agent.components().values() for p in c.module.parameters())


def test_the_small_network_has_the_pruned_size_new_weights_and_learns_from_the_dense(
        tmp_path):
    dense = rlprune.load_agent("digits-autoencoder")
    objective = objective_for(dense, Evaluation())
    visited = VisitedInputs(objective, dense, tmp_path)
    untrained, rho = small_dense_baseline(visited, steps=0)(dense, 0.5, 0)
    trained, _ = small_dense_baseline(visited, steps=300)(dense, 0.5, 0)
    magnitude = rlprune.prune_physically(dense, rlprune.search.baseline_plan(
        rlprune.ComponentGrouper(dense), "magnitude", 0.5, 0.01))
    assert abs(rho - 0.5) <= 0.01 and _params(trained) == _params(magnitude)
    first = next(iter(trained.components().values())).module
    pruned_first = next(iter(magnitude.components().values())).module
    assert not all(p.equal(q) for p, q in zip(first.parameters(), pruned_first.parameters()))
    # distillation is what makes it work: clearly better than its fresh initialisation
    assert objective(trained).value > objective(untrained).value + 2  # dB


def test_sweep_rows_of_the_baseline_beside_magnitude(tmp_path):
    dense = rlprune.load_agent("digits-autoencoder")
    objective = objective_for(dense, Evaluation())
    extra = {"distill-small": small_dense_baseline(VisitedInputs(objective, dense, tmp_path),
                                                   steps=100)}
    rows = sweep(dense, objective, [0.5], ["magnitude", "distill-small"], tmp_path,
                 extra_methods=extra, log=lambda line: None)
    assert [r["method"] for r in rows] == ["dense", "magnitude", "distill-small"]
    assert (tmp_path / rows[-1]["agent_file"]).exists()
