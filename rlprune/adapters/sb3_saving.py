"""Making a pruned SB3 model a file SB3 loads and keeps training: critic heads of one
width list, optimisers over the new parameters, and a card naming the env it acts in."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rlprune.io import atomic_write_text
from rlprune.layers import channelwise_layer, keep_lstm_units

__all__ = ["critic_memory_to_width", "equal_width_critics", "rebuild_optimizers",
           "write_card"]


def equal_width_critics(q_networks: Sequence[nn.Module]) -> list[int]:
    """Pads every critic head's hidden layers with zero channels up to the widest head's
    widths and returns them: SB3 builds all heads from one width list. A zero channel
    has zero weights in and out (and zero scale in a channelwise norm after it), so every
    Q value stays what it was.

    Raises:
        ValueError: a head with parameterised layers besides Linear and channelwise ones
            (a LayerNorm would see the zero channels).
    """
    heads = [_hidden_layers(q) for q in q_networks]
    linears = [[m for m in head if isinstance(m, nn.Linear)] for head in heads]
    widths = [max(head[k].out_features for head in linears)
              for k in range(len(linears[0]) - 1)]
    for head in heads:
        k = -1  # the Linear whose outputs the layers met since are on
        for layer in head:
            if isinstance(layer, nn.Linear):
                if k >= 0 and widths[k] > layer.in_features:
                    _grow(layer, widths[k] - layer.in_features, dim=1)
                k += 1
                if k < len(widths) and widths[k] > layer.out_features:
                    _grow(layer, widths[k] - layer.out_features, dim=0)
            elif k >= 0:
                _grow_channelwise(layer, widths[k])
    return widths


def _hidden_layers(q: nn.Module) -> list[nn.Module]:
    """The head's parameterised layers in order, checked to be paddable."""
    layers = [m for m in q.modules() if list(m.parameters(recurse=False))]
    for m in layers:
        if not isinstance(m, nn.Linear) and channelwise_layer(m) is None:
            raise ValueError("critic heads of different widths can only be padded when they "
                             f"hold Linear and channelwise layers only, not {type(m).__name__}")
    return layers


def _grow_channelwise(layer: nn.Module, width: int) -> None:
    """Zero entries up to ``width`` in each per-channel tensor of a channelwise layer."""
    spec = channelwise_layer(layer)
    extra = width - getattr(layer, spec.width)
    if extra <= 0:
        return
    for name in spec.tensors:
        tensor = getattr(layer, name, None)
        if tensor is not None:
            grown = torch.cat([tensor.data, tensor.data.new_zeros(extra)])
            setattr(layer, name, nn.Parameter(grown) if isinstance(tensor, nn.Parameter)
                    else grown)
    setattr(layer, spec.width, width)


def critic_memory_to_width(policy, width: int) -> bool:
    """A recurrent policy's critic LSTM (or its Linear stand-in) at ``width`` hidden
    units, as SB3 builds actor and critic memories from one ``lstm_hidden_size``: a wider
    one is cut to the units with the largest weights (its values change), a narrower one
    padded with zero units (its values stay: a zero unit's state and output stay zero),
    and the value MLP's inputs follow. Returns whether anything changed."""
    memory = policy.lstm_critic if policy.lstm_critic is not None else policy.critic
    if memory is None:  # the critic reads the actor's own LSTM
        return False
    lstm = isinstance(memory, nn.LSTM)
    current = memory.hidden_size if lstm else memory.out_features
    if current == width:
        return False
    reader = next(m for m in (*policy.mlp_extractor.value_net.modules(), policy.value_net)
                  if isinstance(m, nn.Linear))
    if current < width:
        _pad_memory(memory, width - current)
        _grow(reader, width - current, dim=1)
        return True
    if lstm:
        gates = torch.cat([memory.weight_ih_l0, memory.weight_hh_l0], 1).reshape(4, current, -1)
        scores = gates.pow(2).sum((0, 2))
    else:
        scores = memory.weight.pow(2).sum(1)
    keep = sorted(scores.argsort(descending=True)[:width].tolist())
    if lstm:
        keep_lstm_units(memory, keep)
    else:
        with torch.no_grad():
            memory.weight = nn.Parameter(memory.weight[keep].clone())
            memory.bias = nn.Parameter(memory.bias[keep].clone())
        memory.out_features = width
    with torch.no_grad():
        reader.weight = nn.Parameter(reader.weight[:, keep].clone())
    reader.in_features = width
    return True


def _pad_memory(memory: nn.Module, extra: int) -> None:
    """``extra`` zero hidden units on an LSTM (rows of each gate, recurrent columns) or
    zero output rows on a Linear."""
    if not isinstance(memory, nn.LSTM):
        _grow(memory, extra, dim=0)
        return
    hidden = memory.hidden_size
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            tensor = getattr(memory, name, None)
            if tensor is None:
                continue
            gates = tensor.reshape(4, hidden, *tensor.shape[1:])
            padded = torch.cat([gates, gates.new_zeros(4, extra, *tensor.shape[1:])], 1)
            padded = padded.reshape(4 * (hidden + extra), *tensor.shape[1:])
            if name == "weight_hh_l0":
                padded = torch.cat([padded, padded.new_zeros(len(padded), extra)], 1)
            setattr(memory, name, nn.Parameter(padded))
    memory.hidden_size = hidden + extra


def _grow(layer: nn.Linear, extra: int, dim: int) -> None:
    """``extra`` zero output rows (dim 0, and bias entries) or input columns (dim 1)."""
    shape = list(layer.weight.shape)
    shape[dim] = extra
    with torch.no_grad():
        layer.weight = nn.Parameter(torch.cat([layer.weight, layer.weight.new_zeros(shape)],
                                              dim=dim))
        if dim == 0:
            layer.out_features += extra
            if layer.bias is not None:
                layer.bias = nn.Parameter(torch.cat([layer.bias, layer.bias.new_zeros(extra)]))
        else:
            layer.in_features += extra


def rebuild_optimizers(optimized: Iterable[tuple[nn.Module, Iterable[nn.Parameter]]]) -> None:
    """Optimisers over the current (pruned) parameters, of the same class and settings:
    the old ones hold moments of the dense shapes, and ``learn`` would fail on them.

    Args:
        optimized: (owner of an ``optimizer`` attribute, the parameters it steps), as the
            algorithm's family declares them.
    """
    for owner, parameters in optimized:
        optimizer = getattr(owner, "optimizer", None)
        if isinstance(optimizer, torch.optim.Optimizer):
            settings = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
            owner.optimizer = type(optimizer)(parameters, **settings)


def write_card(zip_path: Path, task: str | None, env_kwargs: dict[str, Any],
               env_wrappers: list, algorithm: str) -> None:
    """``<zip>.json`` beside the zip: the env it acts in and the wrappers it acts through,
    read back by ``rl_zoo_files`` so a pruned agent evaluates without ``--env`` (SB3 zips
    do not record their env)."""
    atomic_write_text(zip_path.with_suffix(".json"), json.dumps(
        {"task": task, "env_kwargs": env_kwargs, "env_wrappers": env_wrappers,
         "algorithm": algorithm, "saved_by": "rlprune"}, indent=1))
