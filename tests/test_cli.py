"""The command line end to end on shipped checkpoints (reduced budgets)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rlprune.analysis.evaluate import ClosedLoopEvaluator
from rlprune.cli import app
from rlprune.search import ReturnObjective
from rlprune.sweep import sweep
from tests.conftest import small_tdmpc2

ROOT = Path(__file__).resolve().parents[1]
AE = str(ROOT / "checkpoints" / "digits-autoencoder.pt")
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_inspect_lists_groups_as_json():
    result = run("inspect", "cartpole-swingup", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert len(payload["groups"]) == 17 and payload["params"] == 860896


def test_eval_prints_one_json_object_with_the_promised_keys():
    result = run("eval", "cartpole-swingup", "--episodes", "2", "--max-episode-steps", "20",
                 "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {"mean", "std", "ci95", "returns", "lengths", "env_steps", "seed"} <= set(payload)
    assert payload["env_steps"] == sum(payload["lengths"]) * 2 == 40


def test_prune_writes_agent_report_and_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["prune", AE, "--out", str(out), "--sparsity", "0.5", "--method", "cmaes",
            "--budget", "6", "--scope", "group", "--json"]
    first = run(*args)
    assert first.exit_code == 0, first.output
    payload = json.loads(first.stdout)
    assert abs(payload["sparsity"] - 0.5) <= 0.01 and payload["evaluations"] == 6
    assert {p.name for p in out.iterdir()} == {"pruned.pt", "report.json",
                                               "search_state.json", "report.md",
                                               "report.html", "kept_channels.png"}
    again = run(*args)  # a finished run resumes from its state: no new evaluations
    assert json.loads(again.stdout)["metric"] == payload["metric"]
    pruned = run("inspect", str(out / "pruned.pt"), "--json")
    assert json.loads(pruned.stdout)["params"] < 0.51 * 35280
    assert run("report", str(out)).exit_code == 0
    assert "### Coefficients" in (out / "report.md").read_text()
    assert "### Held-out check" in (out / "report.md").read_text()  # dense vs pruned


def test_prune_shrinks_the_latent_with_a_data_aware_criterion(tmp_path):
    out = tmp_path / "latent"
    result = run("prune", "cartpole-swingup", "--out", str(out), "--sparsity", "0.5",
                 "--method", "grid", "--budget", "3", "--criterion", "activation",
                 "--interfaces", "latent", "--episodes", "1", "--max-episode-steps", "20",
                 "--eval-episodes", "2", "--eval-max-episode-steps", "20", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert abs(payload["sparsity"] - 0.5) <= 0.01
    # The result is checked against the dense agent on held-out episodes (seeds 1000..)
    check = payload["held_out"]
    dense = json.loads(run("eval", "cartpole-swingup", "--episodes", "2", "--seed", "1000",
                           "--max-episode-steps", "20", "--json").stdout)
    assert check["dense"]["returns"] == dense["returns"]
    assert check["difference"]["mean"] == pytest.approx(
        np.mean(check["pruned"]["returns"]) - np.mean(dense["returns"]))
    assert check["dense"]["iqm_ci95"][0] <= check["dense"]["iqm"] <= check["dense"]["iqm_ci95"][1]
    assert "interface/latent" in payload["coefficients"]
    # Stability of the shrunk latent on the dense agent's held-out trajectories, with the
    # loop it is about: the latent moved, so the encoders now disagree.
    stability = json.loads((out / "report.json").read_text())["held_out"]["stability"]
    assert stability["latent_drift"] > 0 and len(stability["rollout_error"]) == 3
    assert stability["loop"].startswith("policy-prior loop")
    assert "### Stability" in (out / "report.md").read_text()
    # The visited states are measured once and kept for a resumed run.
    assert (out / "visited_inputs.pt").exists() and payload["env_steps"] == 4 * 20
    described = json.loads(run("inspect", str(out / "pruned.pt"), "--json").stdout)["agent"]
    assert described["latent_dim"] == len(
        described["meta"].get("interface_index", {}).get("latent", range(64)))


def test_sweep_writes_table_and_plot_resumes_and_reports(tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", AE, "--out", str(out), "--sparsities", "0.2,0.5", "--methods",
            "magnitude,random,cmaes", "--budget", "3", "--json"]
    first = run(*args)
    assert first.exit_code == 0, first.output
    rows = json.loads(first.stdout)["rows"]
    assert [(r["method"], r["target"]) for r in rows] == [
        ("dense", 0.0), ("magnitude", 0.2), ("random", 0.2), ("cmaes", 0.2),
        ("magnitude", 0.5), ("random", 0.5), ("cmaes", 0.5)]
    assert all(abs(r["sparsity"] - r["target"]) <= 0.01 for r in rows)
    assert (out / "metric_vs_sparsity.png").stat().st_size > 0
    assert json.loads(run(*args).stdout)["rows"] == rows  # resumed: nothing recomputed
    reported = run("report", str(out))
    assert reported.exit_code == 0, reported.output
    text = (out / "report.md").read_text()
    assert "![metric vs sparsity](metric_vs_sparsity.png)" in text and "| cmaes |" in text


def test_sweep_on_a_world_model_reports_latent_stability(tmp_path):
    result = run("sweep", "cartpole-swingup", "--out", str(tmp_path), "--sparsities", "0.3",
                 "--methods", "random", "--eval-episodes", "2", "--max-episode-steps",
                 "10", "--eval-max-episode-steps", "10", "--json")
    assert result.exit_code == 0, result.output
    pruned = json.loads(result.stdout)["rows"][1]
    assert pruned["latent_drift"] > 0 and max(pruned["rollout_error"]) > 0
    assert pruned["jacobian_radius_max"] > 0
    assert pruned["eval_env_steps"] == 2 * 10


def test_a_resumed_sweep_does_not_replay_the_dense_agent(tmp_path, monkeypatch):
    agent = small_tdmpc2()

    def episodes(seed: int) -> ReturnObjective:
        return ReturnObjective(ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=2,
                                                   seed=seed, action_repeat=2,
                                                   max_episode_steps=15))
    report = episodes(1000)
    first = sweep(agent, episodes(0), [0.3], ["magnitude"], tmp_path,
                  report_objective=report, log=lambda _: None)
    played = []
    evaluate = report.evaluator.evaluate
    monkeypatch.setattr(report.evaluator, "evaluate",
                        lambda *a, **k: played.append(1) or evaluate(*a, **k))
    rows = sweep(agent, episodes(0), [0.3, 0.4], ["magnitude"], tmp_path,
                 report_objective=report, log=lambda _: None)
    assert len(played) == 1 and rows[:2] == first  # only the new row's episodes
    assert rows[2]["target"] == 0.4 and rows[2]["latent_drift"] > 0


def test_export_writes_checked_onnx_graphs(tmp_path):
    result = run("export", AE, "--onnx", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    graphs = json.loads(result.stdout)["graphs"]
    assert [Path(g["path"]).name for g in graphs] == ["autoencoder.onnx", "encoder.onnx",
                                                     "decoder.onnx"]
    assert all(g["max_abs_error"] < 1e-4 for g in graphs)


def test_robustness_grid_dense_vs_pruned(tmp_path):
    pruned_dir = tmp_path / "pruned"
    assert run("prune", "cartpole-swingup", "--out", str(pruned_dir), "--sparsity", "0.3",
               "--episodes", "1", "--max-episode-steps", "10", "--eval-episodes", "0"
               ).exit_code == 0
    args = ["robustness", "cartpole-swingup", str(pruned_dir / "pruned.pt"), "--perturb",
            "mass=0.5:2:2,obs_noise=0:0.1:2", "--out", str(tmp_path / "rob"), "--episodes",
            "1", "--max-episode-steps", "10", "--json"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert len(payload["rows"]) == 2 * 2 * 2  # agents x mass x noise
    assert (tmp_path / "rob" / "robustness.png").stat().st_size > 0
    assert json.loads(run(*args).stdout)["rows"] == payload["rows"]  # resumed, not redone
    other = run(*args[:-1], "--seed", "5")
    assert other.exit_code == 2 and "holds a robustness study with other settings" in \
        other.stderr  # other seeds would mix into the same table
    assert run("report", str(tmp_path / "rob")).exit_code == 0
    assert "## Robustness on dmc/cartpole-swingup" in (tmp_path / "rob" / "report.md").read_text()


def test_a_killed_prune_resumes_to_the_uninterrupted_result(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    def command(out):
        return [sys.executable, "-m", "rlprune.cli", "prune", AE, "--out", str(out),
                "--sparsity", "0.5", "--method", "cmaes", "--budget", "40", "--scope",
                "group", "--json"]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(killed), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    state = killed / "search_state.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and len(json.loads(state.read_text())["history"]) >= 5:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(json.loads(state.read_text())["history"])
    assert not (killed / "pruned.pt").exists() and partial < 40  # really interrupted
    resumed = json.loads(subprocess.run(command(killed), cwd=ROOT, capture_output=True,
                                        text=True, check=True).stdout)
    straight = json.loads(subprocess.run(command(tmp_path / "straight"), cwd=ROOT,
                                         capture_output=True, text=True, check=True).stdout)
    for key in ("metric", "coefficients", "evaluations", "sparsity"):
        assert resumed[key] == straight[key]


def test_prune_with_distillation_fine_tuning_reports_both_metrics(tmp_path):
    result = run("prune", AE, "--out", str(tmp_path), "--sparsity", "0.5", "--finetune",
                 "200", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["finetune"]["metric"] > payload["metric"] + 3  # PSNR (dB)
    assert payload["finetune"]["kept"]
    import rlprune

    saved = rlprune.load_agent(tmp_path / "pruned.pt")  # the fine-tuned weights were saved
    # kept or dropped on the validation images, not the search's
    assert saved.psnr(saved.evaluation_images("validation")) == pytest.approx(
        payload["finetune"]["metric"])
    assert json.loads((tmp_path / "report.json").read_text())["finetune"]["steps"] == 200


def test_sweep_with_fine_tuning_adds_tuned_rows(tmp_path):
    result = run("sweep", AE, "--out", str(tmp_path), "--sparsities", "0.5", "--methods",
                 "magnitude", "--finetune", "150", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in json.loads(result.stdout)["rows"]}
    assert rows["magnitude+ft"]["metric"] > rows["magnitude"]["metric"] + 3
    assert rows["magnitude+ft"]["sparsity"] == rows["magnitude"]["sparsity"]
    import rlprune

    for row in rows.values():  # every pruned row keeps its agent, scored as saved
        if row["method"] != "dense":
            kept = rlprune.load_agent(tmp_path / row["agent_file"])
            assert kept.psnr(kept.evaluation_images("test")) == pytest.approx(row["metric"])


def test_prune_says_what_it_does_after_the_search_unless_quiet(tmp_path):
    loud = run("prune", AE, "--out", str(tmp_path / "a"), "--sparsity", "0.3", "--finetune",
               "10")
    assert loud.exit_code == 0, loud.output
    lines = loud.stderr.splitlines()
    assert "rlprune: fine-tuning, 10 distillation steps..." in lines
    assert any(line.startswith("rlprune: held-out check of the dense and the pruned agent: "
                               "done in") for line in lines)
    quiet = run("prune", AE, "--out", str(tmp_path / "b"), "--sparsity", "0.3", "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_prune_chooses_round_to_from_the_measured_width_staircase(tmp_path):
    out = tmp_path / "auto"
    result = run("prune", "sac-halfcheetah", "--sparsity", "0.5", "--round-to", "auto",
                 "--episodes", "1", "--max-episode-steps", "20", "--eval-episodes", "0",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    chosen = int(re.search(r"--round-to auto: (\d+)", result.stderr).group(1))
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["search"]["round_to"] == chosen
    plan = report["result"]["plan"]
    assert all((plan["channels"][g] - len(gone)) % chosen == 0
               for g, gone in plan["removed"].items())
    assert abs(plan["sparsity"] - 0.5) <= 0.01  # halved until the target stays reachable


def test_prune_envelope_compares_dense_and_pruned_over_a_grid(tmp_path):
    out = tmp_path / "run"
    result = run("prune", "sac-halfcheetah", "--sparsity", "0.5", "--method", "magnitude",
                 "--eval-episodes", "2", "--eval-max-episode-steps", "60", "--out", str(out),
                 "--envelope", "mass=0.5:1.5:2,obs_noise=0:0.05:2", "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    rows = json.loads((out / "envelope" / "results.json").read_text())["rows"]
    assert len(rows) == 8 and {r["agent"] for r in rows} == {"dense", "pruned"}
    nominal = {r["agent"]: r["mean"] for r in rows
               if r["perturb"] == {"mass": 1.0, "obs_noise": 0.0}}
    assert not nominal  # 0.5:1.5:2 is {0.5, 1.5}: no nominal point in this grid
    envelope = report["envelope"]
    for name in ("dense", "pruned"):
        assert envelope["worst"][name]["mean"] == min(r["mean"] for r in rows
                                                      if r["agent"] == name)
    drops = [p["mean"] - d["mean"] for p in rows if p["agent"] == "pruned"
             for d in rows if d["agent"] == "dense" and d["perturb"] == p["perturb"]]
    assert envelope["breaks_first"]["pruned - dense"] == pytest.approx(min(drops))
    page = (out / "report.md").read_text()
    assert "Robustness envelope" in page and (out / "envelope.png").exists()


def test_prune_with_a_bad_envelope_exits_2_before_searching(tmp_path):
    result = run("prune", "sac-halfcheetah", "--sparsity", "0.5", "--out", str(tmp_path / "x"),
                 "--envelope", "gravity=1:2:3")
    assert result.exit_code == 2 and "perturbation grid entry" in result.output
    assert not (tmp_path / "x").exists()
