"""Observation statistics that SB3 agents trained under ``VecNormalize`` act with.

RL Zoo saves them as ``vecnormalize.pkl`` next to the agent; without them a policy sees
raw observations it was never trained on and its return collapses. We read the mean,
variance, epsilon and clip range once and apply SB3's exact formula, so evaluation,
data-aware importance, distillation and the exported ONNX policy all see what the
policy saw in training.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["VECNORMALIZE_FILE", "ObservationNormalizer"]

VECNORMALIZE_FILE = "vecnormalize.pkl"


class _Normalize(nn.Module):
    """clip((obs - mean) / sqrt(var + eps), -clip, clip) inside an exported graph."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, clip: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.clip = float(clip)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.clamp((obs - self.mean) / self.scale, -self.clip, self.clip)


@dataclass(frozen=True)
class ObservationNormalizer:
    """SB3 ``VecNormalize`` observation statistics (reward statistics play no part)."""

    mean: np.ndarray
    var: np.ndarray
    epsilon: float
    clip: float
    source: Path
    """The ``vecnormalize.pkl`` they came from (copied next to a saved pruned agent)."""

    @classmethod
    def beside(cls, agent_path: Path) -> ObservationNormalizer | None:
        """The statistics saved next to an agent file, or None if there are none."""
        path = agent_path.parent / VECNORMALIZE_FILE
        return cls.from_file(path) if path.is_file() else None

    @classmethod
    def from_file(cls, path: Path) -> ObservationNormalizer | None:
        """The statistics of a ``vecnormalize.pkl`` (None if it does not scale observations).

        Raises:
            FileNotFoundError: no such file.
            ValueError: not readable as VecNormalize statistics.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no VecNormalize statistics at {path}")
        try:
            with path.open("rb") as f:
                stats = pickle.load(f)  # noqa: S301 - SB3's own format, beside an SB3 zip
            if not stats.norm_obs:
                return None
            rms = stats.obs_rms
            return cls(np.asarray(rms.mean, dtype=np.float64),
                       np.asarray(rms.var, dtype=np.float64), float(stats.epsilon),
                       float(stats.clip_obs), path)
        except Exception as e:  # noqa: BLE001 - any unreadable pickle gets one clear line
            raise ValueError(f"{path}: cannot read VecNormalize statistics "
                             f"({type(e).__name__}: {e})") from e

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """SB3's ``VecNormalize.normalize_obs``: float64 math, float32 result."""
        scaled = (np.asarray(obs) - self.mean) / np.sqrt(self.var + self.epsilon)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

    def module(self) -> nn.Module:
        return _Normalize(self.mean, np.sqrt(self.var + self.epsilon), self.clip)
