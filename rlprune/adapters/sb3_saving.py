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
from rlprune.layers import channelwise_layer

__all__ = ["equal_width_critics", "rebuild_optimizers", "write_card"]


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
