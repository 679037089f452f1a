"""Agent adapters and ``load_agent``: the toolkit's only view of an agent."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from rlprune.adapters.autoencoder import AutoencoderAdapter
from rlprune.adapters.base import AgentAdapter, Component, Interface
from rlprune.adapters.module import ModuleAdapter
from rlprune.adapters.registry import (
    AGENT_KINDS,
    FileProbe,
    LoadOptions,
    kind_of,
    register_agent_kind,
)
from rlprune.adapters.sb3 import SB3Adapter
from rlprune.adapters.tdmpc2 import TDMPC2Adapter

__all__ = [
    "AGENT_KINDS",
    "AgentAdapter",
    "AutoencoderAdapter",
    "Component",
    "Interface",
    "ModuleAdapter",
    "SB3Adapter",
    "TDMPC2Adapter",
    "LoadOptions",
    "load_agent",
    "register_agent_kind",
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


def load_agent(source: str | Path | nn.Module | AgentAdapter, *, task: str | None = None,
               vecnormalize: str | Path | None = None, planner: str | None = None,
               **module_options) -> AgentAdapter:
    """Wraps an agent for pruning, detecting its kind.

    Args:
        source: an agent file of a registered kind (``AGENT_KINDS``: our TD-MPC2 and
            autoencoder checkpoints, SB3 zips), a shipped checkpoint name, an existing
            adapter, or an ``nn.Module`` (then pass ``example_inputs=`` and optionally
            ``output_layers=``/``policy=`` for ``ModuleAdapter``).
        task: the task to act in, for multi-task checkpoints.
        vecnormalize: VecNormalize statistics overriding those found beside an SB3 agent.
        planner: MPPI settings of a TD-MPC2 agent, e.g. ``"iterations=4,samples=256"``.

    Raises:
        FileNotFoundError: no such file or shipped name.
        ValueError: the file is of no registered kind, or an option its kind does not read.
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
    options = LoadOptions(task=task, vecnormalize=None if vecnormalize is None
                          else Path(vecnormalize), planner=planner)
    probe = FileProbe(path)
    kind = kind_of(probe)
    if kind is not None:
        refused = options.given() - kind.options
        if refused:
            raise ValueError(f"{path} is a {kind.name} agent, which takes no "
                             f"{', '.join('--' + name for name in sorted(refused))}")
        return kind.load(path, options)
    known = "; ".join(f"{k.name} ({k.description})" for k in AGENT_KINDS.values())
    data = probe.torch_data
    found = repr(data.get("format")) if isinstance(data, dict) else (
        f"({probe.torch_error})" if probe.torch_error else type(data).__name__)
    raise ValueError(f"{path}: unknown agent format {found}; rlprune reads: {known}")
