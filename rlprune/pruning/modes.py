"""Running a network for bookkeeping (tracing, shapes, statistics) without changing it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["evaluation", "observed_forward"]


@contextmanager
def evaluation(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` in eval mode (batch norms read their running statistics and keep them),
    then every submodule back in its *own* mode: ``train(True)`` on the whole would switch
    on training in parts the owner keeps in eval mode, like an SB3 policy's."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes.items():
            m.training = training


def observed_forward(module: nn.Module, example: torch.Tensor, hooks: Iterable) -> None:
    """One forward pass of ``example`` in evaluation mode without gradients, for the
    ``hooks`` (handles) that watch it; they are removed afterwards."""
    try:
        with evaluation(module), torch.no_grad():
            module(example)
    finally:
        for hook in hooks:
            hook.remove()
