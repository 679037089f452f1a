"""Agent kinds rlprune reads from files: one registration per kind, looked up by ``load_agent``.

A kind is a name, a cheap ``detect`` on a ``FileProbe`` and a ``load`` that builds the
adapter. Adding a format (a new agent family, another era of an existing one) is one
``register_agent_kind`` call beside its adapter; ``load_agent`` and the CLI's help need
no edit.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

from rlprune.adapters.base import AgentAdapter
from rlprune.io import load_weights_only

__all__ = ["AGENT_KINDS", "AgentKind", "FileProbe", "LoadOptions", "kind_of",
           "register_agent_kind"]


@dataclass(frozen=True)
class LoadOptions:
    """What a user may say about an agent file beyond its path (CLI: ``--task``,
    ``--vecnormalize``, ``--planner``). A kind that reads none of them refuses them by name."""

    task: str | None = None
    """Which task of a multi-task checkpoint to act in (its embedding becomes a constant)."""
    vecnormalize: Path | None = None
    """VecNormalize statistics to act with, overriding those found beside the agent."""
    planner: str | None = None
    """MPPI settings of a planning agent changed from its own, e.g. ``"iterations=4,samples=256"``
    (a cheaper planner); parsed by ``tdmpc2.config.parse_planner``."""

    def given(self) -> set[str]:
        """Names of the options that were set."""
        return {f.name for f in fields(self) if getattr(self, f.name) is not None}


class FileProbe:
    """A file's cheap facts, read once and shared by every kind's ``detect``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @cached_property
    def zip_names(self) -> frozenset[str]:
        """Member names if the file is a zip archive, else empty."""
        try:
            with zipfile.ZipFile(self.path) as zf:
                return frozenset(zf.namelist())
        except (zipfile.BadZipFile, OSError):
            return frozenset()

    @cached_property
    def _torch(self) -> tuple[Any, str | None]:
        """(weights-only payload, None), or (None, why it is not a readable torch file)."""
        if self.zip_names and "data" in self.zip_names:
            return None, "an SB3-style zip, not a torch file"
        try:
            return load_weights_only(self.path), None
        except ValueError as e:
            return None, str(e)

    @property
    def torch_data(self) -> Any:
        """The weights-only torch payload, or None for files that are not torch files."""
        return self._torch[0]

    @property
    def torch_error(self) -> str | None:
        """Why the file is not a readable weights-only torch file (None if it is)."""
        return self._torch[1]


@dataclass(frozen=True)
class AgentKind:
    """One file format rlprune reads.

    Args:
        name: short name shown in errors and help (``"tdmpc2"``, ``"sb3"``...).
        description: one line for the CLI's help.
        detect: True when the probed file is of this kind (no side effects).
        load: builds the adapter; raises ``ValueError`` with a fix for bad files.
        options: ``LoadOptions`` fields this kind reads; others given are refused.
    """

    name: str
    description: str
    detect: Callable[[FileProbe], bool]
    load: Callable[[Path, LoadOptions], AgentAdapter]
    options: frozenset[str] = field(default_factory=frozenset)


AGENT_KINDS: dict[str, AgentKind] = {}
"""Registered kinds by name, in the order ``load_agent`` tries them."""


def register_agent_kind(kind: AgentKind) -> AgentKind:
    """Adds a kind (a later registration under the same name replaces the earlier)."""
    AGENT_KINDS[kind.name] = kind
    return kind


def kind_of(probe: FileProbe) -> AgentKind | None:
    """The first registered kind that recognises the file, or None."""
    return next((kind for kind in AGENT_KINDS.values() if kind.detect(probe)), None)
