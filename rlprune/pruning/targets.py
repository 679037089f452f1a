"""What a target's fraction counts, as a ``Measure`` the ranking cuts by."""

from __future__ import annotations

from rlprune.pruning.accounting import CostModel
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.latency import LatencyModel
from rlprune.pruning.ranking import Measure, parameter_measure

__all__ = ["make_measure"]


def make_measure(name: str, grouper: ComponentGrouper,
                 latency: LatencyModel | None = None) -> Measure:
    """The measure ``name`` (``rlprune.settings.MEASURES``) over ``grouper``'s groups.

    ``latency`` predicts time per control step with ``latency``'s layer table and
    calibration (made on any grouper of the same agent).
    """
    costs = CostModel(grouper)
    if name == "params":
        return parameter_measure(costs)
    if name == "flops":
        return Measure("flops", costs.step_flop_saving,
                       lambda v: f"saving {v:.3f} of the FLOPs per step")
    if name == "latency":
        if latency is None:
            raise ValueError("a latency target needs a calibrated latency model")
        model = LatencyModel(grouper, latency.times, latency.overhead, latency.scale)
        return Measure("latency", model.saving,
                       lambda v: f"predicted speed-up {1 / max(1 - v, 1e-9):.2f}x")
    raise ValueError(f"unknown measure {name!r}")
