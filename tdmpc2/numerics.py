"""Numerics shared by the world model: symlog two-hot encodings and the squashed Gaussian."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["TwoHot", "squashed_gaussian"]


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


class TwoHot:
    """Discrete regression over symlog-spaced bins (TD-MPC2 Sec. 4.2): scalars are encoded
    as a two-hot distribution, predictions are logits, the loss is cross-entropy."""

    def __init__(self, num_bins: int, vmin: float, vmax: float) -> None:
        self.num_bins, self.vmin, self.vmax = num_bins, vmin, vmax
        self.bin_size = (vmax - vmin) / (num_bins - 1)
        self._bins = torch.linspace(vmin, vmax, num_bins)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[..., 1] scalars -> [..., num_bins] two-hot targets."""
        x = symlog(x).clamp(self.vmin, self.vmax).squeeze(-1)
        position = (x - self.vmin) / self.bin_size
        low = position.floor().long().clamp(0, self.num_bins - 1)
        offset = (position - low).unsqueeze(-1)
        high = (low + 1).clamp(max=self.num_bins - 1)
        out = torch.zeros(*x.shape, self.num_bins, device=x.device)
        out.scatter_(-1, low.unsqueeze(-1), 1 - offset)
        out.scatter_add_(-1, high.unsqueeze(-1), offset)
        return out

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        """[..., num_bins] logits -> [..., 1] expected scalar."""
        bins = self._bins.to(logits.device, logits.dtype)
        return symexp((F.softmax(logits, dim=-1) * bins).sum(-1, keepdim=True))

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of logits [..., num_bins] against scalar targets [..., 1] -> [..., 1]."""
        return -(self.encode(target) * F.log_softmax(logits, dim=-1)).sum(-1, keepdim=True)


def squashed_gaussian(
    mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Samples tanh(mean + std * noise).

    Returns:
        (action, squashed mean, entropy scaled by the action size as in TD-MPC2).
    """
    std = log_std.exp()
    pre = mean + std * noise
    size = mean.shape[-1]
    log_prob = (-0.5 * noise.pow(2) - log_std).sum(-1, keepdim=True) - 0.5 * math.log(
        2 * math.pi) * size
    action = torch.tanh(pre)
    log_prob = log_prob * size - torch.log(F.relu(1 - action.pow(2)) + 1e-6).sum(-1, keepdim=True)
    return action, torch.tanh(mean), -log_prob
