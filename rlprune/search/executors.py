"""Where work runs: this process, a local process pool, or a Ray cluster.

Two kinds of work. A search hands the executor a population of candidates (each: the
channels its plan removes, and the incumbent it races against) and gets their scores
back in order; every worker holds its own copy of the agent with masks installed once,
so a candidate costs one objective call wherever it runs. Sweeps, zoo runs and
robustness studies hand it independent units (a sweep cell, a zoo agent, a grid point)
through ``run_units`` and get each result as soon as it is done, so the run folder is
written unit by unit.

Results do not depend on the executor: each candidate sees the same seeded episodes and
the same incumbent (the search fixes the incumbent for a whole population), each unit
its own seeds, so in-process, pool and Ray runs agree exactly. On Ray, a worker that dies
mid-task (killed, lost node) has its task run again elsewhere; a unit's result reaches
the caller once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, Protocol

import cloudpickle
import torch

from rlprune.adapters.base import AgentAdapter
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.masking import ChannelMasks
from rlprune.pruning.physical import prune_physically
from rlprune.search.objective import Objective, Score
from rlprune.units import UnitResult, UnitRunner, run_unit, run_units

__all__ = ["Executor", "InProcessExecutor", "ProcessExecutor", "RayExecutor", "Scorer",
           "Task", "make_executor"]

Removed = dict[str, tuple[int, ...]]
RETRIES = 3
"""How often Ray runs a task again after its worker died (not after it raised)."""


@dataclass(frozen=True)
class Task:
    """One candidate to score: the channels its plan removes, and the incumbent."""

    removed: Removed
    incumbent: Score | None = None


class Scorer:
    """Scores plans on an objective.

    Objectives that declare ``physical = True`` (episode returns: thousands of forward
    passes per candidate) see a physically pruned copy, which runs faster than the
    masked dense networks and costs one cheap copy; others see the agent itself under
    reversible masks, for the duration of the call.
    """

    def __init__(self, agent: AgentAdapter, components: list[str],
                 interfaces: Sequence[str], objective: Objective) -> None:
        self.agent, self.objective = agent, objective
        self.components = components
        self.grouper = ComponentGrouper(agent, components, interfaces=interfaces)

    def __call__(self, task: Task) -> Score:
        if self.objective.physical:
            return self._score(prune_physically(self.agent, task.removed, self.components),
                               task)
        with ChannelMasks(self.grouper) as masks:
            masks.set_removed(task.removed)
            return self._score(self.agent, task)

    def _score(self, agent: AgentAdapter, task: Task) -> Score:
        return self.objective(agent, task.incumbent if self.objective.races else None)


class Executor(UnitRunner, Protocol):
    """Scores tasks (results in task order) and runs independent units."""

    def start(self, scorer_args: tuple) -> None:
        """Prepares workers; ``scorer_args`` are ``Scorer``'s arguments."""
        ...

    def map(self, tasks: Sequence[Task]) -> Iterator[Score]:
        ...

    def close(self) -> None:
        ...


class InProcessExecutor:
    """Scores in this process, one candidate after another (the default)."""

    parallel = False

    def run_units(self, fn: Callable[[Any], Any], items: Sequence) -> Iterator[UnitResult]:
        return run_units(None, fn, items)

    def start(self, scorer_args: tuple) -> None:
        self.scorer = Scorer(*scorer_args)

    def map(self, tasks: Sequence[Task]) -> Iterator[Score]:
        return map(self.scorer, tasks)

    def close(self) -> None:
        """Nothing to release."""


_WORKER: Scorer | None = None


