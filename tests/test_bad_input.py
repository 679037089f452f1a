"""Every bad input in the README's table: one clear line on stderr, exit 2, nothing written.

Placeholders in the argument lists are replaced by real files made here: OUT (a path
that does not exist yet), FILE (a plain file), and broken agent files of each kind.
"""

from __future__ import annotations

import fractions
import re
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import rlprune
from rlprune.cli import app

ROOT = Path(__file__).resolve().parents[1]
AE = str(ROOT / "checkpoints" / "digits-autoencoder.pt")
DATA = ROOT / "tests" / "data"
ZOO_PPO = DATA / "rl-zoo" / "logs" / "ppo" / "InvertedPendulum-v2_1"
MULTITASK = str(DATA / "tdmpc2-official" / "tiny-multitask-3.pt")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "file.txt").write_text("not a folder")
    (folder / "corrupt.pt").write_bytes(b"\x00\x01 definitely not a checkpoint")
    torch.save({"format": "tdmpc2-agent", "hook": fractions.Fraction(1, 3)},
               folder / "pickled.pt")
    torch.save({"weight": torch.zeros(3)}, folder / "foreign.pt")
    with zipfile.ZipFile(folder / "broken.zip", "w") as zf:
        zf.writestr("data", "{not json")
        zf.writestr("policy.pth", b"nothing")
    no_stats = folder / "logs" / "ppo" / "InvertedPendulum-v2_1"  # RL Zoo run, pkl lost
    (no_stats / "InvertedPendulum-v2").mkdir(parents=True)
    shutil.copy(ZOO_PPO / "InvertedPendulum-v2.zip", no_stats)
    for settings in (ZOO_PPO / "InvertedPendulum-v2").glob("*.yml"):
        shutil.copy(settings, no_stats / "InvertedPendulum-v2")
    (folder / "truncated.pt").write_bytes(Path(MULTITASK).read_bytes()[:100_000])
    (folder / "empty-zoo" / "sac").mkdir(parents=True)
    nan_agent = rlprune.load_agent("cartpole-swingup")
    with torch.no_grad():
        for p in nan_agent.agent.model.pi.parameters():
            p.fill_(float("nan"))
    nan_agent.save(folder / "nan.pt")
    from sb3_contrib import ARS

    ARS("LinearPolicy", "Pendulum-v1", device="cpu").save(folder / "ars-linear.zip")
    run = CliRunner().invoke(app, ["prune", AE, "--out", str(folder / "prune-run"),
                                   "--sparsity", "0.2"])
    assert run.exit_code == 0, run.output
    return {"FILE": str(folder / "file.txt"), "CORRUPT": str(folder / "corrupt.pt"),
            "PICKLED": str(folder / "pickled.pt"), "FOREIGN": str(folder / "foreign.pt"),
            "BROKEN_ZIP": str(folder / "broken.zip"), "NAN": str(folder / "nan.pt"),
            "PRUNE_RUN": str(folder / "prune-run"), "MISSING": str(folder / "missing.pt"),
            "NO_STATS": str(no_stats / "InvertedPendulum-v2.zip"),
            "TRUNCATED": str(folder / "truncated.pt"), "EMPTY_ZOO": str(folder / "empty-zoo"),
            "LINEAR": str(folder / "ars-linear.zip")}


