"""Sweeps, zoo runs and robustness grids spread over worker processes, a local Ray instance
and a two-node Ray cluster on loopback: the same rows as in-process runs, run folders that
resume whichever executor wrote them, and a Ray worker killed mid-cell that loses nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlprune.cli import app
from rlprune.units import UnitFolder

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ["sweep", "sac-halfcheetah", "--sparsities", "0.5,0.8",
         "--methods", "magnitude,random,cmaes", "--budget", "3", "--episodes", "1",
         "--eval-episodes", "2", "--max-episode-steps", "50"]
MEASURED_HERE = {"seconds", "step_ms", "speedup"}
"""Row fields that are wall-clock measurements, not results."""
CELL_LINE = re.compile(r"rho=[\d.]+: metric .*, (node \w+)\)")


def results(folder: Path) -> list[dict]:
    rows = json.loads((folder / "sweep.json").read_text())["rows"]
    return [{k: v for k, v in r.items() if k not in MEASURED_HERE} for r in rows]


def agent_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "agents").glob("*.json"))}


def cli(*args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rlprune.cli", *args], cwd=ROOT,
                            env={**os.environ, **(env or {})}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


@pytest.fixture(scope="module")
def in_process(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("in-process")
    result = CliRunner().invoke(app, [*SWEEP, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_cells_on_a_process_pool_give_the_rows_of_an_in_process_sweep(in_process, tmp_path):
    result = CliRunner().invoke(app, [*SWEEP, "--out", str(tmp_path), "--executor", "process",
                                      "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert results(tmp_path) == results(in_process)
    assert agent_files(tmp_path) == agent_files(in_process) and len(agent_files(tmp_path)) == 6
    # the folder resumes in-process as if this process had written it: no cell runs again
    again = CliRunner().invoke(app, [*SWEEP, "--out", str(tmp_path)])
    assert again.exit_code == 0 and "rho=" not in again.stderr
    assert results(tmp_path) == results(in_process)


def test_cells_on_a_worker_that_does_not_see_the_run_folder_land_there(in_process, tmp_path,
                                                                       monkeypatch):
    """A worker on another machine runs its cell in a temporary folder and hands back
    the files; the run folder ends up as if the cell had run here."""
    monkeypatch.setattr(UnitFolder, "_visible", lambda self: False)
    result = CliRunner().invoke(app, [*SWEEP, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert results(tmp_path) == results(in_process)
    assert agent_files(tmp_path) == agent_files(in_process)
    searches = sorted(p.relative_to(tmp_path) for p in (tmp_path / "searches").rglob("*.json"))
    assert searches == sorted(p.relative_to(in_process)
                              for p in (in_process / "searches").rglob("*.json"))
    assert searches and not list(Path(tempfile.gettempdir()).glob("rlprune-unit-*"))


def _worker_tasks(driver: psutil.Process, name: str) -> list[psutil.Process]:
    """Ray worker processes of ``driver``'s local instance running one of our units."""
    found = []
    for child in driver.children(recursive=True):
        try:
            if child.cmdline()[:1] == [name]:
                found.append(child)
        except psutil.Error:
            continue
    return found


def _kill_a_worker_of(run: subprocess.Popen, name: str, when=lambda: True) -> tuple[bool, str]:
    """SIGKILLs one of ``run``'s Ray workers busy with ``name`` once ``when()`` holds; waits
    for ``run`` to end. Returns whether one was killed, and ``run``'s stderr."""
    driver, killed, deadline = psutil.Process(run.pid), False, time.monotonic() + 300
    while not killed and run.poll() is None and time.monotonic() < deadline:
        busy = _worker_tasks(driver, name)
        if busy and when():
            busy[0].send_signal(signal.SIGKILL)
            killed = True
        time.sleep(0.02)
    return killed, run.communicate(timeout=300)[1]


