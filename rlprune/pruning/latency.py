"""Predicted time of one control step for any plan, from measured times of layer shapes.

A control step's time is a fixed overhead (the planner's sampling and sorting, Python,
the env-facing code) plus the networks' compute: every acting component runs as its
adapter's ``step_calls`` say, and each run costs the sum of its layers' times at their
(pruned) widths for that many rows. Layer times are measured once per shape, backend
thread count and row count, and kept in a lookup table (as hardware-aware pruning does),
so a plan's time is predicted without building or timing the pruned agent. Layers timed
alone are not layers timed in a controller (caches, fused dispatch), so the model is
calibrated on two measured steps, the dense agent and a copy with half of every group
gone: step = overhead + scale x (the table's compute).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import torch
from torch import nn

from rlprune.backends import backend_named
from rlprune.layers import channelwise_layer
from rlprune.pruning.accounting import CostModel
from rlprune.pruning.channelwise import narrowed
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.modes import observed_forward
from rlprune.timing import time_calls, torch_threads

__all__ = ["LatencyModel", "LayerTimes"]

_FREE = (nn.Dropout, nn.Identity, nn.Flatten)
"""Layers that cost nothing at inference."""


class LayerTimes:
    """Measured seconds of single layers by shape: a lookup table filled on demand.

    Args:
        threads: intra-op threads the layers run on (as the controller will).
        granularity: widths above 64 are measured rounded up to a multiple of this, so
            plans of nearby widths share measurements (a slight overestimate).
        backend: what runs each layer (``rlprune.backends``): a compiled or bfloat16
            layer costs another time than an eager one, and not in proportion.

    Raises:
        ValueError: threads < 1, or an unknown backend.
        BackendUnavailable: the backend cannot run on this machine.
    """

    def __init__(self, threads: int = 1, granularity: int = 8,
                 backend: str = "eager") -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads, self.granularity = threads, granularity
        self.backend = backend_named(backend)
        self._seconds: dict[tuple, float] = {}

    def to_dict(self) -> dict:
        """JSON-able table: a run keeps it, so a resumed search predicts alike."""
        return {"threads": self.threads, "granularity": self.granularity,
                "backend": self.backend.name,
                "seconds": [[*key, value] for key, value in self._seconds.items()]}

    @classmethod
    def from_dict(cls, data: dict) -> LayerTimes:
        times = cls(data["threads"], data["granularity"], data.get("backend", "eager"))
        times._seconds = {tuple(row[:-1]): row[-1] for row in data["seconds"]}
        return times

    def _width(self, width: int) -> int:
        return width if width <= 64 else math.ceil(width / self.granularity) * self.granularity

    def linear(self, in_features: int, out_features: int, rows: int) -> float:
        shape = (self._width(in_features), self._width(out_features))
        return self._measure(("linear", *shape, rows), lambda: nn.Linear(*shape), shape[:1],
                             rows)

    def conv(self, layer: nn.Module, in_channels: int, out_channels: int,
             spatial: tuple[int, ...], rows: int) -> float:
        """A convolution like ``layer`` between the given channel counts, on inputs of
        ``spatial`` size."""
        shape = (self._width(in_channels), self._width(out_channels))
        settings = (layer.kernel_size, layer.stride, layer.padding, layer.dilation)
        key = (type(layer).__name__, *shape, repr(settings), *spatial, rows)
        return self._measure(key, lambda: type(layer)(*shape, *settings),
                             (shape[0], *spatial), rows)

    def lstm(self, input_size: int, hidden_size: int, rows: int) -> float:
        """One step of a one-layer LSTM from a zero state."""
        shape = (self._width(input_size), self._width(hidden_size))
        return self._measure(("lstm", *shape, rows), lambda: _OneStep(nn.LSTM(*shape)),
                             shape[:1], rows)

    def elementwise(self, layer: nn.Module, shape: tuple[int, ...], rows: int) -> float:
        """A normalisation or activation on inputs of ``shape`` per sample, channels first
        (a LayerNorm or channelwise layer is rebuilt at that width; a parameter-free layer
        is timed as it is)."""
        shape = (self._width(shape[0]), *shape[1:])
        if isinstance(layer, nn.LayerNorm):
            return self._measure(("norm", *shape, rows), lambda: nn.LayerNorm(shape[0]),
                                 shape, rows)
        if channelwise_layer(layer) is not None:
            return self._measure((type(layer).__name__, *shape, rows),
                                 lambda: narrowed(layer, shape[0]).eval(), shape, rows)
        return self._measure((type(layer).__name__, repr(layer), *shape, rows), lambda: layer,
                             shape, rows)

    def _measure(self, key: tuple, build, shape: tuple[int, ...], rows: int) -> float:
        if key not in self._seconds:
            # a copy: a parameter-free layer is the agent's own, and a backend rewrites it
            layer, x = copy.deepcopy(build()), torch.randn(rows, *shape)
            with torch.no_grad(), torch_threads(self.threads):
                self.backend.apply(layer, x)
                self._seconds[key] = time_calls(lambda: layer(x), repeats=5, warmup=1,
                                                min_seconds=5e-4).median
        return self._seconds[key]


class LatencyModel:
    """Predicted seconds per control step of ``grouper.agent`` with channels removed.

    Args:
        grouper: the groups plans remove channels from (other acting components run at
            their own widths).
        times: the layer table (its thread count is the controller's).
        overhead: seconds per step outside the networks.
        scale: measured seconds of network compute per second the table predicts.
    """

    def __init__(self, grouper: ComponentGrouper, times: LayerTimes, overhead: float = 0.0,
                 scale: float = 1.0) -> None:
        self.costs, self.times = CostModel(grouper), times
        self.calls = grouper.agent.step_calls()
        components = grouper.agent.components()
        self._layers = {name: _leaves(components[name].module, components[name].example_input)
                        for name in self.calls}
        self.overhead, self.scale = overhead, scale

    def fitted(self, measured: list[tuple[Mapping[str, int], float]]) -> LatencyModel:
        """This model with overhead and scale fitted to measured seconds per step of
        plans (removed counts): one plan sets the overhead alone, two or more both (least
        squares). Noisy timings can ask for the impossible: a scale <= 0 falls back to 1,
        an overhead < 0 to 0 (the scale then fitted alone)."""
        compute = [self.compute(removed) for removed, _ in measured]
        seconds = [s for _, s in measured]
        scale = 1.0
        if len(measured) > 1 and max(compute) > min(compute):
            fit = torch.linalg.lstsq(torch.tensor([[1.0, c] for c in compute],
                                                  dtype=torch.float64),
                                     torch.tensor(seconds, dtype=torch.float64)[:, None])
            scale = float(fit.solution[1]) if float(fit.solution[1]) > 0 else 1.0
        overhead = sum(s - scale * c for s, c in zip(seconds, compute)) / len(seconds)
        if overhead < 0:
            overhead = 0.0
            scale = sum(s * c for s, c in zip(seconds, compute)) / sum(c * c for c in compute)
        fitted = copy.copy(self)  # shares the layer table
        fitted.scale, fitted.overhead = scale, overhead
        return fitted

    def anchored(self, seconds: float) -> LatencyModel:
        """This model with the overhead moved so that the unpruned step takes ``seconds``
        (measured): the same networks under another planner budget spend another time
        outside them. The scale is kept unless that would need a negative overhead."""
        anchored = copy.copy(self)
        compute = self.compute({})
        anchored.overhead = seconds - self.scale * compute
        if anchored.overhead < 0:
            anchored.overhead, anchored.scale = 0.0, seconds / compute
        return anchored

    @property
    def threads(self) -> int:
        return self.times.threads

    def compute(self, removed: Mapping[str, int]) -> float:
        """Seconds of network compute per step."""
        total = 0.0
        for component, calls in self.calls.items():
            for call in calls:
                rows = max(1, round(call.rows))
                total += call.count * self._component(component, removed, rows)
        return total

    def predict(self, removed: Mapping[str, int]) -> float:
        """Seconds per control step: overhead plus scaled compute."""
        return self.overhead + self.scale * self.compute(removed)

    def saving(self, removed: Mapping[str, int]) -> float:
        """Fraction of the dense step time saved (1 - 1 / predicted speed-up)."""
        return 1 - self.predict(removed) / self.predict({})

    def _component(self, component: str, removed: Mapping[str, int], rows: int) -> float:
        seconds, width = 0.0, 0
        for name, layer, shape in self._layers[component]:
            key = (component, name)
            if isinstance(layer, (nn.Linear, nn.LSTM, nn.modules.conv._ConvNd)):
                fan_in, width = (self.costs.shape(key, removed) if key in self.costs.layers
                                 else (shape[0], _out_width(layer)))
                if isinstance(layer, nn.Linear):
                    seconds += self.times.linear(fan_in, width, rows)
                elif isinstance(layer, nn.LSTM):
                    seconds += self.times.lstm(fan_in, width, rows)
                else:
                    seconds += self.times.conv(layer, fan_in, width, shape[1:], rows)
            elif width:  # norms and activations act on the last layer's output
                seconds += self.times.elementwise(layer, (width, *shape[1:]), rows)
        return seconds


def _out_width(layer: nn.Module) -> int:
    if isinstance(layer, nn.LSTM):
        return layer.hidden_size
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


class _OneStep(nn.Module):
    """An LSTM run for one step on a batch of rows (as a recurrent policy acts)."""

    def __init__(self, lstm: nn.LSTM) -> None:
        super().__init__()
        self.lstm = lstm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lstm(x.unsqueeze(0))[0]


def _leaves(module: nn.Module, example: torch.Tensor) -> list[tuple[str, nn.Module, tuple]]:
    """Layers that compute, in the order a forward pass of ``example`` runs them (a layer
    run twice counts twice), each with its input shape per sample (channels first)."""
    names = {m: n for n, m in module.named_modules()}
    run: list[tuple[str, nn.Module, tuple]] = []
    observed_forward(module, example, [m.register_forward_pre_hook(
        # an LSTM's input is (steps, rows, features)
        lambda m, args: run.append((names[m], m, tuple(args[0].shape[-1:] if isinstance(
            m, nn.LSTM) else args[0].shape[1:]))))
        for m in module.modules() if not list(m.children()) and not isinstance(m, _FREE)])
    return run
