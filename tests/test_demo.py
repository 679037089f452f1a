"""``make demo`` (scripts/demo.py) end to end, reduced: a search and global magnitude at the
same sparsity, scored on held-out episodes, filmed, ending in the HTML report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_compares_a_search_with_magnitude_and_ends_in_the_html_report(tmp_path):
    out = tmp_path / "demo"
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--out", str(out),
         "--episodes", "1", "--max-episode-steps", "40", "--budget", "2",
         "--held-out-episodes", "2"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "magnitude:" in run.stdout and "cmaes:" in run.stdout and "of dense" in run.stdout
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    assert {r["method"] for r in rows} == {"dense", "magnitude", "cmaes"}
    page = (out / "report.html").read_text()
    assert (out / "rollout_dense_vs_magnitude_vs_cmaes.gif").exists()
    assert "rollout dense vs magnitude vs cmaes" in page and "data:image/gif" in page
