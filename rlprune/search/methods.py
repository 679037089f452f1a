"""The registry of search methods: a method is added in its own module with one
``register_method`` call, and ``search()``, sweeps and the CLI find it here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the harness imports nothing from here
    from rlprune.search.harness import SearchHarness
    from rlprune.search.visited import VisitedInputs

__all__ = ["METHODS", "SearchMethod", "register_method"]


@dataclass(frozen=True)
class SearchMethod:
    """How a method finds coefficients.

    Args:
        name: what ``--method`` takes.
        run: ``(harness, visited, seed)``: scores candidates through the harness until
            it is done or the budget is spent. ``None`` for a baseline, whose plan is the
            all-ones candidate over its own ``criterion`` (one evaluation, no search).
        criterion: a baseline's fixed base importance (searches use the user's).
        uses_states: reads the dense agent's visited states itself (their env steps are
            counted as the search's).
        description: one line for help texts.
    """

    name: str
    run: Callable[[SearchHarness, VisitedInputs, int], None] | None = None
    criterion: str | None = None
    uses_states: bool = False
    description: str = ""

    @property
    def is_baseline(self) -> bool:
        return self.run is None


METHODS: dict[str, SearchMethod] = {}
"""Registered methods by name, baselines first."""


def register_method(method: SearchMethod) -> SearchMethod:
    """Adds a method (a later one under the same name replaces the earlier)."""
    if (method.run is None) == (method.criterion is None):
        raise ValueError(f"method {method.name!r}: give either run= (a search) or "
                         "criterion= (a baseline)")
    METHODS[method.name] = method
    return method
