"""Frozen settings of a run, validated once where they enter (CLI, scripts, Python).

Each is stored in the run folder it produced (``to_dict``), so a resumed run can tell
its own settings from another's and a report can say what was done.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

__all__ = ["HELD_OUT_SEED_OFFSET", "MEASURES", "VALIDATION_SEED_OFFSET", "Evaluation",
           "SearchSettings", "Target"]

HELD_OUT_SEED_OFFSET = 1000
"""Held-out episodes use seeds ``seed + 1000``...: disjoint from the search's own."""
VALIDATION_SEED_OFFSET = 2000
"""Validation episodes (fine-tuning's keep-or-drop) use seeds ``seed + 2000``...: neither
the search's nor the held-out check's."""

MEASURES = ("params", "flops", "latency")


@dataclass(frozen=True)
class Target:
    """The fraction rho of a cost to remove, met within tolerance eps.

    ``measure`` says which cost: ``params`` (parameter sparsity of the pruned components,
    the paper's target), ``flops`` (FLOPs per control step) or ``latency`` (predicted
    time per control step: a speed-up ``x`` is ``1 - 1 / x``).
    """

    sparsity: float
    tol: float = 0.01
    measure: str = "params"

    def __post_init__(self) -> None:
        if not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if not 0.0 <= self.tol < 1.0:
            raise ValueError(f"tol must be in [0, 1), got {self.tol}")
        if self.measure not in MEASURES:
            raise ValueError(f"measure must be one of {', '.join(MEASURES)}, got "
                             f"{self.measure!r}")

    @classmethod
    def speedup(cls, factor: float, tol: float = 0.01) -> Target:
        """A target time per control step of ``1 / factor`` of the dense one."""
        if not factor >= 1.0:
            raise ValueError(f"speed-up must be >= 1, got {factor}")
        return cls(1.0 - 1.0 / factor, tol, "latency")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Evaluation:
    """How candidates (or final agents) are scored: which env, how many seeded episodes."""

    env: str | None = None
    """Env spec; None: the agent's own task."""
    episodes: int = 4
    seed: int = 0
    """Episode ``i`` resets with ``seed + i``."""
    max_episode_steps: int | None = None
    """Caps episodes (None: full length)."""
    race: bool = False
    """Stop a candidate's episodes early once it is clearly worse than the incumbent."""
    split: str = "search"
    """Which data a dataset objective scores on (``search``, ``validation``, ``test``);
    episode objectives tell their episodes apart by seed."""
    perturb: str | None = None
    """A perturbation set: a grid (``"mass=0.5:1.5:3,obs_noise=0:0.05:2"``) or seeded draws
    from ranges (``"mass=0.5~1.5,draws=8"``); returns are scored on every perturbed system
    and aggregated (``rlprune.analysis.perturbation_sets``); None: the nominal system."""
    aggregate: str = "mean"
    """How per-system returns combine: ``mean``, ``worst`` or ``cvar:ALPHA``."""

    def __post_init__(self) -> None:
        if self.aggregate != "mean" and self.perturb is None:
            raise ValueError(f"aggregate {self.aggregate!r} needs a perturbation set "
                             "(--perturb) to aggregate over")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {self.max_episode_steps}")

    def held_out(self, episodes: int, max_episode_steps: int | None = None) -> Evaluation:
        """Episodes the search never saw (seeds offset by ``HELD_OUT_SEED_OFFSET``), not
        raced, full length unless capped."""
        return replace(self, episodes=episodes, seed=self.seed + HELD_OUT_SEED_OFFSET,
                       max_episode_steps=max_episode_steps, race=False, split="test")

    def validation(self) -> Evaluation:
        """The search's episode count and cap on seeds no other check uses, not raced."""
        return replace(self, seed=self.seed + VALIDATION_SEED_OFFSET, race=False,
                       split="validation")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SearchSettings:
    """How coefficients are searched (``to_dict()`` is ``rlprune.search.search``'s keyword
    arguments)."""

    method: str = "magnitude"
    budget: int = 20
    """Candidates scored on the real metric."""
    seed: int = 0
    criterion: str = "l2"
    scope: str = "auto"
    """One coefficient per ``component`` or ``group`` (``auto``: per group for a lone
    component)."""
    components: tuple[str, ...] | None = None
    """Components to prune (None: the adapter's choice)."""
    interfaces: tuple[str, ...] = ()
    """Prunable interfaces to shrink as well."""
    round_to: int = 1
    """Kept channels per group are a multiple of this."""

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ValueError(f"budget must be >= 1, got {self.budget}")
        if self.round_to < 1:
            raise ValueError(f"round_to must be >= 1, got {self.round_to}")
        if self.scope not in ("auto", "component", "group"):
            raise ValueError(f"scope must be 'auto', 'component' or 'group', got {self.scope!r}")

    def to_dict(self) -> dict:
        """JSON-able, and ``search``'s keyword arguments as they are."""
        return {**asdict(self), "components": list(self.components or []) or None,
                "interfaces": list(self.interfaces)}
