"""Observation statistics that SB3 agents trained under ``VecNormalize`` act with.

RL Zoo saves them as ``vecnormalize.pkl`` in the agent's settings folder (``rl_zoo.py``
finds them); without them a policy sees raw observations it was never trained on and its
return collapses. Files pickled by SB3 1.x name ``gym`` classes: they are read with those
names mapped to gymnasium (``sb3_legacy``), so ``gym`` need not be installed. We read the mean,
variance, epsilon and clip range once and apply SB3's exact formula, so evaluation,
data-aware importance, distillation and the exported ONNX policy all see what the
policy saw in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rlprune.adapters.sb3_legacy import load_legacy_pickle

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
    source: Path | None = None
    """The ``vecnormalize.pkl`` they came from (copied next to a saved pruned agent)."""

    @classmethod
    def from_stats(cls, mean: np.ndarray, var: np.ndarray, epsilon: float = 1e-8,
                   clip: float = 10.0) -> ObservationNormalizer:
        """Running statistics kept elsewhere: gymnasium's ``NormalizeObservation`` (as
        CleanRL uses it, clipped to +-10 after) or any ``(obs - mean) / sqrt(var + eps)``."""
        mean, var = np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64)
        if mean.shape != var.shape or np.any(var < 0):
            raise ValueError(f"mean and var must have one shape and var >= 0, got shapes "
                             f"{mean.shape} and {var.shape}")
        return cls(mean, var, float(epsilon), float(clip))

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
            stats = load_legacy_pickle(path)  # SB3's own format, beside an SB3 zip
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
