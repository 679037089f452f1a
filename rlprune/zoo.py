"""``rlprune zoo``: every agent of an RL Zoo log folder pruned, evaluated and ranked.

Each agent gets its own resumable sweep (``rlprune.sweep``) in ``OUT/<algo>/<name>/``;
the leaderboard is rebuilt from those sweeps, so an interrupted zoo run resumes agent by
agent and cell by cell. An agent that fails (an unreadable file, a missing statistics
file, an env that does not exist here) is reported in the leaderboard with its error and
the others go on: in a folder of dozens of agents, one broken file should cost one row.
"""

from __future__ import annotations

import functools
import re
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rlprune.adapters import load_agent
from rlprune.adapters.base import AgentAdapter
from rlprune.adapters.registry import FileProbe, kind_of
from rlprune.io import atomic_write_text
from rlprune.report import markdown_table, pyplot, save_figure, write_json
from rlprune.search import METHODS, Executor, objective_for
from rlprune.settings import Evaluation, Target
from rlprune.sweep import sweep
from rlprune.units import UnitFolder, land

__all__ = ["LEADERBOARD_COLUMNS", "ZooAgent", "ZooSettings", "find_zoo_agents", "run_zoo"]

LEADERBOARD_COLUMNS = ["algo", "env_id", "method", "target", "sparsity", "step_ms", "speedup",
                       "mean", "std", "iqm", "episodes", "pct_of_dense", "diff_to_dense",
                       "search_env_steps", "error"]
"""RL Zoo's benchmark columns (algo, env_id, mean, std, episodes), then the pruning's."""

_CHECKPOINT = re.compile(r"rl_model_\d+_steps\.zip$")
"""RL Zoo's periodic checkpoints: intermediate agents, not the one a run published."""


@dataclass(frozen=True)
class ZooAgent:
    """One agent file of a zoo run and the folder name its results go to."""

    path: Path
    name: str
    """``algo/ENV_1`` for the RL Zoo layout, else the file's stem (unique in the run)."""


@dataclass(frozen=True)
class ZooSettings:
    """What every agent of a zoo run is put through (stored with the leaderboard)."""

    sparsities: tuple[float, ...] = (0.5, 0.8)
    """Target parameter sparsities rho."""
    methods: tuple[str, ...] = ("magnitude", "cmaes")
    """Pruning methods (``rlprune.search.METHODS``)."""
    tol: float = 0.01
    """Tolerance eps on the achieved sparsity."""
    budget: int = 20
    """Candidates per search."""
    episodes: int = 4
    """Search episodes per candidate (seeds ``seed``...)."""
    eval_episodes: int = 10
    """Held-out episodes per leaderboard row (held-out seeds, full length)."""
    seed: int = 0
    """Seeds the searches and both episode sets."""
    max_episode_steps: int | None = None
    """Caps search episodes (the held-out rows always run full episodes)."""

    def __post_init__(self) -> None:
        if not self.sparsities:
            raise ValueError("give at least one target sparsity")
        for rho in self.sparsities:
            Target(rho, self.tol)
        unknown = [m for m in self.methods if m not in METHODS]
        if not self.methods or unknown:
            raise ValueError(f"unknown methods {unknown or '(none given)'}; choose from "
                             f"{list(METHODS)}")
        if self.episodes < 1 or self.eval_episodes < 1 or self.budget < 1:
            raise ValueError("episodes, eval_episodes and budget must be >= 1")


def _agents_in_folder(folder: Path) -> list[ZooAgent]:
    """RL Zoo's published agent per run folder (``ALGO/ENV_1/ENV.zip``, else its
    ``best_model.zip``), and agent zips in flat (Hugging Face style) folders."""
    found: list[ZooAgent] = []
    for directory in sorted({p.parent for p in folder.rglob("*.zip")}):
        zips = sorted(p for p in directory.glob("*.zip") if not _CHECKPOINT.search(p.name))
        env = re.sub(r"_\d+$", "", directory.name)
        final = [p for p in zips if p.stem == env and env != directory.name]
        best = [p for p in zips if p.name == "best_model.zip"]
        run = directory.relative_to(folder).as_posix()
        if (final or best) and run != ".":  # an RL Zoo run: its agent, damaged or not
            found.append(ZooAgent((final or best)[0], run))
            continue
        found += [ZooAgent(path, (directory / path.stem).relative_to(folder).as_posix())
                  for path in zips if kind_of(FileProbe(path)) is not None]
    return found


