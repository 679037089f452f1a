"""The command line's app, its shared options and the helpers every command uses."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rlprune.settings import Target

__all__ = ["app"]

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Prune RL controllers by component-aware soft coefficient search.")

_USER_ERRORS = (ValueError, TypeError, OSError, NotImplementedError)


def _fail(error: Exception) -> None:
    typer.echo(f"rlprune: error: {error}", err=True)
    raise typer.Exit(2)


def _emit(payload: dict, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(payload) if as_json else text)


def _load(agent: str, task: str | None = None, vecnormalize: Path | None = None,
          planner: str | None = None):
    import rlprune

    return rlprune.load_agent(agent, task=task, vecnormalize=vecnormalize, planner=planner)


def write_reports(run_dir: Path) -> None:
    """report.md and the self-contained report.html of a finished run."""
    from rlprune.html_report import write_html_report
    from rlprune.run_report import write_run_report

    write_run_report(run_dir)
    write_html_report(run_dir)


def _methods_help() -> str:
    """The registered search methods (``register_method``), for ``--method``'s help."""
    from rlprune.search import METHODS

    return "; ".join(f"{m.name}: {m.description}" for m in METHODS.values())


def _criteria_help() -> str:
    """The registered criteria (``register_criterion``), for ``--criterion``'s help."""
    from rlprune.pruning.importance import CRITERIA

    return "base importance of searches: " + "; ".join(
        f"{c.name}: {c.description}" for c in CRITERIA.values())


BUDGET = typer.Option(20, help="candidates per search")
JSON = typer.Option(False, "--json", help="print one JSON object")
PERTURB_SET = typer.Option(None, "--perturb", help='score candidates on every system of a '
                           'perturbation set: a grid, e.g. "mass=0.5:1.5:3", or seeded draws, '
                           'e.g. "mass=0.5~1.5,friction=0.8~1.2,draws=8" (robust pruning; '
                           'held-out checks score unseen values)')
AGGREGATE = typer.Option("mean", help="combine the perturbed systems' returns: mean, worst "
                                      "or cvar:ALPHA (the worst ALPHA share)")
SEARCH_MAX_STEPS = typer.Option(None, "--max-episode-steps",
                                help="cap search episodes (env steps)")
HELD_OUT_MAX_STEPS = typer.Option(None, "--eval-max-episode-steps",
                                  help="cap held-out episodes too (default: full length)")
TOL = typer.Option(0.01, help="tolerance eps on the achieved sparsity")
RESUMABLE_OUT = typer.Option(..., help="run directory (resumes if present)")
TASK = typer.Option(None, "--task", help="task of a multi-task checkpoint to act in")
PLANNER = typer.Option(None, "--planner",
                       help='MPPI settings of a TD-MPC2 agent, e.g. "iterations=4,samples=256" '
                            "(a cheaper planner)")
VECNORMALIZE = typer.Option(None, "--vecnormalize",
                            help="VecNormalize statistics of an SB3 agent (default: found "
                                 "beside the zip or in its RL Zoo folder)")


def _objectives_help() -> str:
    """The registered objectives (``register_objective``), for ``--objective``'s help."""
    from rlprune.search import OBJECTIVES

    return f"what candidates are scored by ({', '.join(OBJECTIVES)}; default: the agent's metric)"


OBJECTIVE = typer.Option(None, "--objective", help=_objectives_help())


def _executors_help() -> str:
    """The registered executors (``register_executor``), for ``--executor``'s help."""
    from rlprune.search.executors import EXECUTORS

    return f"where candidates run: {', '.join(EXECUTORS)}"


EXECUTOR = typer.Option("inprocess", help=_executors_help())
WORKERS = typer.Option(None, help="pool processes / Ray actors")
RAY_ADDRESS = typer.Option(None, "--ray-address", help='join an existing Ray cluster with '
                           '--executor ray, e.g. "auto" or "ray://head:10001"')


THREADS = typer.Option(1, help="CPU threads the control step is timed on")


def _backends_help() -> str:
    """The registered backends (``register_backend``), for ``--backend``'s help."""
    from rlprune.backends import BACKENDS

    return "; ".join(f"{b.name}: {b.description}" for b in BACKENDS.values())


BACKEND = typer.Option("eager", "--backend", help="run the networks on: " + _backends_help())
BACKEND_LIST = typer.Option("eager", "--backend", help="comma-separated backends to time "
                                                        "on: " + _backends_help())


def _target(sparsity: float | None, speedup: float | None, spec: str | None,
            tol: float) -> Target:
    """The one target given: --sparsity, --speedup or --target MEASURE=FRACTION."""
    given = [flag for flag, value in (("--sparsity", sparsity), ("--speedup", speedup),
                                      ("--target", spec)) if value is not None]
    if len(given) != 1:
        raise ValueError("give exactly one target: --sparsity, --speedup or --target "
                         f"(got {', '.join(given) or 'none'})")
    if sparsity is not None:
        return Target(sparsity, tol)
    if speedup is not None:
        return Target.speedup(speedup, tol)
    measure, _, value = spec.partition("=")
    try:
        return Target(float(value), tol, measure.strip())
    except ValueError as e:
        raise ValueError(f'--target takes MEASURE=FRACTION (e.g. "flops=0.5"): {e}') from None


def _tuple(option: str | None) -> tuple[str, ...] | None:
    """A comma-separated option as a tuple (None when not given)."""
    names = _names(option)
    return tuple(names) if names else None


def _names(option: str | None) -> list[str] | None:
    """A comma-separated option as a list (None when not given)."""
    return [n.strip() for n in option.split(",") if n.strip()] if option else None


def _floats(option: str, flag: str) -> list[float]:
    try:
        return [float(x) for x in _names(option) or []]
    except ValueError:
        raise ValueError(f"{flag} takes comma-separated numbers, got {option!r}") from None


