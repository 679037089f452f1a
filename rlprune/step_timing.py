"""A prune run's step times: the dense agent measured, the latency model calibrated on
it, both kept in the run folder so a resumed run predicts alike."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from rlprune.adapters.base import AgentAdapter
from rlprune.analysis.latency import measure_step
from rlprune.backends import on_backend
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.latency import LatencyModel, LayerTimes
from rlprune.pruning.physical import prune_physically
from rlprune.pruning.ranking import Measure, PruningPlan
from rlprune.pruning.targets import make_measure
from rlprune.report import write_json
from rlprune.timing import Timing, torch_threads

__all__ = ["LATENCY_FILE", "StepTiming", "calibrate"]

LATENCY_FILE = "latency.json"


def calibrate(agent: AgentAdapter, times: LayerTimes, steps: int = 20,
              prepare: Callable[[AgentAdapter], AgentAdapter] = lambda agent: agent,
              seed: int = 0) -> tuple[LatencyModel, Timing]:
    """The agent's latency model (on its default groups), fitted to two measured steps:
    the dense agent and a copy with the last half of every group's channels gone, each
    run as ``prepare`` makes it (e.g. on a backend) on observations seeded ``seed``; and
    the dense step's timing."""
    grouper = ComponentGrouper(agent)
    dense = measure_step(prepare(agent), times.threads, steps, seed=seed)
    half = {g.id: range(g.channels - g.channels // (2 * g.unit) * g.unit, g.channels)
            for g in grouper.groups if g.channels >= 2 * g.unit}
    halved = measure_step(prepare(prune_physically(agent, half, list(grouper.components))),
                          times.threads, steps, seed=seed)
    model = LatencyModel(grouper, times).fitted(
        [({}, dense.median), ({gid: len(ix) for gid, ix in half.items()}, halved.median)])
    return model, dense


class StepTiming:
    """The dense agent's measured step time on a backend and thread count, and its
    calibrated latency model."""

    def __init__(self, threads: int, dense: Timing | None, model: LatencyModel | None,
                 budget_factor: float = 1.0, backend: str = "eager") -> None:
        self.threads, self.dense, self.model = threads, dense, model
        self.budget_factor = budget_factor
        """Dense step time over the step time of the planner budget ``model`` predicts
        for (1: the agent's own budget)."""
        self.backend = backend

    @classmethod
    def resume_or_measure(cls, agent: AgentAdapter, threads: int, out: Path,
                          required: bool, backend: str = "eager") -> StepTiming:
        """What ``out`` kept from an earlier run on the same threads and backend, else
        measured now.

        Raises:
            TypeError: ``required`` (a latency target) for an agent that does not act.
            ValueError: threads < 1, an unknown backend, or an agent that cannot run on
                one.
            BackendUnavailable: the backend cannot run on this machine.
        """
        times = LayerTimes(threads, backend=backend)  # validates before anything runs
        timing = cls(threads, None, None, backend=backend)
        if agent.observation_space is None:
            if required:
                raise TypeError(f"{agent.kind} agent does not act: a speed-up or latency "
                                "target needs a control step to time")
            return timing
        saved = out / LATENCY_FILE
        if saved.exists():
            data = json.loads(saved.read_text())
            if data["threads"] == threads and data.get("backend", "eager") == backend:
                model = LatencyModel(ComponentGrouper(agent), LayerTimes.from_dict(
                    data["table"]), data["overhead"], data["scale"])
                return cls(threads, Timing(data["dense_seconds"]), model, backend=backend)
        prepared = timing.on_backend(agent)  # an agent that cannot run there fails now
        if not required:  # the report's measured times need no model
            timing.dense = measure_step(prepared, threads)
            return timing
        timing.model, timing.dense = calibrate(
            agent, times, prepare=lambda a: prepared if a is agent else timing.on_backend(a))
        return timing

    def on_backend(self, agent: AgentAdapter) -> AgentAdapter:
        """``agent`` as this timing runs it."""
        with torch_threads(self.threads):  # a backend may size its thread pool now
            return on_backend(agent, self.backend)

    def measure(self, agent: AgentAdapter) -> Timing:
        """``agent``'s step time on this timing's backend and threads."""
        return measure_step(self.on_backend(agent), self.threads)

    def measure_for(self, name: str) -> Callable[[ComponentGrouper], Measure] | None:
        """The search's target measure (None: parameters, the search's default)."""
        if name == "params":
            return None
        return lambda grouper: make_measure(name, grouper, self.model)

    def for_budget(self, agent: AgentAdapter, seconds: float) -> StepTiming:
        """This timing for ``agent``, the same networks under another planner budget
        measured at ``seconds`` per step: the model predicts that budget's steps (same
        layer table, overhead anchored on ``seconds``); speed-ups stay relative to the
        dense agent's own budget."""
        model = LatencyModel(ComponentGrouper(agent), self.model.times, self.model.overhead,
                             self.model.scale).anchored(seconds)
        return StepTiming(self.threads, self.dense, model, self.dense.median / seconds,
                          self.backend)

    def save(self, out: Path) -> None:
        if self.model is not None:
            write_json(out / LATENCY_FILE, {
                "threads": self.threads, "backend": self.backend,
                "dense_seconds": self.dense.seconds.tolist(),
                "overhead": self.model.overhead, "scale": self.model.scale,
                "table": self.model.times.to_dict()})

    def compare(self, pruned: AgentAdapter, plan: PruningPlan) -> dict:
        """Measured dense and pruned step times, the speed-up, and the prediction."""
        after = self.measure(pruned)
        report = {"threads": self.threads, "backend": self.backend,
                  "dense": self.dense.to_dict(), "pruned": after.to_dict(),
                  "speedup": self.dense.median / after.median}
        if plan.measure == "latency":
            report["predicted_speedup"] = self.budget_factor / (1 - plan.achieved)
        return report
