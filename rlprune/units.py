"""Independent units of work (a sweep cell, a zoo agent, a grid point): how they are run,
and how the files they write reach the run folder wherever they ran.

Executors (``rlprune.search.executors``) run units through ``UnitRunner.run_units``.
A sweep cell writes its search state and pruned agent, a zoo agent its whole sweep.
A worker that sees the driver's run folder (this machine, or a cluster with a shared
file system) writes into it directly, so an interrupted run resumes mid-search. A worker
that does not (another machine) works in a temporary folder seeded with the unit's
files from the driver and hands back what it wrote, which the driver lands in the run
folder. Either way the results end up in the run folder on the driver's machine.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch

from rlprune.io import atomic_write, atomic_write_text

__all__ = ["UnitFolder", "UnitResult", "UnitRunner", "land", "run_unit", "run_units"]

UnitResult = tuple[int, Any, str]
"""(index of the unit, what it returned, which worker ran it)."""


class UnitRunner(Protocol):
    """Runs independent units: here one after another, or side by side on workers."""

    parallel: bool
    """Whether units run side by side (else one after another, here)."""

    def run_units(self, fn: Callable[[Any], Any], items: Sequence) -> Iterator[UnitResult]:
        """``fn(item)`` for every item, yielded as each finishes. ``fn`` must pickle
        (a module-level function or a ``functools.partial`` of one)."""
        ...


def run_units(runner: UnitRunner | None, fn: Callable[[Any], Any],
              items: Sequence) -> Iterator[UnitResult]:
    """``fn(item)`` for every item: on ``runner``'s workers when it has them, else here,
    one after another."""
    if runner is not None and runner.parallel:
        yield from runner.run_units(fn, items)
        return
    for index, item in enumerate(items):
        yield index, fn(item), "this process"


def _where() -> str:
    """The worker running this code: its Ray node, else its host and process."""
    try:
        import ray
    except ImportError:
        ray = None
    if ray is not None and ray.is_initialized():
        return f"node {ray.get_runtime_context().get_node_id()[:8]}"
    return f"{socket.gethostname()}:{os.getpid()}"


def run_unit(fn: Callable, item: Any, threads: int) -> tuple[Any, str]:
    """What a worker runs for one unit: ``fn(item)`` on ``threads`` torch threads, and
    the worker's name."""
    torch.set_num_threads(threads)
    return fn(item), _where()

MARKER = ".rlprune-run"
"""A random token in the run folder: a worker that reads the same token sees the folder."""

R = TypeVar("R")


def _token(root: Path) -> str:
    marker = root / MARKER
    if not marker.exists():
        atomic_write_text(marker, uuid.uuid4().hex)
    return marker.read_text()


def _read_tree(root: Path, parts: Sequence[str] | None = None) -> dict[str, bytes]:
    """Files under ``root`` (or under its ``parts``: files or folders), by relative path."""
    paths = [root / part for part in parts] if parts is not None else [root]
    files = [p for path in paths if path.exists()
             for p in ([path] if path.is_file() else sorted(path.rglob("*")))]
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files
            if p.is_file() and p.name != MARKER}


@dataclass(frozen=True)
class UnitFolder:
    """The run folder as a unit of work sees it."""

    root: str
    """The run folder's path on the driver's machine."""
    token: str
    seed: dict[str, bytes]
    """The unit's files already in the run folder (resumed work), by relative path."""

    @classmethod
    def of(cls, root: str | Path, parts: Sequence[str]) -> UnitFolder:
        """The run folder ``root``, seeded with the files of ``parts`` (files or folders
        relative to it) for workers that do not see it."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        return cls(str(root), _token(root), _read_tree(root, parts))

    def _visible(self) -> bool:
        marker = Path(self.root) / MARKER
        return marker.exists() and marker.read_text() == self.token

    def run(self, work: Callable[[Path], R]) -> tuple[R, dict[str, bytes] | None]:
        """``work(folder)`` in the run folder if this worker sees it (nothing to hand
        back), else in a seeded temporary folder whose files are handed back."""
        if self._visible():
            return work(Path(self.root)), None
        with tempfile.TemporaryDirectory(prefix="rlprune-unit-") as tmp:
            for name, data in self.seed.items():
                (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
                (Path(tmp) / name).write_bytes(data)
            return work(Path(tmp)), _read_tree(Path(tmp))


def land(root: str | Path, files: dict[str, bytes] | None) -> None:
    """Writes the files a unit handed back into the run folder (atomically, each)."""
    for name, data in (files or {}).items():
        atomic_write(Path(root) / name, lambda tmp, data=data: Path(tmp).write_bytes(data))