def find_zoo_agents(sources: Sequence[str | Path]) -> list[ZooAgent]:
    """The agents of RL Zoo log folders and/or agent files, in a stable order.

    Raises:
        FileNotFoundError: a source does not exist.
        ValueError: no agent was found (before anything is written).
    """
    agents: list[ZooAgent] = []
    for source in map(Path, sources):
        if source.is_dir():
            agents += _agents_in_folder(source)
        elif source.is_file():
            agents.append(ZooAgent(source, source.stem))
        else:
            raise FileNotFoundError(f"no zoo folder or agent file at {source}")
    if not agents:
        raise ValueError(f"no agents in {', '.join(map(str, sources))}: expected RL Zoo "
                         "folders (ALGO/ENV_1/ENV.zip) or agent files")
    names = [a.name for a in agents]
    if len(set(names)) < len(names):  # two sources with a same-named file: keep both
        agents = [ZooAgent(a.path, f"{i:02d}-{a.name}") for i, a in enumerate(agents)]
    return agents


def _leaderboard_rows(agent: ZooAgent, rows: list[dict], info: dict) -> list[dict]:
    dense = next((r["metric"] for r in rows if r["method"] == "dense"), None)
    algo = info.get("algorithm") or info.get("kind")
    # A ratio of returns means "kept this share" only when the dense return is positive
    # (Pendulum's are negative): elsewhere the difference is the honest column.
    return [{"agent": agent.name, "algo": algo, "env_id": info.get("task"),
             "method": r["method"], "target": r["target"], "sparsity": r["sparsity"],
             "step_ms": r.get("step_ms"), "speedup": r.get("speedup"),
             "mean": r["metric"], "std": r.get("std"), "ci95": r["ci95"],
             "iqm": r.get("iqm"), "iqm_ci95": r.get("iqm_ci95"),
             "episodes": r.get("episodes"),
             "pct_of_dense": 100.0 * r["metric"] / dense if dense and dense > 0 else None,
             "diff_to_dense": None if dense is None else r["metric"] - dense,
             "search_env_steps": r.get("search_env_steps", 0)} for r in rows]


def _agent_rows(agent: ZooAgent, adapter: AgentAdapter, settings: ZooSettings, out: Path,
                executor: Executor | None, log: Callable[[str], None]) -> list[dict]:
    evaluation = Evaluation(None, settings.episodes, settings.seed, settings.max_episode_steps,
                            race=True)
    held_out = objective_for(adapter, evaluation.held_out(settings.eval_episodes))
    rows = sweep(adapter, objective_for(adapter, evaluation), settings.sparsities, settings.methods,
                 out / agent.name, tol=settings.tol, budget=settings.budget,
                 seed=settings.seed, report_objective=held_out, executor=executor,
                 log=lambda line: log(f"  {agent.name}: {line.strip()}"))
    return _leaderboard_rows(agent, rows, adapter.describe())


def _error_row(agent: ZooAgent, e: Exception) -> dict:
    return {"agent": agent.name, "error": f"{type(e).__name__}: {e}".splitlines()[0],
            "trace": traceback.format_exc(limit=3)}


def _loaded(agent: ZooAgent) -> AgentAdapter | dict:
    """The agent, loaded here (workers on other machines need not see its files), or
    its error row."""
    try:
        return load_agent(agent.path)
    except Exception as e:  # noqa: BLE001 - one broken agent must not stop the zoo
        return _error_row(agent, e)


