"""Rows of ``rlprune latency``: measured and predicted time per control step per agent
and backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rlprune.adapters.base import AgentAdapter
from rlprune.analysis.latency import measure_step
from rlprune.backends import on_backend
from rlprune.pruning.accounting import CostModel
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.latency import LatencyModel, LayerTimes
from rlprune.step_timing import calibrate
from rlprune.timing import torch_threads

__all__ = ["latency_rows"]


def latency_rows(agents: Mapping[str, AgentAdapter], threads: int = 1, steps: int = 20,
                 seed: int = 0, backends: Sequence[str] = ("eager",)) -> list[dict]:
    """One row per agent and backend: parameters and FLOPs per control step of its
    acting components, measured step time, and the time the cost model predicts from its
    layer widths, calibrated on the first agent on that backend. Speed-ups are relative
    to the first row (the first agent on the first backend). The other agents'
    predictions are real predictions: they were not timed to make them.
    """
    times, rows = LayerTimes(threads), []
    for backend in backends:
        reference = None

        def prepare(agent: AgentAdapter, backend: str = backend) -> AgentAdapter:
            with torch_threads(threads):  # a backend may size its thread pool now
                return on_backend(agent, backend)

        for name, agent in agents.items():
            running = prepare(agent)
            if reference is None:
                reference, _ = calibrate(agent, times, steps, prepare)
            grouper = ComponentGrouper(agent, list(agent.step_calls()))
            measured = measure_step(running, threads, steps, seed=seed)
            model = LatencyModel(grouper, times, reference.overhead, reference.scale)
            dense = CostModel(grouper).dense
            rows.append({"agent": name, "backend": backend, "params": dense.params,
                         "step_mflops": dense.step_flops / 1e6, **measured.to_dict(),
                         "predicted_ms": 1e3 * model.predict({})})
    for row in rows:
        row["speedup"] = rows[0]["median_ms"] / row["median_ms"]
    return rows
