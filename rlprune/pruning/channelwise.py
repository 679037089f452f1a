"""torch-pruning's view of channelwise layers (``rlprune.layers``): a channel removed from
one is removed from every per-channel tensor it holds, input and output alike."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch_pruning as tp
from torch import nn

from rlprune.layers import ChannelwiseLayer, channelwise_layer

__all__ = ["ChannelwisePruner", "channelwise_pruners", "is_channelwise_handler",
           "channel_params", "narrowed"]


class ChannelwisePruner(tp.pruner.function.BasePruningFunc):
    """Prunes one declared channelwise layer."""

    def __init__(self, layer: ChannelwiseLayer) -> None:
        super().__init__(pruning_dim=0)
        self.layer = layer

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        gone = set(int(i) for i in idxs)
        keep = torch.tensor([i for i in range(self.get_out_channels(layer)) if i not in gone])
        for name in self.layer.tensors:
            tensor = getattr(layer, name, None)
            if tensor is None:
                continue
            kept = tensor.data[keep].clone()
            setattr(layer, name, nn.Parameter(kept, tensor.requires_grad)
                    if isinstance(tensor, nn.Parameter) else kept)
        setattr(layer, self.layer.width, len(keep))
        return layer

    prune_in_channels = prune_out_channels

    def get_out_channels(self, layer: nn.Module) -> int:
        return int(getattr(layer, self.layer.width))

    get_in_channels = get_out_channels


def channelwise_pruners(module: nn.Module) -> dict[type, ChannelwisePruner]:
    """A pruner for each class of channelwise layer inside ``module`` (torch-pruning's
    ``customized_pruners``)."""
    return {type(m): ChannelwisePruner(spec) for m in module.modules()
            if (spec := channelwise_layer(m)) is not None}


def is_channelwise_handler(handler) -> bool:
    return isinstance(getattr(handler, "__self__", None), ChannelwisePruner)


def narrowed(layer: nn.Module, width: int) -> nn.Module:
    """A copy of a channelwise layer keeping its first ``width`` channels."""
    pruner = ChannelwisePruner(channelwise_layer(layer))
    narrow = copy.deepcopy(layer)
    return pruner.prune_out_channels(narrow, range(width, pruner.get_out_channels(narrow)))


def channel_params(layer: nn.Module) -> int:
    """Parameters one channel of a channelwise layer holds (buffers are not parameters)."""
    return sum(isinstance(getattr(layer, name, None), nn.Parameter)
               for name in channelwise_layer(layer).tensors)
