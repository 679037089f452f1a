"""Rows of ``rlprune latency``: measured and predicted time per control step per agent
and backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from rlprune.adapters.base import AgentAdapter
from rlprune.analysis.latency import measure_step
from rlprune.backends import on_backend
from rlprune.pruning.accounting import CostModel
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.latency import LatencyModel, LayerTimes
from rlprune.step_timing import calibrate
from rlprune.timing import torch_threads

__all__ = ["latency_rows", "width_staircase"]


def latency_rows(agents: Mapping[str, AgentAdapter], threads: int = 1, steps: int = 20,
                 seed: int = 0, backends: Sequence[str] = ("eager",)) -> list[dict]:
    """One row per agent and backend: parameters and FLOPs per control step of its
    acting components, measured step time, and the time the cost model predicts from its
    layer widths (a table of layer times measured on that backend), calibrated on the
    first agent on that backend. Speed-ups are relative to the first row (the first agent
    on the first backend). The other agents' predictions are real predictions: they were
    not timed to make them.
    """
    rows = []
    for backend in backends:
        reference, times = None, LayerTimes(threads, backend=backend)

        def prepare(agent: AgentAdapter, backend: str = backend) -> AgentAdapter:
            with torch_threads(threads):  # a backend may size its thread pool now
                return on_backend(agent, backend)

        for name, agent in agents.items():
            if reference is None:  # its dense step is one of the calibration's two
                reference, measured = calibrate(agent, times, steps, prepare, seed)
            else:
                measured = measure_step(prepare(agent), threads, steps, seed=seed)
            grouper = ComponentGrouper(agent, list(agent.step_calls()))
            model = LatencyModel(grouper, times, reference.overhead, reference.scale)
            dense = CostModel(grouper).dense
            rows.append({"agent": name, "backend": backend, "params": dense.params,
                         "step_mflops": dense.step_flops / 1e6, **measured.to_dict(),
                         "predicted_ms": 1e3 * model.predict({})})
    for row in rows:
        row["speedup"] = rows[0]["median_ms"] / row["median_ms"]
    return rows


def width_staircase(agent: AgentAdapter, threads: int = 1,
                    multiples: Sequence[int] = (2, 4, 8, 16, 32, 64)) -> dict:
    """Where odd widths cost more than rounder ones, on this machine and thread count.

    Takes the hidden layer that costs the controller most (the most FLOPs per step among
    the acting components' first hidden layers), times it and the layer it feeds at every
    width from half to full, at the rows it runs with, and for each multiple ``m`` says
    how often the next multiple of ``m`` (more channels) runs faster than the width itself:
    where that is clearly most of the time (60%: timings of one width scatter), ``--round-to
    m`` loses nothing.
    """
    calls = agent.step_calls()
    networks = {name: c.module for name, c in agent.components().items() if name in calls}

    def cost(name: str) -> float:
        first = next(m for m in networks[name].modules() if isinstance(m, nn.Linear))
        return sum(c.samples for c in calls[name]) * first.in_features * first.out_features

    name = max((n for n in networks
                if sum(isinstance(m, nn.Linear) for m in networks[n].modules()) > 1), key=cost)
    layer, following = [m for m in networks[name].modules() if isinstance(m, nn.Linear)][:2]
    rows = max(1, round(max(c.rows for c in calls[name])))
    times = LayerTimes(threads, granularity=1)
    widths = range(max(1, layer.out_features // 2), layer.out_features + 1)
    seconds = {w: times.linear(layer.in_features, w, rows) +
               times.linear(w, following.out_features, rows) for w in widths}
    summary = []
    for m in multiples:
        odd = [w for w in widths if w % m and (w // m + 1) * m in seconds]
        faster = [w for w in odd if seconds[(w // m + 1) * m] < seconds[w]]
        summary.append({"round_to": m, "odd_widths": len(odd),
                        "next_multiple_faster": len(faster) / max(len(odd), 1)})
    suggested = max((s["round_to"] for s in summary if s["next_multiple_faster"] >= 0.6),
                    default=1)
    return {"component": name, "layer_in": layer.in_features, "rows": rows,
            "widths": {str(w): 1e6 * s for w, s in seconds.items()}, "multiples": summary,
            "suggested_round_to": suggested}
