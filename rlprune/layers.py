"""Layers the pruner handles beyond Linear and LayerNorm, declared as data.

A *channelwise* layer transforms each channel on its own (a batch norm in eval mode, an
affine scale): removing a channel removes its entry from each tensor the layer holds per
channel, and nothing else changes. Adapters declare the ones their models use
(``register_channelwise_layer``), named by class path, so declaring one never imports the
model library.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ChannelwiseLayer", "channelwise_layer", "keep_lstm_units",
           "register_channelwise_layer"]


@dataclass(frozen=True)
class ChannelwiseLayer:
    """Args:
    path: ``module.QualName`` of the layer class.
    tensors: parameters and buffers holding one entry per channel (None entries are skipped).
    width: the attribute holding the channel count.
    """

    path: str
    tensors: tuple[str, ...]
    width: str = "num_features"


_LAYERS: dict[str, ChannelwiseLayer] = {}


def register_channelwise_layer(layer: ChannelwiseLayer) -> None:
    _LAYERS[layer.path] = layer


def channelwise_layer(module: nn.Module) -> ChannelwiseLayer | None:
    """The declaration of ``module``'s class, if it is a channelwise layer."""
    return _LAYERS.get(f"{type(module).__module__}.{type(module).__qualname__}")


for _norm in (nn.BatchNorm1d, nn.BatchNorm2d):
    register_channelwise_layer(ChannelwiseLayer(
        f"{_norm.__module__}.{_norm.__qualname__}",
        ("weight", "bias", "running_mean", "running_var")))


def keep_lstm_units(lstm: nn.LSTM, keep: list[int]) -> None:
    """A one-layer LSTM cut to the hidden units ``keep``: their rows in each of the four
    gates (``weight_ih``, ``weight_hh``, both biases) and their columns of ``weight_hh``."""
    if lstm.num_layers != 1 or lstm.bidirectional or lstm.proj_size:
        raise ValueError("rlprune prunes one-layer, one-directional LSTMs without "
                         f"projections, not {lstm}")
    kept = torch.as_tensor(sorted(keep), dtype=torch.long)
    rows = torch.cat([kept + gate * lstm.hidden_size for gate in range(4)])
    with torch.no_grad():
        lstm.weight_ih_l0 = nn.Parameter(lstm.weight_ih_l0[rows].clone())
        lstm.weight_hh_l0 = nn.Parameter(lstm.weight_hh_l0[rows][:, kept].clone())
        if lstm.bias:
            lstm.bias_ih_l0 = nn.Parameter(lstm.bias_ih_l0[rows].clone())
            lstm.bias_hh_l0 = nn.Parameter(lstm.bias_hh_l0[rows].clone())
    lstm.hidden_size = len(kept)