def _exit_with_parent(parent: int) -> None:
    """Ends this worker process when ``parent`` (the process that started it) is gone: a
    driver killed mid-run must not leave workers playing episodes for nobody. The pid is
    passed in, not read here: a driver killed while its workers were still starting has
    already handed them to another parent."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="rlprune-parent-watch").start()


def _init_worker(scorer_args: tuple | bytes, threads: int, parent: int | None = None) -> None:
    """Builds this worker's scorer; a pool worker (``parent``: its driver's pid) also ends
    with its driver (Ray looks after its own workers)."""
    global _WORKER
    if parent is not None:
        _exit_with_parent(parent)
    torch.set_num_threads(threads)
    if isinstance(scorer_args, bytes):
        scorer_args = cloudpickle.loads(scorer_args)
    _WORKER = Scorer(*scorer_args)


def _run_pickled(call: bytes) -> bytes:
    """``run_unit`` across a process boundary, both ways through cloudpickle: agents
    saved by older SB3 releases hold local functions (learning-rate schedules) that
    plain pickle refuses."""
    return cloudpickle.dumps(run_unit(*cloudpickle.loads(call)))


def _score_in_worker(task: Task) -> Score:
    return _WORKER(task)


class ProcessExecutor:
    """Scores candidates in parallel worker processes on this machine.

    Args:
        workers: processes (default: the CPU count).
        threads: torch threads per worker (1: workers x threads should not exceed the
            cores, or they fight over them).
    """

    def __init__(self, workers: int | None = None, threads: int = 1) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.threads = threads
        self.pool: ProcessPoolExecutor | None = None

    parallel = True

    def run_units(self, fn: Callable[[Any], Any], items: Sequence) -> Iterator[UnitResult]:
        with ProcessPoolExecutor(min(self.workers, max(len(items), 1)),
                                 mp_context=get_context("spawn"),
                                 initializer=_exit_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(_run_pickled, cloudpickle.dumps((fn, item, self.threads))):
                       index for index, item in enumerate(items)}
            try:
                for future in as_completed(futures):
                    yield futures[future], *cloudpickle.loads(future.result())
            finally:
                for future in futures:
                    future.cancel()

    def start(self, scorer_args: tuple) -> None:
        # spawn, not fork: a forked copy of a process running torch threads can hang.
        # Pickled bytes: multiprocessing would pass tensors through shared memory files,
        # which small /dev/shm mounts (containers) cannot hold; cloudpickle, for agents
        # holding local functions.
        self.pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                        initializer=_init_worker,
                                        initargs=(cloudpickle.dumps(scorer_args), self.threads,
                                                  os.getpid()))

    def map(self, tasks: Sequence[Task]) -> Iterator[Score]:
        return self.pool.map(_score_in_worker, tasks)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


class RayExecutor:
    """Scores candidates on Ray actors, one agent copy per actor.

    Args:
        workers: actors, and units running at once (None: one per ``threads`` CPUs of
            the cluster).
        address: an existing cluster (``"auto"``, ``"ray://host:10001"``); None starts a
            local Ray instance.
        threads: torch threads per actor (each actor reserves as many CPUs).
    """

    def __init__(self, workers: int | None = None, address: str | None = None,
                 threads: int = 1) -> None:
        try:
            import ray
        except ImportError as e:
            raise ImportError("the Ray executor needs Ray: pip install 'rlprune[ray]'") from e
        self.ray, self.workers, self.address, self.threads = ray, workers, address, threads
        self.actors: list = []

    parallel = True

    def _connect(self):
        if not self.ray.is_initialized():
            self.ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        return self.ray

    def run_units(self, fn: Callable[[Any], Any], items: Sequence) -> Iterator[UnitResult]:
        """Each unit is a Ray task, spread over the cluster's nodes, at most ``workers``
        at a time (all of them when ``workers`` is None: the cluster's CPUs decide)."""
        ray = self._connect()
        task = ray.remote(num_cpus=self.threads, max_retries=RETRIES,
                          scheduling_strategy="SPREAD")(run_unit)
        shared_fn = ray.put(fn)
        waiting = list(enumerate(items))[::-1]
        running: dict = {}
        try:
            while waiting or running:
                while waiting and len(running) < (self.workers or len(items)):
                    index, item = waiting.pop()
                    running[task.remote(shared_fn, item, self.threads)] = index
                [ready], _ = ray.wait(list(running), num_returns=1)
                yield running.pop(ready), *ray.get(ready)
        finally:
            for ref in running:
                ray.cancel(ref, force=True)

    def start(self, scorer_args: tuple) -> None:
        ray = self._connect()

        # A killed actor is started again (same agent) and its candidate scored again.
        @ray.remote(num_cpus=self.threads, max_restarts=RETRIES, max_task_retries=RETRIES)
        class _Actor:
            def __init__(self, args, threads):
                _init_worker(args, threads)

            def score(self, task):
                return _score_in_worker(task)

        shared = ray.put(scorer_args)
        count = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // self.threads)
        self.actors = [_Actor.remote(shared, self.threads) for _ in range(count)]

    def map(self, tasks: Sequence[Task]) -> Iterator[Score]:
        from ray.util import ActorPool

        pool = ActorPool(self.actors)
        return pool.map(lambda actor, task: actor.score.remote(task), list(tasks))

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []


ExecutorFactory = Callable[[int | None, str | None], Executor]
EXECUTORS: dict[str, ExecutorFactory] = {}
"""Executors by name: ``factory(workers, address)`` (``--executor NAME``)."""


def register_executor(name: str, factory: ExecutorFactory) -> None:
    """Makes ``--executor NAME`` run candidates on ``factory(workers, address)``."""
    EXECUTORS[name] = factory


def make_executor(name: str, workers: int | None = None, address: str | None = None) -> Executor:
    """The registered executor ``name`` (``inprocess``, ``process``, ``ray``...)."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; choose {', '.join(EXECUTORS)}")
    return EXECUTORS[name](workers, address)


register_executor("inprocess", lambda workers, address: InProcessExecutor())
register_executor("process", lambda workers, address: ProcessExecutor(workers))
register_executor("ray", lambda workers, address: RayExecutor(workers, address))
