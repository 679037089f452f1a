"""The perturbed systems a robust objective scores every candidate on.

A set is a grid (``"mass=0.5:1.5:3,obs_noise=0.02"``: every combination) or random draws
from ranges (``"mass=0.5~1.5,friction=0.8~1.2,draws=8"``: each system drawn uniformly from
the box, fixed values joined to every draw). Draws are seeded by the evaluation's seed, so
every candidate of a search plays the same systems (common random numbers), and an
evaluation on other seeds (held-out, validation) draws other systems. A grid scored on other
seeds is moved to the midpoints between its neighbouring values: the held-out check then
sees perturbation values the search never saw, inside the same envelope.
"""

from __future__ import annotations

import itertools

import numpy as np

from rlprune.analysis.robustness import parse_grid

__all__ = ["DEFAULT_DRAWS", "perturbation_points"]

DEFAULT_DRAWS = 8
"""Systems drawn from ranges when the set does not say ``draws=N``."""


def _split_ranges(spec: str) -> tuple[dict[str, tuple[float, float]], str, int | None]:
    """(ranges by name, the grid part of the spec, draws or None)."""
    ranges, grid, draws = {}, [], None
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, _, value = part.partition("=")
        if name.strip() == "draws":
            try:
                draws = int(value)
            except ValueError:
                draws = 0
            if draws < 1:
                raise ValueError(f"perturbation set entry {part!r}: draws must be a whole "
                                 "number >= 1")
        elif "~" in value:
            low, _, high = value.partition("~")
            try:
                ranges[name.strip()] = (float(low), float(high))
            except ValueError as e:
                raise ValueError(f"perturbation set entry {part!r}: expected NAME=LOW~HIGH "
                                 "with numbers") from e
            if ranges[name.strip()][0] > ranges[name.strip()][1]:
                raise ValueError(f"perturbation set entry {part!r}: LOW must not exceed HIGH")
        else:
            grid.append(part)
    return ranges, ",".join(grid), draws


def perturbation_points(spec: str, seed: int, unseen: bool = False) -> list[dict[str, float]]:
    """The systems of a perturbation set, each ``{name: value}``.

    Args:
        spec: a grid and/or ranges with ``draws=N`` (see the module doc).
        seed: seeds the draws (the evaluation's episode seed).
        unseen: a grid's midpoints instead of its points (draws differ by seed anyway).

    Raises:
        ValueError: a malformed entry, an unknown perturbation, ranges mixed with a grid of
            several values, or ``draws`` without ranges.
    """
    ranges, grid_spec, draws = _split_ranges(spec)
    grid = parse_grid(grid_spec) if grid_spec else {}
    if ranges:
        parse_grid(",".join(f"{name}={low}" for name, (low, _) in ranges.items()))  # names
        if any(len(values) > 1 for values in grid.values()):
            raise ValueError("a perturbation set draws from ranges (NAME=LOW~HIGH) or walks "
                             "a grid (NAME=START:STOP:COUNT), not both")
        rng = np.random.default_rng(seed)
        fixed = {name: values[0] for name, values in grid.items()}
        return [{**fixed, **{name: float(rng.uniform(low, high))
                             for name, (low, high) in ranges.items()}}
                for _ in range(draws or DEFAULT_DRAWS)]
    if draws is not None:
        raise ValueError("draws=N needs ranges to draw from (NAME=LOW~HIGH)")
    if unseen:
        grid = {name: (np.convolve(values, [0.5, 0.5], "valid").tolist()
                       if len(values) > 1 else values) for name, values in grid.items()}
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