SWEEP = ["sweep", AE, "--out", "OUT"]
PRUNE = ["prune", AE, "--out", "OUT", "--sparsity", "0.5"]
CASES = [
    # files
    (["eval", "MISSING"], "no agent file at"),
    (["eval", "nope"], "no shipped checkpoint named 'nope'"),
    (["eval", "CORRUPT"], "unknown agent format"),
    (["eval", "PICKLED"], "pickled Python objects"),
    (["eval", "FOREIGN"], "unknown agent format None"),
    (["eval", "BROKEN_ZIP"], "broken.zip"),
    (["inspect", "FILE"], "unknown agent format"),
    # users' agents
    (["eval", "NO_STATS"], "trained on VecNormalize-normalised observations but no"),
    (["eval", "sac-halfcheetah", "--vecnormalize", "MISSING"], "no VecNormalize statistics at"),
    (["eval", "sac-halfcheetah", "--env", "Hopper-v5"], r"expects shape \(17,\), Hopper-v5 gives"),
    (["eval", MULTITASK, "--task", "nope"], "unknown task 'nope'"),
    (["eval", "TRUNCATED"], "truncated or damaged"),
    (["eval", "cartpole-swingup", "--planner", "garbage"], "key=value pairs"),
    (["eval", "sac-halfcheetah", "--task", "walker-walk"], "takes no --task"),
    (["zoo", "EMPTY_ZOO", "--out", "OUT"], "no agents in"),
    # agent kind, env and spaces
    (["eval", AE], "autoencoder agent does not act in an environment"),
    (["eval", "cartpole-swingup", "--env", "dmc/cartpole-swingupp"], "did you mean"),
    (["eval", "cartpole-swingup", "--env", "CartPole-v9"], "unknown env 'CartPole-v9'"),
    (["eval", "cartpole-swingup", "--env", "Pendulum-v1", "--episodes", "1"],
     "observation space mismatch"),
    (["eval", "NAN", "--episodes", "2", "--max-episode-steps", "10"],
     "2 of 2 episodes failed on a non-finite action or reward"),
    (["eval", "cartpole-swingup", "--episodes", "0"], "episodes must be >= 1"),
    # videos
    (["eval", "sac-halfcheetah", "--video", "/nonexistent/dir/v.gif"], "cannot write into"),
    (["eval", "sac-halfcheetah", "--video", "OUT.avi"], "give a .gif or .mp4 file name"),
    (["eval", "sac-halfcheetah", "--side-by-side", "sac-halfcheetah"],
     "--side-by-side goes with --video PATH"),
    (["prune", AE, "--out", "OUT", "--sparsity", "0.5", "--video"],
     "autoencoder agent does not act"),
    # perturbations
    (["eval", "cartpole-swingup", "--perturb", "gravity=2"], "unknown perturbation"),
    (["eval", "cartpole-swingup", "--perturb", "mass=abc"],
     "perturbation mass='abc': value must be a number"),
    ([*PRUNE[:1], "cartpole-swingup", *PRUNE[2:], "--perturb", "mass=1.5~0.5"],
     "LOW must not exceed HIGH"),
    (["robustness", "cartpole-swingup", "--perturb", "mass=1:2", "--out", "OUT"],
     "START:STOP:COUNT"),
    (["robustness", "cartpole-swingup", "--perturb", "wind=1", "--out", "OUT"],
     "perturbation grid entry"),
    (["robustness", "cartpole-swingup", "--perturb", "mass=1,damping=1,friction=1",
      "--out", "OUT"], "at most two"),
    # components and interfaces
    (["inspect", "cartpole-swingup", "--components", "policy"], "unknown components"),
    (["inspect", "cartpole-swingup", "--interfaces", "action"], "no prunable interface"),
    (["prune", "LINEAR", "--out", "OUT", "--sparsity", "0.5", "--env", "Pendulum-v1"],
     "sb3-ars agent: actor has no hidden units to prune"),
    # targets
    (["prune", AE, "--out", "OUT", "--sparsity", "1.5"], r"sparsity must be in \[0, 1\)"),
    ([*PRUNE, "--tol", "-1"], r"tol must be in \[0, 1\)"),
    (["prune", AE, "--out", "OUT", "--sparsity", "0.999", "--tol", "0.0001"],
     "allows at most"),
    (["prune", "cartpole-swingup", "--out", "OUT", "--sparsity", "0.3", "--tol", "0.0001",
      "--round-to", "128"], "nearest reachable"),
    (["prune", "cartpole-swingup", "--out", "OUT", "--speedup", "100",
      "--no-planner-budgets"], "allows at most predicted speed-up"),
    (["prune", "cartpole-swingup", "--out", "OUT", "--speedup", "100000", "--tol", "0.0001"],
     "out of reach even with cheaper planners"),
    (["prune", "cartpole-swingup", "--out", "OUT", "--speedup", "0.5"],
     "speed-up must be >= 1"),
    ([*PRUNE, "--speedup", "2"], "give exactly one target"),
    (["prune", AE, "--out", "OUT", "--speedup", "2"], "does not act: a speed-up"),
    (["prune", AE, "--out", "OUT", "--target", "watts=0.5"], "measure must be one of"),
    ([*PRUNE, "--threads", "0"], "threads must be >= 1"),
    ([*PRUNE, "--max-jacobian-radius", "0"], "max_jacobian_radius must be > 0"),
    (["prune", "sac-halfcheetah", "--out", "OUT", "--sparsity", "0.5", "--episodes", "1",
      "--max-episode-steps", "5", "--max-rollout-error", "1"],
     "has no latent space: --max-rollout-error and --max-jacobian-radius constrain"),
    ([*PRUNE, "--round-to", "x"], "--round-to takes a whole number >= 1 or 'auto'"),
    ([*PRUNE, "--round-to", "auto"], "does not act: --round-to auto needs a control step"),
    ([*PRUNE, "--aggregate", "worst"], "needs a perturbation set"),
    (["prune", "cartpole-swingup", "--out", "OUT", "--sparsity", "0.5", "--perturb",
      "mass=1:2:2", "--aggregate", "cvar:2"], r"mean, worst or cvar:ALPHA with ALPHA in"),
    (["latency", AE], "does not act"),
    (["eval", "cartpole-swingup", "--backend", "tpu"], "unknown backend 'tpu'"),
    (["latency", "sac-halfcheetah", "--backend", "eager,bf16"],
     "acts through code rlprune does not run on a backend"),
    (["prune", "sac-halfcheetah", "--out", "OUT", "--speedup", "1.1", "--backend",
      "onnxruntime"], "acts through code rlprune does not run on a backend"),
    (["latency", "cartpole-swingup", "--threads", "0"], "threads must be >= 1"),
    # methods and options
    ([*PRUNE, "--method", "bayes"], "unknown search method"),
    ([*PRUNE, "--method", "grid", "--criterion", "l3"], "unknown importance"),
    ([*PRUNE, "--executor", "dask"], "unknown executor 'dask'"),
    ([*PRUNE, "--scope", "layer"], "scope must be 'auto', 'component' or 'group'"),
    ([*PRUNE, "--budget", "0", "--method", "cmaes"], "budget must be >= 1"),
    ([*SWEEP, "--sparsities", "0.2,x"], "--sparsities takes"),
    ([*SWEEP, "--methods", "magnitude,prune-all"], "unknown methods"),
    ([*SWEEP, "--sparsities", "1.2"], r"sparsity must be in \[0, 1\)"),
    ([*SWEEP, "--sparsities", "0.5,0.8", "--methods", "scratch-small", "--scratch",
      "0.5=FILE"], r"scratch-small has no trained agent for sparsities \[0.8\]"),
    ([*SWEEP, "--sparsities", "0.5", "--scratch", "half=FILE"], "--scratch takes RHO=PATH"),
    ([*SWEEP, "--sparsities", "0.5", "--scratch", "0.5=MISSING"], "no trained small agent at"),
    # output paths and runs
    (["prune", AE, "--out", "FILE", "--sparsity", "0.5"], "is a file, not a run directory"),
    (["export", AE, "--onnx", "FILE"], "File exists: .*file.txt"),
    (["prune", AE, "--out", "PRUNE_RUN", "--sparsity", "0.6"],
     "holds a search with other settings"),
    (["report", "OUT"], "no run directory"),
    (["report", "FILE"], "no run directory"),
    (["report", "."], "holds no rlprune run"),
]


