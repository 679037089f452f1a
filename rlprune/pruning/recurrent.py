"""LSTM hidden units as pruning channels.

Removing hidden unit ``j`` of a one-layer LSTM removes row ``j`` of each of its four gates
(input, forget, cell, output) in ``weight_ih``, ``weight_hh`` and both biases, and column
``j`` of ``weight_hh``; the layers reading its output lose input ``j``. (torch-pruning's
own LSTM pruner cuts ``weight_ih`` and ``weight_hh`` along the wrong axes, so it is
replaced here.)

Masked, a unit's output and state are zeroed after every call and its state before it:
the other units then never see it, which is its physical removal exactly when the LSTM
runs one step per call, as a recurrent policy acting in an env does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch_pruning as tp
from torch import nn

from rlprune.layers import keep_lstm_units

__all__ = ["LSTM_PRUNER", "LSTMPruner", "lstm_params", "masked_state", "masked_output"]


class LSTMPruner(tp.pruner.function.BasePruningFunc):
    """Hidden units (out) and input features (in) of a one-layer LSTM."""

    TARGET_MODULES = nn.LSTM

    def prune_out_channels(self, layer: nn.LSTM, idxs: Sequence[int]) -> nn.LSTM:
        gone = {int(i) for i in idxs}
        keep_lstm_units(layer, [j for j in range(layer.hidden_size) if j not in gone])
        return layer

    def prune_in_channels(self, layer: nn.LSTM, idxs: Sequence[int]) -> nn.LSTM:
        keep = torch.tensor(sorted(set(range(layer.input_size)) - {int(i) for i in idxs}))
        with torch.no_grad():
            layer.weight_ih_l0 = nn.Parameter(layer.weight_ih_l0[:, keep].clone())
        layer.input_size = len(keep)
        return layer

    def get_out_channels(self, layer: nn.LSTM) -> int:
        return layer.hidden_size

    def get_in_channels(self, layer: nn.LSTM) -> int:
        return layer.input_size


LSTM_PRUNER = LSTMPruner()
"""The one instance: grouping tells LSTM handlers by it."""


def lstm_params(inputs: int, hidden: int, bias: bool) -> int:
    """Parameters of a one-layer LSTM: four gates over [input, hidden], two biases each."""
    return 4 * hidden * (inputs + hidden) + (8 * hidden if bias else 0)


def masked_state(args: tuple, mask: torch.Tensor) -> tuple:
    """An LSTM call's arguments with the masked units' incoming (h, c) zeroed."""
    if len(args) < 2 or args[1] is None:
        return args
    h, c = args[1]
    return (args[0], (h * mask, c * mask), *args[2:])


def masked_output(output: tuple, mask: torch.Tensor) -> tuple:
    """An LSTM call's output, (h_n, c_n) included, with the masked units zeroed."""
    out, (h, c) = output
    return out * mask, (h * mask, c * mask)
