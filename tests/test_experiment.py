"""The paper-style experiment script in its --quick mode (real, reduced)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_quick(tmp_path: Path, agents: str) -> dict:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "paper_experiment.py"), "--quick",
                    "--agents", agents, "--out", str(tmp_path)], check=True, cwd=ROOT,
                   capture_output=True, text=True)
    return json.loads((tmp_path / "results.json").read_text())


def test_quick_experiment_on_the_autoencoder(tmp_path):
    rows = run_quick(tmp_path, "digits-autoencoder")["rows"]
    methods = {"random", "magnitude", "activation", "grid", "gradient", "cmaes",
               "torch-random", "torch-norm"}
    assert len(rows) == 1 + 2 * len(methods)
    by = {(r["method"], r["target"]): r for r in rows}
    for rho in (0.2, 0.5):
        for method in ("grid", "gradient", "cmaes"):  # chosen on search images, scored on test
            assert by[(method, rho)]["metric"] >= by[("magnitude", rho)]["metric"] - 1e-9
            assert abs(by[(method, rho)]["sparsity"] - rho) <= 0.01
    for name in ("results.md", "digits-autoencoder/metric_vs_sparsity.png",
                 "ae_reconstructions.png"):
        assert (tmp_path / name).stat().st_size > 0
    # A rerun finds every row done and recomputes nothing.
    assert run_quick(tmp_path, "digits-autoencoder")["rows"] == rows


@pytest.mark.slow
def test_quick_experiment_on_the_shipped_world_model(tmp_path):
    rows = run_quick(tmp_path, "cartpole-swingup")["rows"]
    assert {r["method"] for r in rows} >= {"dense", "magnitude", "gradient", "cmaes"}
    assert all("latent_drift" in r for r in rows if r["method"] not in ("dense",))


def test_quick_experiment_on_the_shipped_sac_agent_searches_on_activations(tmp_path):
    rows = run_quick(tmp_path, "sac-halfcheetah")["rows"]
    settings = json.loads((tmp_path / "sac-halfcheetah" / "sweep.json").read_text())["settings"]
    assert settings["criterion"] == "activation"  # weight norms fail on SAC actors
    by = {(r["method"], r["target"]): r for r in rows}
    for rho in (0.2, 0.5):
        assert by[("magnitude", rho)]["action_rmse"] > 0
        for method in ("grid", "gradient", "cmaes"):
            assert abs(by[(method, rho)]["sparsity"] - rho) <= 0.01
