"""Agent adapters and ``load_agent``: the toolkit's only view of an agent."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from rlprune.adapters.autoencoder import AutoencoderAdapter
from rlprune.adapters.base import AgentAdapter, Component, Interface
from rlprune.adapters.module import ModuleAdapter
from rlprune.adapters.sb3 import SB3Adapter, is_sb3_zip
from rlprune.adapters.tdmpc2 import TDMPC2Adapter
from rlprune.autoencoder import FORMAT as AUTOENCODER_FORMAT
from rlprune.autoencoder import load_autoencoder
from rlprune.io import load_weights_only

__all__ = [
    "AgentAdapter",
    "AutoencoderAdapter",
    "Component",
    "Interface",
    "ModuleAdapter",
    "SB3Adapter",
    "TDMPC2Adapter",
    "load_agent",
    "shipped_checkpoint",
]

CHECKPOINT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"


def shipped_checkpoint(name: str) -> Path:
    """Path of a checkpoint shipped in ``checkpoints/`` by short name (``cartpole-swingup``,
    ``sac-halfcheetah``): a ``.pt`` of ours or an SB3 ``.zip``."""
    for suffix in (".pt", ".zip"):
        path = CHECKPOINT_DIR / f"{name}{suffix}"
        if path.is_file():
            return path
    known = sorted(p.stem for p in CHECKPOINT_DIR.iterdir() if p.suffix in (".pt", ".zip"))
    raise FileNotFoundError(f"no shipped checkpoint named {name!r}; shipped: {known}")


def load_agent(source: str | Path | nn.Module | AgentAdapter, **module_options) -> AgentAdapter:
    """Wraps an agent for pruning, detecting its kind.

    Args:
        source: a tdmpc2 checkpoint, an SB3 ``.zip`` (SAC, TD3, DDPG, PPO, A2C, TQC), a
            shipped checkpoint name, an existing adapter,
            or an ``nn.Module`` (then pass ``example_inputs=`` and optionally
            ``output_layers=``/``policy=`` for ``ModuleAdapter``).

    Raises:
        FileNotFoundError: no such file or shipped name.
        ValueError: the file is of no format rlprune reads.
    """
    if isinstance(source, AgentAdapter) and not isinstance(source, nn.Module):
        return source
    if isinstance(source, nn.Module):
        if "example_inputs" not in module_options:
            raise TypeError("load_agent(module) needs example_inputs=... for tracing")
        return ModuleAdapter(source, **module_options)
    path = Path(source)
    if not path.exists() and path.suffix == "" and len(path.parts) == 1:
        path = shipped_checkpoint(str(source))
    if not path.is_file():
        raise FileNotFoundError(f"no agent file at {path}")
    if is_sb3_zip(path):
        return SB3Adapter.from_path(path)
    try:
        data = load_weights_only(path)
    except ValueError as e:
        raise ValueError(f"unknown agent format: {e} (expected a tdmpc2 or autoencoder "
                         "checkpoint, or an SB3 .zip)") from e
    kind = data.get("format") if isinstance(data, dict) else None
    if kind == AUTOENCODER_FORMAT:
        return AutoencoderAdapter(*load_autoencoder(data))
    if kind == "tdmpc2-agent":
        return TDMPC2Adapter.from_path(path)
    raise ValueError(f"{path}: unknown agent format {kind!r} (expected a tdmpc2 or autoencoder "
                     "checkpoint, or an SB3 .zip)")