def test_a_ray_worker_killed_mid_cell_loses_no_finished_cell(in_process, tmp_path):
    run = cli(*SWEEP, "--out", str(tmp_path), "--executor", "ray", "--workers", "2",
              "--budget", "6")
    def finished_a_cell() -> bool:  # the dense row and a cell are in
        saved = tmp_path / "sweep.json"
        return saved.exists() and len(json.loads(saved.read_text())["rows"]) >= 2

    killed, err = _kill_a_worker_of(run, "ray::run_unit", finished_a_cell)
    assert run.returncode == 0, err
    assert killed, "no cell was running to kill"
    straight = CliRunner().invoke(app, [*SWEEP, "--out", str(tmp_path / "straight"),
                                        "--budget", "6"])
    assert straight.exit_code == 0, straight.output
    rows = results(tmp_path)
    assert rows == results(tmp_path / "straight")
    assert len({(r["method"], r["target"]) for r in rows}) == len(rows) == 7


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_sweep_spreads_over_a_two_node_ray_cluster_on_loopback(in_process, tmp_path):
    """A head and a worker node, each its own ``ray start`` with one CPU, on 127.0.0.1."""
    port, env = _free_port(), {"RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    temp_dir = tempfile.mkdtemp(prefix="rl-ray-", dir="/tmp")  # short: Ray puts sockets there
    ray_cli = [str(Path(sys.executable).parent / "ray"), "start", "--block", "--num-cpus", "1",
               "--node-ip-address", "127.0.0.1", "--temp-dir", temp_dir]
    nodes = [subprocess.Popen([*ray_cli, "--head", "--port", str(port),
                               "--include-dashboard", "false"], env={**os.environ, **env},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        time.sleep(5)
        nodes.append(subprocess.Popen([*ray_cli, "--address", f"127.0.0.1:{port}"],
                                      env={**os.environ, **env},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(5)
        assert all(node.poll() is None for node in nodes)
        run = cli(*SWEEP, "--out", str(tmp_path), "--executor", "ray", "--ray-address",
                  f"127.0.0.1:{port}", env=env)
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    finally:
        for node in reversed(nodes):
            node.send_signal(signal.SIGTERM)
            node.wait(timeout=60)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert len(set(CELL_LINE.findall(err))) == 2, err  # cells ran on both nodes
    assert results(tmp_path) == results(in_process)
    assert agent_files(tmp_path) == agent_files(in_process)


def test_robustness_points_on_a_process_pool_give_the_in_process_rows(in_process, tmp_path):
    pruned = str(in_process / "agents" / "magnitude-0.5.zip")
    args = ["robustness", "sac-halfcheetah", pruned, "--perturb", "mass=0.8:1.2:2",
            "--episodes", "1", "--max-episode-steps", "40", "--quiet"]
    here = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "here")])
    pooled = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "pool"), "--executor",
                                      "process", "--workers", "2"])
    assert here.exit_code == 0 and pooled.exit_code == 0, here.output + pooled.output

    def rows(name: str) -> list[dict]:
        saved = json.loads((tmp_path / name / "results.json").read_text())["rows"]
        return [{k: v for k, v in r.items() if k not in MEASURED_HERE} for r in saved]

    assert rows("pool") == rows("here") and len(rows("here")) == 4


PRUNE = ["prune", "sac-halfcheetah", "--sparsity", "0.5", "--method", "cmaes", "--budget", "10",
         "--episodes", "2", "--max-episode-steps", "150", "--eval-episodes", "2", "--json"]


def search_outcome(out: Path) -> tuple[list, dict]:
    report = json.loads((out / "report.json").read_text())
    history = [(h["key"], h["status"], h["metric"], h.get("env_steps"))
               for h in report["result"]["history"]]
    return history, {k: report["held_out"][k]["metric"] for k in ("dense", "pruned")}


def test_a_killed_ray_search_worker_is_restarted_and_its_candidate_scored_again(tmp_path):
    here = CliRunner().invoke(app, [*PRUNE, "--out", str(tmp_path / "here")])
    assert here.exit_code == 0, here.output
    run = cli(*PRUNE, "--out", str(tmp_path / "ray"), "--executor", "ray", "--workers", "2")
    killed, err = _kill_a_worker_of(run, "ray::_Actor.score")
    assert run.returncode == 0, err
    assert killed, "no candidate was being scored to kill"
    assert search_outcome(tmp_path / "ray") == search_outcome(tmp_path / "here")


def test_pool_workers_end_with_a_killed_driver(tmp_path):
    """A driver killed mid-sweep leaves no worker process playing episodes for nobody."""
    run = cli(*SWEEP, "--out", str(tmp_path), "--executor", "process", "--workers", "2")
    driver, deadline, workers = psutil.Process(run.pid), time.monotonic() + 120, []
    while len(workers) < 2 and run.poll() is None and time.monotonic() < deadline:
        workers = [p for p in driver.children() if "spawn_main" in " ".join(p.cmdline())]
        time.sleep(0.1)
    assert len(workers) == 2, "the pool's workers never started"
    run.kill()  # whether they are still starting or already playing a cell's episodes
    run.wait()
    _, alive = psutil.wait_procs(workers, timeout=30)
    for process in alive:
        process.kill()
    run.stdout.close()
    run.stderr.close()
    assert not alive
