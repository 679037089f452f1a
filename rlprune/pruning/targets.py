"""What a target's fraction counts, as a ``Measure`` the ranking cuts by."""

from __future__ import annotations

from rlprune.pruning.accounting import CostModel
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.latency import LatencyModel, LayerTimes
from rlprune.pruning.ranking import Measure, parameter_measure

__all__ = ["make_measure"]


def make_measure(name: str, grouper: ComponentGrouper, times: LayerTimes | None = None,
                 measured_dense: float | None = None) -> Measure:
    """The measure ``name`` (``rlprune.settings.MEASURES``) over ``grouper``'s groups.

    ``latency`` predicts time per control step from the layer table ``times``,
    calibrated on the dense agent's measured seconds per step.
    """
    costs = CostModel(grouper)
    if name == "params":
        return parameter_measure(costs)
    if name == "flops":
        return Measure("flops", costs.step_flop_saving,
                       lambda v: f"saving {v:.3f} of the FLOPs per step")
    if name == "latency":
        if times is None:
            raise ValueError("a latency target needs a layer time table")
        model = LatencyModel(grouper, times, measured_dense)
        return Measure("latency", model.saving,
                       lambda v: f"predicted speed-up {1 / max(1 - v, 1e-9):.2f}x")
    raise ValueError(f"unknown measure {name!r}")