@pytest.mark.parametrize("args,match", CASES, ids=[" ".join(a[:3]) + f" #{i}"
                                                   for i, (a, _) in enumerate(CASES)])
def test_bad_input_gives_one_clear_line_exit_2_and_writes_nothing(args, match, files,
                                                                   tmp_path):
    out = tmp_path / "out"
    names = {**files, "OUT": str(out)}
    before = {p: Path(p).stat().st_mtime_ns for p in files.values() if Path(p).exists()}
    result = CliRunner().invoke(app, [names.get(a, a) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlprune: error:"), result.stderr
    assert re.search(match, lines[0]), lines[0]
    assert not out.exists()  # nothing half-written
    after = {p: Path(p).stat().st_mtime_ns for p in before}
    assert after == before  # existing files and runs untouched


def _readme_messages() -> list[str]:
    """The 'what you see' column of the README's bad-input table."""
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Bad input"):]
    rows = [line for line in table.splitlines()[1:] if line.startswith("| ")
            and not line.startswith(("| input", "| ---"))]
    return [row.rstrip(" |").split(" | ")[-1].strip("`") for row in rows]


def test_the_readme_table_and_the_cases_say_the_same():
    messages = _readme_messages()
    undocumented = [match for _, match in CASES
                    if not any(re.search(match, message) for message in messages)]
    assert not undocumented, f"cases missing from the README's table: {undocumented}"
    untested = [message for message in messages
                if not any(re.search(match, message) for _, match in CASES)]
    assert not untested, f"README rows no case checks: {untested}"
