"""Stable-Baselines3 files of the ``gym`` era (SB3 1.x), read without ``gym`` installed.

Most public pretrained SB3 agents (RL Zoo, the Hugging Face ``sb3/`` models) were saved by
SB3 1.x: the cloudpickled entries of their zip's ``data`` JSON (observation and action
spaces) and their ``vecnormalize.pkl`` name ``gym.spaces.*`` classes, so unpickling them
needs ``gym``, which no longer installs beside gymnasium-era SB3. ``gym`` spaces became
``gymnasium`` spaces under the same module names, so we unpickle with every ``gym.*``
module read as ``gymnasium.*`` (and NumPy 1's ``numpy.core.*`` as NumPy 2's
``numpy._core.*``, which NumPy 2 reads too but with a deprecation warning per array) and
rebuild the spaces from their attributes (a space pickled by gym 0.21 carries attributes
gymnasium does not set). Schedules are never
decoded: ``sb3._CUSTOM_OBJECTS`` replaces them, as RL Zoo's enjoy script does.
"""

from __future__ import annotations

import base64
import io
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

_RENAMED = {"gym": "gymnasium"}
"""Module trees of the gym era and their names today (longest prefix first)."""
if hasattr(np, "_core"):  # NumPy 2
    _RENAMED["numpy.core"] = "numpy._core"

__all__ = ["GymToGymnasiumUnpickler", "clean_space", "legacy_custom_objects",
           "load_legacy_pickle", "notice"]


def notice(message: str) -> None:
    """One line on stderr about something rlprune substituted for the user."""
    print(f"rlprune: note: {message}", file=sys.stderr)


class GymToGymnasiumUnpickler(pickle.Unpickler):
    """Unpickles with the ``gym`` package and its modules read as ``gymnasium``'s (and
    ``numpy.core`` as ``numpy._core`` on NumPy 2).

    ``mapped`` collects the gym-era names met, so callers know a file was gym-era.
    """

    def __init__(self, file: io.BufferedIOBase) -> None:
        super().__init__(file)
        self.mapped: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        for old, new in _RENAMED.items():
            if module == old or module.startswith(old + "."):
                self.mapped.add(f"{module}.{name}")
                module = new + module[len(old):]
                break
        return super().find_class(module, name)


def _loads(data: bytes) -> tuple[Any, set[str]]:
    unpickler = GymToGymnasiumUnpickler(io.BytesIO(data))
    return unpickler.load(), unpickler.mapped


def load_legacy_pickle(path: Path) -> Any:
    """Unpickles a file (e.g. ``vecnormalize.pkl``) with ``gym`` names read as gymnasium's,
    saying on stderr when it had any."""
    obj, mapped = _loads(Path(path).read_bytes())
    gym_names = sorted(n for n in mapped if n.startswith("gym."))
    if gym_names:
        notice(f"{path}: gym-era pickle; read {', '.join(gym_names)} as gymnasium's")
    return obj


def clean_space(space: Any) -> spaces.Space:
    """A fresh gymnasium space equal to an unpickled (possibly gym-era) one.

    Raises:
        ValueError: a space kind SB3 policies do not take.
    """
    if isinstance(space, spaces.Box):
        return spaces.Box(low=np.asarray(space.low), high=np.asarray(space.high),
                          shape=tuple(space.shape), dtype=np.dtype(space.dtype))
    if isinstance(space, spaces.Discrete):
        return spaces.Discrete(int(space.n), start=int(getattr(space, "start", 0)))
    if isinstance(space, spaces.MultiDiscrete):
        return spaces.MultiDiscrete(np.asarray(space.nvec), dtype=np.dtype(space.dtype))
    if isinstance(space, spaces.MultiBinary):
        return spaces.MultiBinary(space.n)
    if isinstance(space, spaces.Dict):
        return spaces.Dict({key: clean_space(sub) for key, sub in space.spaces.items()})
    if isinstance(space, spaces.Tuple):
        return spaces.Tuple(tuple(clean_space(sub) for sub in space.spaces))
    raise ValueError(f"unsupported space {type(space).__name__}: expected Box, Discrete, "
                     "MultiDiscrete, MultiBinary, Dict or Tuple")


def legacy_custom_objects(data: dict[str, Any], source: Path,
                          skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """SB3 ``load(custom_objects=...)`` entries replacing every gym-era pickle in ``data``.

    Args:
        data: the SB3 zip's ``data`` JSON.
        source: the zip, named in the stderr line.
        skip: keys already replaced (schedules): never decoded.

    Entries that name no gym-era module are left to SB3; so is any that fails to decode
    here (SB3 then reports it its own way).
    """
    replaced: dict[str, Any] = {}
    from_gym = []
    for key, value in data.items():
        if key in skip or not (isinstance(value, dict) and ":serialized:" in value):
            continue
        raw = base64.b64decode(value[":serialized:"])
        if not any(old.encode() in raw for old in _RENAMED):
            continue
        try:
            obj, mapped = _loads(raw)
        except Exception:  # noqa: BLE001 - SB3 reports an undecodable entry itself
            continue
        if mapped:
            replaced[key] = clean_space(obj) if isinstance(obj, spaces.Space) else obj
            from_gym += [key] if any(n.startswith("gym.") for n in mapped) else []
    if from_gym:
        notice(f"{source}: saved with gym (SB3 1.x); read {', '.join(from_gym)} as "
               "gymnasium's")
    return replaced
