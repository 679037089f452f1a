"""Rows of ``rlprune latency``: measured and predicted time per control step per agent."""

from __future__ import annotations

from collections.abc import Mapping

from rlprune.adapters.base import AgentAdapter
from rlprune.analysis.latency import measure_step
from rlprune.pruning.accounting import CostModel
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.latency import LatencyModel, LayerTimes
from rlprune.step_timing import calibrate

__all__ = ["latency_rows"]


def latency_rows(agents: Mapping[str, AgentAdapter], threads: int = 1, steps: int = 20,
                 seed: int = 0) -> list[dict]:
    """One row per agent: parameters and FLOPs per control step of its acting
    components, measured step time, and the time the cost model predicts from its layer
    widths, calibrated on the first agent (the reference: speed-ups are relative to it).
    The other agents' predictions are real predictions: they were not timed to make them.
    """
    times, reference, rows = LayerTimes(threads), None, []
    for name, agent in agents.items():
        if reference is None:
            reference, _ = calibrate(agent, times, steps)
        grouper = ComponentGrouper(agent, list(agent.step_calls()))
        measured = measure_step(agent, threads, steps, seed=seed)
        model = LatencyModel(grouper, times, reference.overhead, reference.scale)
        dense = CostModel(grouper).dense
        rows.append({"agent": name, "params": dense.params,
                     "step_mflops": dense.step_flops / 1e6, **measured.to_dict(),
                     "predicted_ms": 1e3 * model.predict({})})
    reference = rows[0]["median_ms"]
    for row in rows:
        row["speedup"] = reference / row["median_ms"]
    return rows
