"""Agent files: plain-type config plus tensors, loadable with ``weights_only=True``.

The shipped agent file holds only what acting needs (no target networks, optimiser or
replay), so a trained CPU agent stays a few MB. Training resume state lives in a
separate, larger file written by the trainer.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from tdmpc2.agent import TDMPC2Agent
from tdmpc2.config import ModelConfig, PlannerConfig

__all__ = ["FORMAT", "atomic_save", "load_agent", "load_weights", "read_checkpoint",
           "save_agent"]

FORMAT = "tdmpc2-agent"
FORMAT_VERSION = 1


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; agent files are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_agent(path: str | os.PathLike, agent: TDMPC2Agent, meta: dict[str, Any] | None = None):
    """Writes the acting agent: configs, discount, Q scale, weights and free-form ``meta``."""
    atomic_save({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": agent.model.cfg.to_dict(),
        "planner_config": dataclasses.asdict(agent.planner_cfg),
        "discount": agent.discount,
        "q_scale": float(agent.scale.value),
        "state_dict": agent.model.acting_state_dict(),
        "meta": dict(meta or {}),
    }, path)


def load_weights(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU, with errors a user can act on.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a (complete) torch file, or one that needs unpickling of code
            objects (never done: that would run code from the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no tdmpc2 checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" not in str(e):
            raise ValueError(f"{path} is not a readable torch checkpoint") from e
        raise ValueError(
            f"{path} holds pickled Python objects, not a weights-only tdmpc2 checkpoint "
            "(refusing to unpickle code from a file)") from e
    except (RuntimeError, EOFError, OSError) as e:
        raise ValueError(f"{path} is not a readable torch checkpoint: {e}") from e


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Loads and checks a tdmpc2 agent file without building the agent.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a torch file, a file that needs unpickling of code objects, or a
            torch file that is not a tdmpc2 agent.
    """
    path = Path(path)
    data = load_weights(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is a torch file but not a tdmpc2 agent (format "
                         f"{data.get('format') if isinstance(data, dict) else type(data)!r})")
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path} has format version {data['format_version']}; this rlprune "
                         f"reads up to {FORMAT_VERSION}: upgrade rlprune")
    return data


def load_agent(path: str | os.PathLike, seed: int = 0) -> TDMPC2Agent:
    """Builds an acting agent (eval mode) from a file written by ``save_agent``."""
    data = read_checkpoint(path)
    agent = TDMPC2Agent(
        ModelConfig(**data["model_config"]),
        PlannerConfig(**data["planner_config"]),
        discount=float(data["discount"]),
        seed=seed,
    )
    try:
        missing, unexpected = agent.model.load_state_dict(data["state_dict"], strict=False)
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not match the model config: {e}") from e
    if unexpected or any(not k.startswith("target_Qs.") for k in missing):
        raise ValueError(f"{path}: weights do not match the model config "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    agent.model.target_Qs.load_state_dict(agent.model.Qs.state_dict())
    agent.scale.value = torch.tensor(float(data["q_scale"]))
    agent.meta = data["meta"]
    return agent
