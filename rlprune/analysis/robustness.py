"""Robustness studies: dense vs pruned returns across a grid of perturbations.

A grid spec names each perturbation with a value or a ``start:stop:count`` range, e.g.
``"mass=0.5:2:4,obs_noise=0:0.1:3"`` (4 x 3 points). Every agent is evaluated at every
point on the same seeded episodes; finished points are kept in ``results.json`` and
skipped when the study is run again with the same agent (same name and weights).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs import PERTURBATIONS
from rlprune.adapters.base import AgentAdapter
from rlprune.analysis.evaluate import ClosedLoopEvaluator
from rlprune.report import pyplot, save_figure, write_json
from rlprune.units import UnitRunner, run_units

__all__ = ["agents_robustness", "breaking_points", "parse_grid", "plot_robustness",
           "robustness_study"]


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


def _evaluate_point(env: str, settings: dict, job: tuple[str, AgentAdapter, dict]) -> dict:
    """One agent at one grid point: its row of the study."""
    label, agent, perturb = job
    evaluator = ClosedLoopEvaluator(env, episodes=settings["episodes"], seed=settings["seed"],
                                    action_repeat=settings["action_repeat"], perturb=perturb,
                                    max_episode_steps=settings["max_episode_steps"],
                                    env_kwargs=settings["env_kwargs"],
                                    wrappers=settings["wrappers"])
    result = evaluator.evaluate(agent)
    return {"agent": label, "perturb": perturb, "mean": result.mean, "ci95": result.ci95,
            "failed": int(result.failed.sum()), "seconds": result.wall_time}


def _key(label: str, perturb: dict) -> tuple[str, str]:
    return label, json.dumps(perturb, sort_keys=True)


def weights_id(agent: AgentAdapter) -> str:
    """A digest of every component's weights: a resumed study re-evaluates an agent whose
    name is the same but whose weights are not (a fine-tuning redone on other threads)."""
    digest = hashlib.sha1()
    for name, component in sorted(agent.components().items()):
        for key, value in sorted(component.module.state_dict().items()):
            digest.update(f"{name}.{key}".encode())
            digest.update(value.detach().cpu().to(torch.float64).contiguous().numpy().tobytes()
                          if isinstance(value, torch.Tensor) else repr(value).encode())
    return digest.hexdigest()[:16]


def robustness_study(agents: Mapping[str, AgentAdapter], env: str, grid: dict[str, list[float]],
                     out: str | Path, episodes: int = 4, seed: int = 0, action_repeat: int = 1,
                     max_episode_steps: int | None = None,
                     env_kwargs: Mapping[str, Any] | None = None,
                     wrappers: Sequence[Sequence[Any]] = (),
                     executor: UnitRunner | None = None,
                     log: Callable[[str], None] = lambda line: None) -> list[dict]:
    """Evaluates every agent at every grid point; returns (and saves) one row per pair.

    ``env_kwargs`` configure the env as the agents were trained (RL Zoo's env_kwargs.yml),
    ``wrappers`` are the env wrappers they act through (``envs.zoo_wrappers``); ``log``
    gets one line per finished grid point and agent. A parallel ``executor`` (process
    pool, Ray) evaluates the pairs side by side; rows are the same and in the same order.
    A study in ``out`` resumes only with the same env, episodes, seed and episode cap
    (other grid points and agents may be added); a saved row is reused only for an agent
    with the same name and weights.

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
    names = list(grid)
    points = [dict(zip(names, values)) for values in itertools.product(*grid.values())]
    pairs = [(label, perturb) for perturb in points for label in agents]
    ids = {label: weights_id(agent) for label, agent in agents.items()}
    rows = {_key(r["agent"], r["perturb"]): r for r in saved.get("rows", [])
            if r.get("weights") == ids.get(r["agent"], r.get("weights"))}
    jobs = [(label, agents[label], perturb) for label, perturb in pairs
            if _key(label, perturb) not in rows]
    order = {_key(*pair): i for i, pair in enumerate(pairs)}

    def in_grid_order() -> list[dict]:
        return sorted(rows.values(),
                      key=lambda r: order.get(_key(r["agent"], r["perturb"]), len(order)))

    evaluate = functools.partial(_evaluate_point, env, settings)
    for _, row, _where in run_units(executor, evaluate, jobs):
        rows[_key(row["agent"], row["perturb"])] = {**row, "weights": ids[row["agent"]]}
        point = ", ".join(f"{k}={v:g}" for k, v in row["perturb"].items())
        log(f"[{len(rows)}/{len(pairs)}] {point}: {row['agent']} {row['mean']:.1f} +- "
            f"{row['ci95']:.1f} ({row['seconds']:.0f}s)")
        write_json(path, {"env": env, "settings": settings, "grid": grid,
                          "rows": in_grid_order()})
    return in_grid_order()


def agents_robustness(agents: Mapping[str, AgentAdapter], grid: dict[str, list[float]],
                      out: str | Path, env: str | None = None, episodes: int = 4,
                      seed: int = 0, max_episode_steps: int | None = None,
                      executor: UnitRunner | None = None,
                      log: Callable[[str], None] = lambda line: None) -> tuple[str, list[dict]]:
    """``robustness_study`` on the first agent's own task (or ``env``), at its action
    repeat, env kwargs and wrappers; returns the env spec and the rows."""
    nominal = ClosedLoopEvaluator.for_agent(next(iter(agents.values())), env, episodes=1)
    rows = robustness_study(agents, nominal.env_spec, grid, out, episodes=episodes, seed=seed,
                            action_repeat=nominal.options["action_repeat"],
                            max_episode_steps=max_episode_steps,
                            env_kwargs=nominal.env_kwargs, wrappers=nominal.options["wrappers"],
                            executor=executor, log=log)
    return nominal.env_spec, rows


def breaking_points(rows: list[dict], dense: str = "dense") -> list[dict]:
    """Per grid point: the dense agent's mean, each other agent's and its difference,
    worst (most negative) difference first: where a pruned agent breaks first."""
    points: dict[str, dict] = {}
    for row in rows:
        key = json.dumps(row["perturb"], sort_keys=True)
        point = points.setdefault(key, {"system": ", ".join(
            f"{k}={v:.3g}" for k, v in row["perturb"].items())})
        point[row["agent"]] = row["mean"]
    table = []
    for point in points.values():
        others = [name for name in point if name not in ("system", dense)]
        table += [{"system": point["system"], "agent": name, dense: point[dense],
                   "pruned": point[name], "pruned - dense": point[name] - point[dense]}
                  for name in others if dense in point]
    return sorted(table, key=lambda r: r["pruned - dense"])


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
