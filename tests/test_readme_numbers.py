"""The README's generated tables match their committed result files, and the check fails
when a number in the README drifts from them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rlprune.analysis.evaluate import ClosedLoopEvaluator
from rlprune.search import ReturnObjective
from rlprune.sweep import sweep
from tests.conftest import load_script, small_tdmpc2

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "readme_numbers.py"


def _script():
    return load_script("readme_numbers")


def check(readme: Path = ROOT / "README.md") -> bool:
    """Whether ``readme``'s generated tables are what the result files give."""
    text = readme.read_text()
    return _script().rendered(text) == text


def test_the_readme_tables_come_from_the_committed_results():
    assert check()
    assert subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=ROOT).returncode == 0


def test_a_drifted_number_fails_the_check(tmp_path):
    readme = (ROOT / "README.md").read_text()
    drifted = readme.replace("839.0 +- 1.4", "845.0 +- 1.4", 1)
    assert drifted != readme
    (tmp_path / "README.md").write_text(drifted)
    assert not check(tmp_path / "README.md")


def test_an_empty_placeholder_is_filled_and_the_text_after_it_kept():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- table:deadline_budgets -->\n")
    end = readme.index("<!-- /table -->", start)
    emptied = readme[:start] + "<!-- table:deadline_budgets -->\n" + readme[end:]
    assert emptied != readme and _script().rendered(emptied) == readme


def test_a_world_model_sweep_renders_its_returns_steps_and_stability(tmp_path):
    def episodes(seed: int) -> ReturnObjective:
        return ReturnObjective(ClosedLoopEvaluator("dmc/cartpole-swingup", episodes=2,
                                                   seed=seed, action_repeat=2,
                                                   max_episode_steps=10))
    dense = small_tdmpc2()
    dense.save(tmp_path / "dense.pt")
    rows = sweep(dense, episodes(0), [0.3], ["magnitude", "random"], tmp_path,
                 report_objective=episodes(1000), log=lambda _: None)
    script = _script()
    study = script.collect_world_model_rows(tmp_path, ["random", "magnitude"], [0.3])
    assert [row["method"] for row in study["rows"]] == ["random", "magnitude"]
    table = script.render_world_model_rows(study).splitlines()
    magnitude, dense_row = rows[1], rows[0]
    assert table[-3] == (
        f"| magnitude | {magnitude['metric']:.1f} +- {magnitude['ci95']:.1f} "
        f"({magnitude['metric'] / dense_row['metric']:.0%}) | 0 | "
        f"{magnitude['rollout_error'][0]:.3f} | {magnitude['jacobian_radius_max']:.2f} |")
    assert table[-1].startswith(f"(dense: {dense_row['metric']:.1f} +- ")
    # the components' shares removed, weighted by their sizes, are the row's sparsity
    cuts = script.collect_component_cuts(tmp_path, str(tmp_path / "dense.pt"), ["magnitude"],
                                         0.3)["cuts"]["magnitude"]
    sizes = {}
    for name, component in dense.components().items():
        kind = name.rstrip("0123456789")
        sizes[kind] = sizes.get(kind, 0) + sum(p.numel() for p in component.module.parameters())
    assert sum(cuts[kind] * sizes[kind] for kind in sizes) / sum(sizes.values()) == (
        pytest.approx(magnitude["sparsity"]))
    assert "| magnitude | " in script.render_component_cuts({"target": 0.3, "cuts": {
        "magnitude": cuts}})


def test_the_search_benchmark_renders_both_searches_and_their_paired_difference(
        tmp_path, monkeypatch, capsys):
    agent = small_tdmpc2()
    agent.meta.update(task="dmc/cartpole-swingup", action_repeat=2)
    agent.save(tmp_path / "agent.pt")
    monkeypatch.setattr(sys, "argv", [
        "bench_search.py", "--agent", str(tmp_path / "agent.pt"), "--sparsity", "0.3",
        "--grid-budget", "2", "--episodes", "1", "--max-episode-steps", "10",
        "--eval-episodes", "2", "--out", str(tmp_path / "bench")])
    load_script("bench_search").main()
    (tmp_path / "bench.json").write_text(capsys.readouterr().out)
    script = _script()
    study = script.collect_bench_search([tmp_path / "bench.json"])
    row = study["rows"][0]
    assert row["grid"]["env_steps"] > 0 and row["gradient"]["env_steps"] > 0
    line = script.render_bench_search(study).splitlines()[-1]
    assert line.startswith(f"| 30% | {row['grid']['held_out_mean']:.1f} +- ")
    assert line.endswith(f" | {row['env_steps_ratio']:.1%} |")


def test_the_shipped_checkpoints_table_comes_from_their_cards():
    """The cards are committed, so their collected copy must be what they say now: a card
    rewritten by ship_checkpoint.py without re-collecting fails here."""
    script = _script()
    cards = script.collect_shipped_cards(ROOT / "checkpoints")
    assert cards == script._load(script.SOURCES / "shipped_checkpoints.json")
    assert set(cards) == {p.name for p in (ROOT / "checkpoints").iterdir()
                          if p.suffix in (".pt", ".zip")}
    hopper = cards["sac-hopper.zip"]["eval"]
    row = (f"| `sac-hopper.zip` | SB3 SAC, 256 x 256, `Hopper-v5`, 320,000 env steps | "
           f"{hopper['mean_return']:.1f} +- {hopper['ci95']:.1f} mean return over 10 seeded "
           "episodes (seeds 0-9, deterministic actions; returns")
    assert row in (ROOT / "README.md").read_text()
