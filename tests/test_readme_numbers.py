"""The README's generated tables match their committed result files, and the check fails
when a number in the README drifts from them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import load_script

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
