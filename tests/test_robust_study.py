"""scripts/robust_study.py on a small real TD-MPC2 agent and real DMC cartpole: every agent's
worst case is the worst held-out grid point, kept with its CI and place for the README, and
runs with other seeds line up in one README table only when measured alike."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from tests.conftest import load_script, small_tdmpc2


def _study(tmp_path, monkeypatch, seed: int, held_out_episodes: int = 2):
    """Runs the study on the small agent; its output folder."""
    agent = tmp_path / "agent.pt"
    if not agent.exists():
        model = small_tdmpc2()
        model.meta.update(task="dmc/cartpole-swingup", action_repeat=2)
        model.save(agent)
    out = tmp_path / f"study-{seed}-{held_out_episodes}"
    monkeypatch.setattr(sys, "argv", [
        "robust_study.py", "--agent", str(agent), "--sparsities", "0.5",
        "--budget", "2", "--episodes", "1", "--max-episode-steps", "10",
        "--held-out-episodes", str(held_out_episodes), "--held-out-max-steps", "10",
        "--distill-steps", "5", "--finetune", "5",
        "--search-systems", "mass=0.8~1.2,draws=2", "--held-out-grid", "mass=0.5:1.5:3",
        "--seed", str(seed), "--threads", "1", "--out", str(out)])
    threads = torch.get_num_threads()
    try:
        load_script("robust_study").main()
    finally:
        torch.set_num_threads(threads)  # --threads 1 must not leak into later tests
    return out


def test_the_study_reports_each_agents_worst_grid_point_with_its_ci(tmp_path, monkeypatch):
    out = _study(tmp_path, monkeypatch, seed=3)
    study = json.loads((out / "study.json").read_text())
    rows = json.loads((out / "held-out" / "results.json").read_text())["rows"]
    assert (study["seed"], study["threads"], study["finetune"]) == (3, 1, 5)
    assert set(study["agents"]) == {"dense", "magnitude 50%", "nominal cmaes 50%",
                                    "nominal cmaes+ft 50%", "robust cmaes 50%",
                                    "robust cmaes+ft 50%", "distill-small 50%"}
    for name, summary in study["agents"].items():
        own = [r for r in rows if r["agent"] == name]
        assert len(own) == 3
        worst = min(own, key=lambda r: r["mean"])
        assert (summary["worst"], summary["worst_ci95"], summary["worst_at"]) == (
            worst["mean"], worst["ci95"], worst["perturb"])
        assert type(summary.get("kept")) is (bool if name.endswith("+ft 50%") else type(None))
        assert summary["nominal"] == next(r["mean"] for r in own
                                          if r["perturb"]["mass"] == 1.0)
    table = load_script("readme_numbers").render_robust_study(study)
    dense = study["agents"]["dense"]
    assert f"| dense | {dense['nominal']:.0f} | {dense['mean']:.0f} | " \
           f"{dense['worst']:.0f} +- {dense['worst_ci95']:.0f} | 100% |" in table


def test_runs_with_other_seeds_share_a_table_only_when_measured_alike(tmp_path, monkeypatch):
    runs = [_study(tmp_path, monkeypatch, seed) for seed in (3, 4)]
    script = load_script("readme_numbers")
    collected = script.collect_robust_runs(runs, 0.5)
    assert [run["seed"] for run in collected["runs"]] == [3, 4]
    lines = script.render_robust_runs(collected).splitlines()
    for line, run in zip(lines[2:4], collected["runs"]):
        tuned = run["robust cmaes+ft"]
        assert line.startswith(f"| `mass=0.8~1.2,draws=2` | {run['seed']} | 1 | 5 | ")
        assert f"{tuned['worst']:.0f} +- {tuned['worst_ci95']:.0f} (" in line
        assert line.endswith(f" | {tuned['worst'] / collected['dense']['worst']:.1%} |")
    other_episodes = _study(tmp_path, monkeypatch, seed=4, held_out_episodes=3)
    with pytest.raises(ValueError, match="not measured alike"):
        script.collect_robust_runs([runs[0], other_episodes], 0.5)
