"""Making a pruned SB3 model a file SB3 loads and keeps training: critic heads of one
width list, optimisers over the new parameters, and a card naming the env it acts in."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rlprune.io import atomic_write_text

__all__ = ["equal_width_critics", "rebuild_optimizers", "write_card"]


def equal_width_critics(q_networks: Sequence[nn.Module]) -> list[int]:
    """Pads every critic head's hidden layers with zero channels up to the widest head's
    widths and returns them: SB3 builds all heads from one width list. A zero channel
    has zero weights in and out, so every Q value stays what it was.

    Raises:
        ValueError: a head with parameterised layers besides Linear (a norm would see
            the zero channels).
    """
    heads = []
    for q in q_networks:
        if any(list(m.parameters(recurse=False)) and not isinstance(m, nn.Linear)
               for m in q.modules()):
            raise ValueError("critic heads of different widths can only be padded when "
                             "they hold nothing but Linear layers")
        heads.append([m for m in q.modules() if isinstance(m, nn.Linear)])
    widths = [max(head[k].out_features for head in heads) for k in range(len(heads[0]) - 1)]
    for head in heads:
        for k, width in enumerate(widths):
            extra = width - head[k].out_features
            if extra:
                _grow(head[k], extra, dim=0)
                _grow(head[k + 1], extra, dim=1)
    return widths


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


def rebuild_optimizers(policy: nn.Module) -> None:
    """Optimisers over the current (pruned) parameters, of the same class and settings:
    the old ones hold moments of the dense shapes, and ``learn`` would fail on them."""
    for owner in (policy, getattr(policy, "actor", None), getattr(policy, "critic", None)):
        optimizer = getattr(owner, "optimizer", None) if owner is not None else None
        if isinstance(optimizer, torch.optim.Optimizer):
            settings = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
            owner.optimizer = type(optimizer)(owner.parameters(), **settings)


def write_card(zip_path: Path, task: str | None, env_kwargs: dict[str, Any],
               algorithm: str) -> None:
    """``<zip>.json`` beside the zip: the env it acts in, read back by ``rl_zoo_files`` so
    a pruned agent evaluates without ``--env`` (SB3 zips do not record their env)."""
    atomic_write_text(zip_path.with_suffix(".json"), json.dumps(
        {"task": task, "env_kwargs": env_kwargs, "algorithm": algorithm,
         "saved_by": "rlprune"}, indent=1))