def _run_agent(settings: ZooSettings, job: tuple[ZooAgent, AgentAdapter | dict, UnitFolder],
               executor: Executor | None = None,
               log: Callable[[str], None] = lambda line: None):
    """One agent's leaderboard rows (one row with ``error`` if it failed), run in the
    folder its worker sees; and the files to land when that is not the run folder."""
    agent, adapter, folder = job
    if isinstance(adapter, dict):
        return [adapter], None
    try:
        return folder.run(lambda out: _agent_rows(agent, adapter, settings, out, executor, log))
    except Exception as e:  # noqa: BLE001 - one broken agent must not stop the zoo
        return [_error_row(agent, e)], None


def run_zoo(agents: Sequence[ZooAgent], settings: ZooSettings, out: str | Path, *,
            executor: Executor | None = None,
            log: Callable[[str], None] = print) -> list[dict]:
    """Runs (or resumes) every agent's sweep; writes and returns the leaderboard rows.

    An agent that raises is logged and reported as one row with ``error`` set; the run
    goes on with the next. Failed agents are tried again when the run resumes. With a
    parallel executor (process pool, Ray) agents run side by side, one per worker, each
    sweep in its worker; with one agent, its sweep spreads its cells instead.
    """
    out = Path(out)
    jobs = [(agent, _loaded(agent), UnitFolder.of(out, [agent.name])) for agent in agents]
    spread = executor is not None and executor.parallel and len(agents) > 1
    if spread:
        finished = executor.run_units(functools.partial(_run_agent, settings), jobs)
    else:
        finished = ((i, _run_agent(settings, job, executor, log), "this process")
                    for i, job in enumerate(jobs))
    by_agent: dict[int, list[dict]] = {}
    for index, (rows, files), where in finished:
        land(out, files)
        by_agent[index] = rows
        agent = agents[index]
        failed = rows[0].get("error") if rows else None
        log(f"[{len(by_agent)}/{len(agents)}] {agent.name} ({agent.path})"
            + (f": failed: {failed}" if failed else ": done")
            + (f" on {where}" if spread else ""))
        write_leaderboard([r for i in sorted(by_agent) for r in by_agent[i]], settings, out)
    return [r for i in sorted(by_agent) for r in by_agent[i]]


def write_leaderboard(rows: list[dict], settings: ZooSettings, out: Path) -> dict[str, Path]:
    """``leaderboard.json``, ``leaderboard.md`` and ``leaderboard.png`` in ``out``."""
    paths = {"json": write_json(out / "leaderboard.json", {
        "settings": asdict(settings), "rows": rows})}
    columns = ["agent", *LEADERBOARD_COLUMNS]
    shown = [c for c in columns if any(r.get(c) is not None for r in rows)]
    paths["md"] = write_text_table(rows, shown, out / "leaderboard.md")
    paths["png"] = plot_leaderboard(rows, out / "leaderboard.png")
    return paths


def write_text_table(rows: list[dict], columns: list[str], path: Path) -> Path:
    return atomic_write_text(path, markdown_table(
        [{k: ("" if v is None else v) for k, v in r.items()} for r in rows], columns))


def plot_leaderboard(rows: list[dict], path: Path) -> Path:
    """Percent of dense return against sparsity: one panel per method, a line per agent."""
    scored = [r for r in rows if r.get("pct_of_dense") is not None and r["method"] != "dense"]
    methods = list(dict.fromkeys(r["method"] for r in scored)) or ["(no rows)"]
    fig, axes = pyplot().subplots(1, len(methods), figsize=(4.5 * len(methods), 3.8),
                                  squeeze=False, sharey=True)
    for ax, method in zip(axes[0], methods):
        for agent in dict.fromkeys(r["agent"] for r in scored):
            mine = sorted((r for r in scored if r["agent"] == agent and r["method"] == method),
                          key=lambda r: r["sparsity"])
            if mine:
                ax.plot([r["sparsity"] for r in mine], [r["pct_of_dense"] for r in mine],
                        marker="o", label=agent)
        ax.axhline(100.0, color="k", lw=1)
        ax.set_title(method)
        ax.set_xlabel("parameter sparsity")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("% of dense return")
    if scored:
        axes[0][-1].legend(fontsize="small")
    fig.tight_layout()
    return save_figure(fig, path)
