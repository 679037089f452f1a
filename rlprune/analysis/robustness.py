"""Robustness studies: dense vs pruned returns across a grid of perturbations.

A grid spec names each perturbation with a value or a ``start:stop:count`` range, e.g.
``"mass=0.5:2:4,obs_noise=0:0.1:3"`` (4 x 3 points). Every agent is evaluated at every
point on the same seeded episodes; finished points are kept in ``results.json`` and
skipped when the study is run again.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs import PERTURBATIONS
from rlprune.adapters.base import AgentAdapter
from rlprune.analysis.evaluate import ClosedLoopEvaluator
from rlprune.report import pyplot, save_figure, write_json

__all__ = ["parse_grid", "plot_robustness", "robustness_study"]


def parse_grid(spec: str) -> dict[str, list[float]]:
    """``"mass=0.5:2:4,delay=1"`` -> ``{"mass": [0.5, 1.0, 1.5, 2.0], "delay": [1.0]}``.

    Raises:
        ValueError: unknown perturbation, malformed range, or a count below 1.
    """
    grid: dict[str, list[float]] = {}
    for part in spec.split(","):
        name, sep, values = part.partition("=")
        name = name.strip()
        if not sep or name not in PERTURBATIONS:
            raise ValueError(f"perturbation grid entry {part!r}: expected NAME=VALUE or "
                             f"NAME=START:STOP:COUNT with NAME in {sorted(PERTURBATIONS)}")
        pieces = values.split(":")
        try:
            if len(pieces) == 1:
                grid[name] = [float(pieces[0])]
            elif len(pieces) == 3 and int(pieces[2]) >= 1:
                grid[name] = np.linspace(float(pieces[0]), float(pieces[1]),
                                         int(pieces[2])).tolist()
            else:
                raise ValueError("need START:STOP:COUNT with COUNT >= 1")
        except ValueError as e:
            raise ValueError(f"perturbation grid entry {part!r}: {e}") from e
    return grid


def robustness_study(agents: Mapping[str, AgentAdapter], env: str, grid: dict[str, list[float]],
                     out: str | Path, episodes: int = 4, seed: int = 0, action_repeat: int = 1,
                     max_episode_steps: int | None = None,
                     env_kwargs: Mapping[str, Any] | None = None,
                     wrappers: Sequence[Sequence[Any]] = (),
                     log: Callable[[str], None] = lambda line: None) -> list[dict]:
    """Evaluates every agent at every grid point; returns (and saves) one row per pair.

    ``env_kwargs`` configure the env as the agents were trained (RL Zoo's env_kwargs.yml),
    ``wrappers`` are the env wrappers they act through (``envs.zoo_wrappers``); ``log``
    gets one line per finished grid point and agent.
    A study in ``out`` resumes only with the same env, episodes, seed and episode cap
    (other grid points and agents may be added).

    Raises:
        ValueError: ``out`` holds a study with other settings.
    """
    out = Path(out)
    path = out / "results.json"
    settings = {"episodes": episodes, "seed": seed, "action_repeat": action_repeat,
                "max_episode_steps": max_episode_steps, "env_kwargs": dict(env_kwargs or {}),
                "wrappers": [list(w) for w in wrappers]}
    saved = json.loads(path.read_text()) if path.exists() else {}
    earlier = {"env": saved.get("env"), **saved.get("settings", {})}
    if saved and earlier != {"env": env, **settings}:
        raise ValueError(f"{out} holds a robustness study with other settings ({earlier}); "
                         "use a new output folder")
    rows = saved.get("rows", [])
    done = {(r["agent"], json.dumps(r["perturb"], sort_keys=True)) for r in rows}
    names = list(grid)
    total = len(agents) * len(list(itertools.product(*grid.values())))
    for values in itertools.product(*(grid[n] for n in names)):
        perturb = dict(zip(names, values))
        evaluator = ClosedLoopEvaluator(env, episodes=episodes, seed=seed,
                                        action_repeat=action_repeat, perturb=perturb,
                                        max_episode_steps=max_episode_steps,
                                        env_kwargs=env_kwargs, wrappers=wrappers)
        for label, agent in agents.items():
            if (label, json.dumps(perturb, sort_keys=True)) in done:
                continue
            result = evaluator.evaluate(agent)
            rows.append({"agent": label, "perturb": perturb, "mean": result.mean,
                         "ci95": result.ci95, "failed": int(result.failed.sum())})
            point = ", ".join(f"{k}={v:g}" for k, v in perturb.items())
            log(f"[{len(rows)}/{total}] {point}: {label} {result.mean:.1f} +- "
                f"{result.ci95:.1f} ({result.wall_time:.0f}s)")
            write_json(path, {"env": env, "settings": settings, "grid": grid, "rows": rows})
    return rows


def plot_robustness(rows: list[dict], grid: dict[str, list[float]], path: str | Path) -> Path:
    """One line per agent over the first perturbation; a heatmap per agent for two."""
    plt = pyplot()
    names = list(grid)
    agents = list(dict.fromkeys(r["agent"] for r in rows))
    if len(names) == 2:
        fig, axes = plt.subplots(1, len(agents), figsize=(4 * len(agents), 3.5), squeeze=False)
        for ax, agent in zip(axes[0], agents):
            table = np.array([[next(r["mean"] for r in rows if r["agent"] == agent
                                    and r["perturb"] == {names[0]: a, names[1]: b})
                               for a in grid[names[0]]] for b in grid[names[1]]])
            image = ax.imshow(table, origin="lower", aspect="auto")
            ax.set_xticks(range(len(grid[names[0]])), [f"{v:.3g}" for v in grid[names[0]]])
            ax.set_yticks(range(len(grid[names[1]])), [f"{v:.3g}" for v in grid[names[1]]])
            ax.set_xlabel(names[0])
            ax.set_ylabel(names[1])
            ax.set_title(agent)
            fig.colorbar(image, ax=ax, label="return")
    else:
        fig, ax = plt.subplots(figsize=(6, 4))
        for agent in agents:
            mine = [r for r in rows if r["agent"] == agent]
            xs = [r["perturb"][names[0]] for r in mine]
            ax.errorbar(xs, [r["mean"] for r in mine], yerr=[r["ci95"] for r in mine],
                        marker="o", capsize=3, label=agent)
        ax.set_xlabel(names[0])
        ax.set_ylabel("return")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)
