"""The autoencoder use case: shipped checkpoint, grouping, pruning, PSNR, IDX loading."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import rlprune
from rlprune.cli import app
from rlprune.models.digits_autoencoder import digits_split, digits_splits, load_idx
from rlprune.pruning.masking import ChannelMasks
from rlprune.search import baseline_plan, importance_scores

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "digits-autoencoder.pt"


@pytest.fixture(scope="module")
def autoencoder():
    return rlprune.load_agent(SHIPPED)


def test_shipped_autoencoder_reconstructs_held_out_digits(autoencoder):
    _, test = digits_split(0)
    assert autoencoder.kind == "autoencoder"
    assert autoencoder.psnr(test) == pytest.approx(autoencoder.meta["test_psnr"], abs=1e-4)
    assert autoencoder.psnr(test) > 17.0  # far above predicting the mean image
    mean_image = test.mean(0, keepdim=True).expand_as(test)
    assert autoencoder.psnr(test) > 10 * np.log10(1 / torch.mean((mean_image - test) ** 2))


def test_groups_keep_the_code_width(autoencoder):
    grouper = rlprune.ComponentGrouper(autoencoder)
    assert sorted(g.id for g in grouper.groups) == ["decoder/0", "decoder/2", "encoder/0",
                                                    "encoder/2"]


@pytest.mark.parametrize("rho", [0.2, 0.5, 0.8])
def test_pruned_autoencoder_matches_masks_and_reloads(autoencoder, rho, tmp_path):
    _, test = digits_split(0)
    grouper = rlprune.ComponentGrouper(autoencoder)
    plan = baseline_plan(grouper, "magnitude", rho, 0.02)
    assert abs(plan.sparsity - rho) <= 0.02
    with ChannelMasks(grouper) as masks:
        masks.set_plan(plan)
        masked = autoencoder.psnr(test)
    pruned = rlprune.prune_physically(autoencoder, plan)
    assert pruned.psnr(test) == pytest.approx(masked, abs=1e-4)
    assert pruned.model.cfg.bottleneck == 16
    pruned.save(tmp_path / "ae.pt")
    reloaded = rlprune.load_agent(tmp_path / "ae.pt")
    assert reloaded.psnr(test) == pytest.approx(pruned.psnr(test), abs=1e-6)
    assert sum(p.numel() for p in reloaded.model.parameters()) == plan.cost.params


def test_code_interface_prunes_the_bottleneck_consistently(autoencoder, tmp_path):
    _, test = digits_split(0)
    grouper = rlprune.ComponentGrouper(autoencoder, interfaces=["code"])
    coefficients = rlprune.Coefficients.from_dict([g.id for g in grouper.groups],
                                                  {"interface/code": 0.2})
    ranking = rlprune.ChannelRanking(grouper, importance_scores(grouper, "l2"))
    plan = ranking.plan(coefficients, 0.3, 0.02)
    assert plan.removed["interface/code"]
    with ChannelMasks(grouper) as masks:
        masks.set_plan(plan)
        masked = autoencoder.psnr(test)
    pruned = rlprune.prune_physically(autoencoder, plan)
    assert pruned.code_width == 16 - len(plan.removed["interface/code"])
    assert pruned.psnr(test) == pytest.approx(masked, abs=1e-4)
    pruned.save(tmp_path / "ae.pt")
    reloaded = rlprune.load_agent(tmp_path / "ae.pt")
    assert reloaded.model.cfg.bottleneck == pruned.code_width
    assert reloaded.psnr(test) == pytest.approx(pruned.psnr(test), abs=1e-6)


def test_idx_loader_round_trip_and_errors(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    header = bytes([0, 0, 0x08, 3]) + b"".join(d.to_bytes(4, "big") for d in images.shape)
    path = tmp_path / "images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(header + images.tobytes())
    loaded = load_idx(path)
    assert loaded.shape == (5, 784)
    np.testing.assert_allclose(loaded.numpy(), images.reshape(5, -1) / 255.0, rtol=1e-6)
    with pytest.raises(FileNotFoundError):
        load_idx(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03")
    with pytest.raises(ValueError, match="not an IDX file"):
        load_idx(bad)


def test_search_validation_and_test_images_are_disjoint_and_unseen_in_training(tmp_path):
    splits = digits_splits()
    rows = {name: {tuple(image.tolist()) for image in images}
            for name, images in splits.items()}
    names = list(rows)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not rows[a] & rows[b], (a, b)
    assert min(len(images) for images in splits.values()) > 100
    run = CliRunner().invoke(app, ["prune", "digits-autoencoder", "--out", str(tmp_path),
                                   "--sparsity", "0.3", "--finetune", "20"])
    assert run.exit_code == 0, run.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["held_out"]["objective"]["split"] == "test"  # recorded in the run
    assert report["finetune"]["validation"]["split"] == "validation"
    searched = json.loads((tmp_path / "search_state.json").read_text())["objective"]
    assert searched["split"] == "search"
