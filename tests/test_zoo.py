"""``rlprune zoo`` on a folder laid out as RL Zoo writes it, with real SB3 agents."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlprune.adapters import shipped_checkpoint
from rlprune.cli import app
from rlprune.zoo import find_zoo_agents

FAST = ["--sparsities", "0.5", "--methods", "magnitude", "--episodes", "1",
        "--eval-episodes", "1", "--max-episode-steps", "50"]


@pytest.fixture(scope="module")
def zoo_folder(tmp_path_factory):
    """logs/ALGO/ENV_1/ENV.zip for two shipped agents, a checkpoint to skip, a damaged run."""
    logs = tmp_path_factory.mktemp("zoo") / "logs"
    for name, env in (("sac-halfcheetah", "HalfCheetah-v5"), ("sac-hopper", "Hopper-v5")):
        run = logs / "sac" / f"{env}_1"
        run.mkdir(parents=True)
        shutil.copy(shipped_checkpoint(name), run / f"{env}.zip")
        shutil.copy(shipped_checkpoint(name), run / "rl_model_1000_steps.zip")
    damaged = logs / "td3" / "Walker2d-v5_1"
    damaged.mkdir(parents=True)
    (damaged / "Walker2d-v5.zip").write_bytes(shipped_checkpoint("sac-hopper").read_bytes()[:4000])
    return logs


def test_finds_each_runs_published_agent_and_skips_checkpoints(zoo_folder):
    agents = find_zoo_agents([zoo_folder])
    assert [a.name for a in agents] == ["sac/HalfCheetah-v5_1", "sac/Hopper-v5_1",
                                        "td3/Walker2d-v5_1"]
    assert all(a.path.name == a.name.split("/")[1].rsplit("_", 1)[0] + ".zip"
               for a in agents)


def test_zoo_writes_a_leaderboard_reports_the_damaged_agent_and_resumes(zoo_folder, tmp_path):
    out = tmp_path / "zoo-run"
    first = CliRunner().invoke(app, ["zoo", str(zoo_folder), "--out", str(out), *FAST,
                                     "--json"])
    assert first.exit_code == 0, first.output
    board = json.loads((out / "leaderboard.json").read_text())
    rows = {(r["agent"], r.get("method")): r for r in board["rows"]}
    for agent, env in (("sac/HalfCheetah-v5_1", "HalfCheetah-v5"),
                       ("sac/Hopper-v5_1", "Hopper-v5")):
        dense, pruned = rows[agent, "dense"], rows[agent, "magnitude"]
        assert dense["algo"] == "SAC" and dense["env_id"] == env
        assert dense["pct_of_dense"] == 100.0 and dense["episodes"] == 1
        assert abs(pruned["sparsity"] - 0.5) <= 0.01
        assert pruned["pct_of_dense"] == pytest.approx(100 * pruned["mean"] / dense["mean"])
        # every row carries its measured time per control step
        assert dense["speedup"] == 1.0 and dense["step_ms"] > 0 and pruned["step_ms"] > 0
        assert pruned["speedup"] == pytest.approx(dense["step_ms"] / pruned["step_ms"])
        # the dense row is the agent's own held-out evaluation (seed + 1000)
        single = CliRunner().invoke(app, ["eval", str(zoo_folder / agent / f"{env}.zip"),
                                          "--episodes", "1", "--seed", "1000", "--json"])
        single_mean = json.loads(single.output.strip().splitlines()[-1])["mean"]
        assert single_mean == pytest.approx(dense["mean"])
    damaged = rows["td3/Walker2d-v5_1", None]
    assert "Walker2d-v5.zip" in damaged["error"]
    table = (out / "leaderboard.md").read_text()
    assert all(column in table for column in ("algo", "env_id", "mean", "std", "episodes",
                                              "pct_of_dense", "search_env_steps",
                                              "step_ms", "speedup"))
    assert (out / "leaderboard.png").stat().st_size > 0

    again = CliRunner().invoke(app, ["zoo", str(zoo_folder), "--out", str(out), *FAST,
                                     "--json"])
    assert again.exit_code == 0
    assert "magnitude rho=0.5" not in again.output  # every finished cell was kept
    assert json.loads((out / "leaderboard.json").read_text())["rows"] == board["rows"]


@pytest.mark.parametrize("args, match", [
    (["--methods", "magnitude,nope"], "unknown methods"),
    (["--sparsities", "1.2"], "sparsity must be in"),
])
def test_bad_zoo_settings_exit_2_and_write_nothing(zoo_folder, tmp_path, args, match):
    out = tmp_path / "never"
    run = CliRunner().invoke(app, ["zoo", str(zoo_folder), "--out", str(out), *args])
    assert run.exit_code == 2 and match in run.output
    assert not out.exists()


def test_folder_without_agents_exits_2_and_writes_nothing(tmp_path):
    (tmp_path / "logs" / "sac").mkdir(parents=True)
    out = tmp_path / "never"
    run = CliRunner().invoke(app, ["zoo", str(tmp_path / "logs"), "--out", str(out)])
    assert run.exit_code == 2 and "no agents in" in run.output
    assert len(run.output.strip().splitlines()) == 1
    assert not out.exists()


def test_zoo_over_a_gym_era_rl_zoo_folder_ranks_every_algorithm(tmp_path):
    """tests/data/rl-zoo: SAC, TQC, PPO, A2C, DQN, QR-DQN, TRPO and ARS saved by SB3 1.8
    with gym 0.21, the normalised ones with their statistics in ENV/ as RL Zoo keeps them."""
    logs = Path(__file__).parent / "data" / "rl-zoo" / "logs"
    run = CliRunner().invoke(app, ["zoo", str(logs), "--out", str(tmp_path), *FAST])
    assert run.exit_code == 0, run.output
    rows = json.loads((tmp_path / "leaderboard.json").read_text())["rows"]
    errors = {r["agent"]: r["error"] for r in rows if r.get("error")}
    # ARS's linear policy has nothing to prune: its row says so, the others rank
    assert list(errors) == ["ars/InvertedPendulum-v2_1"]
    page = (tmp_path / "report.html").read_text()  # the leaderboard as one page too
    assert "Zoo leaderboard" in page and "data:image/png" in page
    assert "no hidden units to prune" in errors["ars/InvertedPendulum-v2_1"]
    rows = [r for r in rows if not r.get("error")]
    dense = {r["algo"]: r for r in rows if r["method"] == "dense"}
    assert sorted(dense) == ["A2C", "DQN", "PPO", "QRDQN", "SAC", "TQC", "TRPO"]
    # normalised agents act with their statistics: they balance the pendulum throughout
    assert dense["PPO"]["mean"] == dense["A2C"]["mean"] == dense["TRPO"]["mean"] == 1000.0
    assert dense["TQC"]["pct_of_dense"] is None  # Pendulum's returns are negative
    assert all(r["diff_to_dense"] == pytest.approx(r["mean"] - dense[r["algo"]]["mean"])
               for r in rows)
    # agents side by side in worker processes: the same leaderboard, ARS's reason included
    pooled = CliRunner().invoke(app, ["zoo", str(logs), "--out", str(tmp_path / "pool"), *FAST,
                                      "--executor", "process", "--workers", "2"])
    assert pooled.exit_code == 0, pooled.output
    assert untimed(tmp_path / "pool") == untimed(tmp_path)


def untimed(out: Path) -> list[dict]:
    """The leaderboard's rows without the wall-clock columns."""
    rows = json.loads((out / "leaderboard.json").read_text())["rows"]
    return [{k: v for k, v in r.items() if k not in ("step_ms", "speedup")} for r in rows]
