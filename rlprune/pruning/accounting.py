"""Parameter and FLOP accounting of an agent as a function of channels removed per group.

Counts are exact for the physically pruned network: a Linear layer with ``i`` kept
inputs and ``o`` kept outputs holds ``i*o + o`` parameters and costs ``2*i*o`` FLOPs per
sample; a LayerNorm or channelwise layer (``rlprune.layers``) of ``n`` kept features holds
``n`` times its per-channel parameters (2: scale and shift). Other parameterised layers are
counted at their fixed size. A convolution holds ``i*o*k + o`` parameters (``k``: kernel
size over groups) and costs ``2*i*o*k`` FLOPs per output position. FLOPs count Linear and
convolution layers only, and one-layer LSTMs (``4h(i + h)`` weights, two biases of ``4h``;
one step per sample) (normalisation and activations are linear in width and small
beside them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from rlprune.layers import channelwise_layer
from rlprune.pruning.channelwise import ChannelwisePruner, channel_params
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.modes import observed_forward
from rlprune.pruning.recurrent import lstm_params

__all__ = ["CostModel", "Cost", "group_costs"]


@dataclass(frozen=True)
class Cost:
    """Parameters and FLOPs, in total and per component."""

    params: int
    flops: int
    """FLOPs of one sample through every component once."""
    params_by_component: dict[str, int]
    flops_by_component: dict[str, int]
    step_flops: float = 0.0
    """FLOPs of one control step: each component's FLOPs times the samples it processes
    per step (``AgentAdapter.step_calls``); components that do not act count zero."""


@dataclass
class _Layer:
    component: str
    kind: str  # "linear", "conv", "lstm", "channel" (per-channel parameters) or "fixed"
    in_features: int = 0
    out_features: int = 0
    bias: bool = False
    """Linear: has a bias."""
    params: int = 0
    """"channel": parameters per channel; "fixed": parameters in all; "conv": weights per
    (input, output) channel pair (kernel size / groups)."""
    positions: int = 1
    """"conv": output positions per sample (height x width), each costing the kernel."""


def conv_positions(module: nn.Module, example: torch.Tensor) -> dict[nn.Module, int]:
    """Output positions per sample (height x width) of each convolution in ``module``,
    from one forward pass of the example input."""
    positions: dict[nn.Module, int] = {}
    convs = [m for m in module.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    if not convs:
        return positions
    observed_forward(module, example, [m.register_forward_hook(
        lambda m, args, out: positions.__setitem__(m, math.prod(out.shape[2:])))
        for m in convs])
    return positions


class CostModel:
    """Computes ``Cost`` for any map ``group id -> channels removed``."""

    def __init__(self, grouper: ComponentGrouper) -> None:
        self.step_samples = {name: sum(c.samples for c in calls)
                             for name, calls in grouper.agent.step_calls().items()}
        self.layers: dict[tuple[str, str], _Layer] = {}
        self._in_groups: dict[tuple[str, str], list[tuple[str, int]]] = {}
        self._out_group: dict[tuple[str, str], str] = {}
        for cname, component in grouper.components.items():
            positions = conv_positions(component.module, component.example_input)
            for name, module in component.module.named_modules():
                key = (cname, name)
                if isinstance(module, nn.LSTM):
                    self.layers[key] = _Layer(cname, "lstm", module.input_size,
                                              module.hidden_size, module.bias)
                elif isinstance(module, nn.modules.conv._ConvNd):
                    kernel = math.prod(module.kernel_size) // module.groups
                    self.layers[key] = _Layer(cname, "conv", module.in_channels,
                                              module.out_channels, module.bias is not None,
                                              kernel, positions[module])
                elif isinstance(module, nn.Linear):
                    self.layers[key] = _Layer(cname, "linear", module.in_features,
                                              module.out_features, module.bias is not None)
                elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:
                    width = module.normalized_shape[-1]
                    self.layers[key] = _Layer(cname, "channel", out_features=width,
                                              params=1 + (module.bias is not None))
                elif channelwise_layer(module) is not None:
                    pruner = ChannelwisePruner(channelwise_layer(module))
                    self.layers[key] = _Layer(cname, "channel",
                                              out_features=pruner.get_out_channels(module),
                                              params=channel_params(module))
                else:
                    own = sum(p.numel() for p in module.parameters(recurse=False))
                    if own:
                        self.layers[key] = _Layer(cname, "fixed", params=own)
        for group in grouper.groups:
            for ref in group.layers:
                key = (ref.component, ref.name)
                if ref.role == "in":
                    self._in_groups.setdefault(key, []).append(
                        (group.id, ref.spread(group.channels)))
                else:
                    self._out_group[key] = group.id
        self.dense = self.cost({})

    def shape(self, key: tuple[str, str], removed: Mapping[str, int]) -> tuple[int, int]:
        """(in, out) features of layer ``key`` (component, name) once ``removed`` go."""
        layer = self.layers[key]
        out_removed = removed.get(self._out_group.get(key, ""), 0)
        in_removed = sum(removed.get(g, 0) * spread
                         for g, spread in self._in_groups.get(key, []))
        return layer.in_features - in_removed, layer.out_features - out_removed

    def cost(self, removed: Mapping[str, int]) -> Cost:
        params: dict[str, int] = {}
        flops: dict[str, int] = {}
        for key, layer in self.layers.items():
            i, o = self.shape(key, removed)
            if layer.kind == "linear":
                p, f = i * o + (o if layer.bias else 0), 2 * i * o
            elif layer.kind == "lstm":  # per sample and step
                p, f = lstm_params(i, o, layer.bias), 2 * 4 * o * (i + o)
            elif layer.kind == "conv":
                p = i * o * layer.params + (o if layer.bias else 0)
                f = 2 * i * o * layer.params * layer.positions
            elif layer.kind == "channel":
                p, f = o * layer.params, 0
            else:
                p, f = layer.params, 0
            params[layer.component] = params.get(layer.component, 0) + p
            flops[layer.component] = flops.get(layer.component, 0) + f
        step = sum(self.step_samples.get(c, 0.0) * f for c, f in flops.items())
        return Cost(sum(params.values()), sum(flops.values()), params, flops, step)

    def sparsity(self, removed: Mapping[str, int]) -> tuple[float, float]:
        """(parameter sparsity, FLOP sparsity) relative to the dense components."""
        c = self.cost(removed)
        return 1 - c.params / self.dense.params, 1 - c.flops / max(self.dense.flops, 1)

    def step_flop_saving(self, removed: Mapping[str, int]) -> float:
        """The fraction of the dense control step's FLOPs (of these components) saved."""
        return 1 - self.cost(removed).step_flops / max(self.dense.step_flops, 1.0)


def group_costs(grouper: ComponentGrouper) -> dict[str, dict[str, int]]:
    """Parameters and FLOPs that removing one channel of each group (alone) saves."""
    model = CostModel(grouper)
    out = {}
    for group in grouper.groups:
        one = model.cost({group.id: 1})
        out[group.id] = {"params": model.dense.params - one.params,
                         "flops": model.dense.flops - one.flops}
    return out


def group_summary(grouper: ComponentGrouper) -> list[dict]:
    """One row per group: component, root layer, channels, layers, params and FLOPs."""
    costs = group_costs(grouper)
    return [{"group": g.id, "component": g.component, "channels": g.channels,
             "layers": [f"{r.component}/{r.name}:{r.role}" for r in g.layers],
             "params_per_channel": costs[g.id]["params"],
             "flops_per_channel": costs[g.id]["flops"]} for g in grouper.groups]
