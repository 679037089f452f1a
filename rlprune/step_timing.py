"""A prune run's step times: the dense agent measured once, the layer table a latency
target predicts with, both kept in the run folder so a resumed run predicts alike."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from rlprune.adapters.base import AgentAdapter
from rlprune.analysis.latency import measure_step
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.latency import LayerTimes
from rlprune.pruning.ranking import Measure, PruningPlan
from rlprune.pruning.targets import make_measure
from rlprune.report import write_json
from rlprune.timing import Timing

__all__ = ["LATENCY_FILE", "StepTiming"]

LATENCY_FILE = "latency.json"


class StepTiming:
    """The dense agent's measured step time and the layer table, on ``threads`` threads."""

    def __init__(self, threads: int, dense: Timing | None, table: LayerTimes) -> None:
        self.threads, self.dense, self.table = threads, dense, table

    @classmethod
    def resume_or_measure(cls, agent: AgentAdapter, threads: int, out: Path,
                          required: bool) -> StepTiming:
        """What ``out`` kept from an earlier run on the same threads, else measured now.

        Raises:
            TypeError: ``required`` (a latency target) for an agent that does not act.
        """
        table = LayerTimes(threads)  # validates threads before anything runs
        if agent.observation_space is None:
            if required:
                raise TypeError(f"{agent.kind} agent does not act: a speed-up or latency "
                                "target needs a control step to time")
            return cls(threads, None, table)
        saved = out / LATENCY_FILE
        if saved.exists():
            data = json.loads(saved.read_text())
            if data["threads"] == threads:
                return cls(threads, Timing(data["dense_seconds"]),
                           LayerTimes.from_dict(data["table"]))
        return cls(threads, measure_step(agent, threads), table)

    def measure_for(self, name: str) -> Callable[[ComponentGrouper], Measure] | None:
        """The search's target measure (None: parameters, the search's default)."""
        if name == "params":
            return None
        dense = None if self.dense is None else self.dense.median
        return lambda grouper: make_measure(name, grouper, self.table, dense)

    def save(self, out: Path) -> None:
        if self.dense is not None:
            write_json(out / LATENCY_FILE, {"threads": self.threads,
                                            "dense_seconds": self.dense.seconds.tolist(),
                                            "table": self.table.to_dict()})

    def compare(self, pruned: AgentAdapter, plan: PruningPlan) -> dict:
        """Measured dense and pruned step times, the speed-up, and the prediction."""
        after = measure_step(pruned, self.threads)
        report = {"threads": self.threads, "dense": self.dense.to_dict(),
                  "pruned": after.to_dict(), "speedup": self.dense.median / after.median}
        if plan.measure == "latency":
            report["predicted_speedup"] = 1 / (1 - plan.achieved)
        return report
