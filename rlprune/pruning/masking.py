"""Reversible channel masks that behave exactly like physical removal.

Zeroing a Linear output is *not* the same as removing the channel when a LayerNorm
follows: the zero would still enter the normalisation statistics. So masks act where
channels are read: every consumer Linear sees its masked inputs as zero, and every
LayerNorm in a group normalises over its kept channels only (then zeroes the rest).
Masks may be fractional (soft masks of the gradient search): LayerNorm statistics are
then mask-weighted, which reduces to the exact pruned computation at 0/1 masks.

Hooks are installed once and read the current mask tensors, so a search changes masks
per candidate without copying the agent; ``remove()`` restores the dense networks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.ranking import PruningPlan
from rlprune.pruning.recurrent import masked_output, masked_state

__all__ = ["ChannelMasks"]


class ChannelMasks:
    """Masks on the grouped layers of an agent's components.

    Args:
        grouper: the groups (their layers get hooks).
    """

    def __init__(self, grouper: ComponentGrouper) -> None:
        self.grouper = grouper
        self.masks: dict[str, torch.Tensor] = {g.id: torch.ones(g.channels)
                                               for g in grouper.groups}
        # role -> layer -> (group, the layer's indices, their group channels)
        self._parts: dict[str, dict[nn.Module, list]] = {role: {} for role in _WIDTH}
        for group in grouper.groups:
            for ref in group.layers:
                if ref.role in _WIDTH:
                    roots = ref.roots or range(len(ref.idxs))
                    self._parts[ref.role].setdefault(grouper.module(ref), []).append(
                        (group.id, torch.tensor(ref.idxs), torch.tensor(roots)))
        self._handles = [m.register_forward_pre_hook(self._mask_input)
                         for m in self._parts["in"]]
        self._handles += [m.register_forward_hook(self._masked_norm)
                          for m in self._parts["norm"]]
        for m in self._parts["recurrent"]:  # an LSTM's own units: its state in and out
            self._handles += [m.register_forward_pre_hook(self._mask_state),
                              m.register_forward_hook(self._mask_recurrent_output)]
        self._full: dict[str, dict[nn.Module, torch.Tensor | None]] = {r: {} for r in _WIDTH}
        self._refresh()

    def set_plan(self, plan: PruningPlan) -> None:
        """Hard 0/1 masks from a pruning plan."""
        self.set_removed(plan.removed)

    def set_removed(self, removed: Mapping[str, Sequence[int]]) -> None:
        """Hard 0/1 masks: group id -> channels to remove."""
        masks = {}
        for gid, idxs in removed.items():
            if gid not in self.masks:
                raise ValueError(f"unknown group {gid!r}")
            masks[gid] = torch.ones(len(self.masks[gid])).index_fill(
                0, torch.as_tensor(list(idxs), dtype=torch.long), 0.0)
        self.set_masks(masks)

    def set_masks(self, masks: Mapping[str, torch.Tensor]) -> None:
        """Per-group channel masks in [0, 1] (missing groups: all ones)."""
        for gid in masks:
            if gid not in self.masks:
                raise ValueError(f"unknown group {gid!r}")
        self.masks = {g.id: masks.get(g.id, torch.ones(g.channels)) for g in self.grouper.groups}
        self._refresh()

    def clear(self) -> None:
        self.set_masks({})

    def _refresh(self) -> None:
        """Per layer full-width masks; None where a layer is untouched (exact dense path)."""
        for role, table in self._parts.items():
            for module, parts in table.items():
                full = torch.ones(_WIDTH[role](module))
                for gid, idxs, roots in parts:
                    full = full.index_put((idxs,), self.masks[gid][roots])
                dense = all(bool((self.masks[gid] == 1).all()) for gid, _, _ in parts)
                self._full[role][module] = None if dense else full

    def _mask_input(self, module: nn.Module, args):
        mask = self._full["in"][module]
        if mask is None:
            return None
        if isinstance(module, nn.modules.conv._ConvNd):  # channels first: (N, C, *spatial)
            mask = mask.reshape(-1, *[1] * (args[0].dim() - 2))
        return (args[0] * mask,) + tuple(args[1:])

    def _mask_state(self, module: nn.LSTM, args):
        mask = self._full["recurrent"][module]
        return None if mask is None else masked_state(args, mask)

    def _mask_recurrent_output(self, module: nn.LSTM, args, output):
        mask = self._full["recurrent"][module]
        return None if mask is None else masked_output(output, mask)

    def _masked_norm(self, module: nn.LayerNorm, args, output):
        mask = self._full["norm"][module]
        if mask is None:
            return None
        x = args[0]
        weight = mask / mask.sum().clamp(min=1e-12)  # a soft mask may underflow to all 0
        mean = (x * weight).sum(-1, keepdim=True)
        var = ((x - mean).pow(2) * weight).sum(-1, keepdim=True)
        y = (x - mean) / torch.sqrt(var + module.eps)
        if module.elementwise_affine:
            y = y * module.weight
            if module.bias is not None:
                y = y + module.bias
        return y * mask

    def remove(self) -> None:
        """Removes all hooks: the networks are dense again."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> ChannelMasks:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _input_width(module: nn.Module) -> int:
    """Input features of a Linear or LSTM, input channels of a convolution."""
    if isinstance(module, nn.LSTM):
        return module.input_size
    return module.in_channels if isinstance(module, nn.modules.conv._ConvNd) else \
        module.in_features


_WIDTH = {"in": _input_width, "norm": lambda m: m.normalized_shape[-1],
          "recurrent": lambda m: m.hidden_size}
"""Roles whose layers take masks, and the full width of each such layer's mask."""
