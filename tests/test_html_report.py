"""Rollout videos and the self-contained HTML report, opened in a real headless browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import gymnasium
import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from rlprune.cli import app
from rlprune.html_report import IMAGE_CHECK_SCRIPT

runner = CliRunner()
FAST = ["--episodes", "1", "--max-episode-steps", "40", "--eval-episodes", "2",
        "--eval-max-episode-steps", "40"]


@pytest.fixture(scope="module")
def prune_run(tmp_path_factory):
    """A prune run of the shipped SAC agent with its dense-vs-pruned rollout video."""
    out = tmp_path_factory.mktemp("run") / "sac-50"
    result = runner.invoke(app, ["prune", "sac-halfcheetah", "--sparsity", "0.5", "--method",
                                 "magnitude", "--out", str(out), "--video", "--quiet", *FAST])
    assert result.exit_code == 0, result.output
    return out


def test_eval_video_films_the_evaluated_episode_side_by_side(tmp_path):
    video = tmp_path / "cheetah.gif"
    result = runner.invoke(app, ["eval", "sac-halfcheetah", "--episodes", "2", "--seed", "3",
                                 "--max-episode-steps", "30", "--video", str(video),
                                 "--side-by-side", "sac-halfcheetah", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    # the filmed episode is the evaluation's first: same seed, same return
    assert payload["video_returns"] == {"sac-halfcheetah": payload["returns"][0],
                                        "sac-halfcheetah (2)": payload["returns"][0]}
    frames = iio.imread(video)
    assert frames.shape[0] == 31 and frames.shape[2] > 2 * frames.shape[1]  # two, side by side
    assert frames[-1].std() > 10  # a rendered scene, not a blank frame


def test_prune_writes_a_self_contained_html_report(prune_run):
    page = (prune_run / "report.html").read_text()
    sources = re.findall(r'\bsrc="([^"]*)"', page)
    assert len(sources) >= 2 and all(s.startswith("data:image/") for s in sources)
    assert "http" not in "".join(re.findall(r'\bhref="([^"]*)"', page))
    for part in ("Held-out check", "Time per control step", "Channels kept per group",
                 "rollout dense vs pruned"):
        assert part in page


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does)")
    return path


def _headless(chromium: str, profile, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr",
         "--virtual-time-budget=5000", *args],
        capture_output=True, text=True, timeout=120)


def _console(run: subprocess.CompletedProcess) -> list[str]:
    """What the page wrote to the console (errors included), as Chromium logs it."""
    return [line for line in run.stderr.splitlines() if ":CONSOLE" in line]


def test_the_browser_check_sees_a_broken_page(tmp_path):
    chromium = _chromium()
    page = tmp_path / "broken.html"
    page.write_text('<html><body><img src="missing.png"><script>undefinedFn();</script>'
                    + f"<script>{IMAGE_CHECK_SCRIPT}</script></body></html>")
    dom = _headless(chromium, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert any("undefinedFn" in line for line in _console(dom))
    assert 'data-images-broken="1"' in dom.stdout


def test_the_report_loads_in_a_real_browser(prune_run, tmp_path):
    chromium = _chromium()
    url = (prune_run / "report.html").as_uri()
    dom = _headless(chromium, tmp_path / "profile-dom", "--dump-dom", url)
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stderr[-2000:]
    assert 'data-images-broken="0"' in body.group(1)  # every image and video resolved
    assert int(re.search(r"data-images=\"(\d+)\"", body.group(1)).group(1)) >= 2
    assert not _console(dom), _console(dom)
    shot = tmp_path / "shot.png"
    _headless(chromium, tmp_path / "profile-shot", "--window-size=1100,1400",
              f"--screenshot={shot}", url)
    pixels = iio.imread(shot)[..., :3].astype(np.float64)
    assert pixels.std() > 20  # tables, plots and text: not a blank page


def test_report_html_of_a_run_folder_and_its_bad_inputs(prune_run, tmp_path):
    (prune_run / "report.html").unlink()
    result = runner.invoke(app, ["report", str(prune_run), "--html"])
    assert result.exit_code == 0, result.output
    assert (prune_run / "report.html").exists()
    missing = runner.invoke(app, ["report", str(tmp_path / "nope"), "--html"])
    assert missing.exit_code == 2 and "no run directory" in missing.stderr


class _Blind(gymnasium.Env):
    """An env with no renderer."""

    observation_space = gymnasium.spaces.Box(-1, 1, (5,), np.float32)
    action_space = gymnasium.spaces.Box(-1, 1, (1,), np.float32)

    def __init__(self, render_mode=None) -> None:
        self.render_mode = render_mode

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(5, np.float32), {}

    def step(self, action):
        return np.zeros(5, np.float32), 0.0, False, True, {}

    def render(self):
        return None


gymnasium.register("rlprune-test/Blind-v0", entry_point=_Blind)


def test_an_env_that_cannot_render_is_one_clear_error(tmp_path):
    from rlprune.analysis.evaluate import ClosedLoopEvaluator
    from rlprune.video import record_video
    from tests.conftest import linear_policy

    evaluator = ClosedLoopEvaluator("rlprune-test/Blind-v0", episodes=1)
    with pytest.raises(ValueError, match="Blind-v0 cannot render frames"):
        record_video({"agent": linear_policy()}, evaluator, tmp_path / "v.gif")
    assert not (tmp_path / "v.gif").exists()
