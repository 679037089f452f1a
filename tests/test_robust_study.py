"""scripts/robust_study.py on a small real TD-MPC2 agent and real DMC cartpole: every agent's
worst case is the worst held-out grid point, kept with its CI and place for the README."""

from __future__ import annotations

import json
import sys

from tests.conftest import load_script, small_tdmpc2


def test_the_study_reports_each_agents_worst_grid_point_with_its_ci(tmp_path, monkeypatch):
    agent = small_tdmpc2()
    agent.meta.update(task="dmc/cartpole-swingup", action_repeat=2)
    agent.save(tmp_path / "agent.pt")
    out = tmp_path / "study"
    monkeypatch.setattr(sys, "argv", [
        "robust_study.py", "--agent", str(tmp_path / "agent.pt"), "--sparsities", "0.5",
        "--budget", "2", "--episodes", "1", "--max-episode-steps", "10",
        "--held-out-episodes", "2", "--held-out-max-steps", "10", "--distill-steps", "5",
        "--search-systems", "mass=0.8~1.2,draws=2", "--held-out-grid", "mass=0.5:1.5:3",
        "--seed", "3", "--out", str(out)])
    load_script("robust_study").main()

    study = json.loads((out / "study.json").read_text())
    rows = json.loads((out / "held-out" / "results.json").read_text())["rows"]
    assert study["seed"] == 3
    assert set(study["agents"]) == {"dense", "magnitude 50%", "nominal cmaes 50%",
                                    "robust cmaes 50%", "distill-small 50%"}
    for name, summary in study["agents"].items():
        own = [r for r in rows if r["agent"] == name]
        assert len(own) == 3
        worst = min(own, key=lambda r: r["mean"])
        assert (summary["worst"], summary["worst_ci95"], summary["worst_at"]) == (
            worst["mean"], worst["ci95"], worst["perturb"])
        assert summary["nominal"] == next(r["mean"] for r in own
                                          if r["perturb"]["mass"] == 1.0)
    table = load_script("readme_numbers").render_robust_study(study)
    dense = study["agents"]["dense"]
    assert f"| dense | {dense['nominal']:.0f} | {dense['mean']:.0f} | " \
           f"{dense['worst']:.0f} +- {dense['worst_ci95']:.0f} | 100% |" in table
