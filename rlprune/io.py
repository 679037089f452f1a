"""Atomic file writes: a temporary file in the same folder, then a rename.

An interrupted run never leaves half a report or half a checkpoint behind.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = ["atomic_torch_save", "atomic_write", "atomic_write_text", "load_weights_only"]


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Calls ``write(temporary_path)``, then renames the result to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_weights_only(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` with errors a user can act on.

    Raises:
        ValueError: the file pickles Python objects (never unpickled: that would run code
            from the file), or it is no torch checkpoint at all.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e):
            raise ValueError(f"{path} holds pickled Python objects; rlprune only reads "
                             "weights-only checkpoints (refusing to run code from a file)") from e
        raise ValueError(f"{path} is not a readable torch checkpoint") from e
    except RuntimeError as e:
        if "PytorchStreamReader" in str(e):  # its zip archive is cut short or damaged
            raise ValueError(f"{path} is a truncated or damaged torch file (its archive "
                             "cannot be read): download or copy it again") from e
        raise ValueError(f"{path} is not a readable torch checkpoint: {e}") from e
    except (EOFError, OSError) as e:
        raise ValueError(f"{path} is not a readable torch checkpoint: {e}") from e
