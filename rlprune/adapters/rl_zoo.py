"""Where RL Zoo and Hugging Face ``sb3/`` repos keep an SB3 agent's statistics and settings.

RL Zoo writes ``logs/ALGO/ENV_1/ENV.zip`` (``best_model.zip`` and ``rl_model_*_steps.zip``
beside it) and keeps ``vecnormalize.pkl``, ``config.yml``, ``args.yml`` and
``env_kwargs.yml`` in ``logs/ALGO/ENV_1/ENV/``; a Hugging Face repo has them flat beside
``algo-ENV.zip``, the statistics named ``vec_normalize.pkl``; rlprune's own pruned saves
keep ``vecnormalize.pkl`` beside the zip. A normalised agent acting on raw observations
looks broken, not slightly off (DESIGN.md, "Users' agents"), so an agent whose config says
it was normalised is refused when its statistics are missing, never run without them.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from envs.zoo_wrappers import is_supported_wrapper

__all__ = ["STATISTICS_FILES", "RLZooFiles", "read_zoo_yaml", "rl_zoo_files"]

STATISTICS_FILES = ("vecnormalize.pkl", "vec_normalize.pkl")
"""RL Zoo's name, then the Hugging Face repos' name."""
_ENV_ID = re.compile(r"^[A-Za-z][\w.:/-]*-v\d+$")
_RUN_DIR = re.compile(r"^(.+)_\d+$")
_ZOO_ALGOS = frozenset({"a2c", "ars", "crossq", "ddpg", "dqn", "ppo", "ppo_lstm",
                        "ppo_mask", "qrdqn", "sac", "td3", "tqc", "trpo"})
_VEC_WRAPPERS = ("vec_env_wrapper",)
"""config.yml keys of wrappers RL Zoo applies when acting and rlprune does not (yet)."""


@dataclass(frozen=True)
class Unread:
    """A Python object in a YAML file, left unbuilt (building it would run its code)."""

    tag: str


class _ZooLoader(yaml.SafeLoader):
    """SafeLoader that reads RL Zoo's ``OrderedDict`` dumps and tuples, nothing executable."""


def _ordered_dict(loader: yaml.SafeLoader, node: yaml.Node) -> dict:
    args = loader.construct_sequence(node, deep=True)
    return dict(args[0]) if args else {}


_ZooLoader.add_constructor(
    "tag:yaml.org,2002:python/object/apply:collections.OrderedDict", _ordered_dict)
_ZooLoader.add_constructor(
    "tag:yaml.org,2002:python/tuple",
    lambda loader, node: tuple(loader.construct_sequence(node, deep=True)))
_ZooLoader.add_multi_constructor(
    "tag:yaml.org,2002:python/", lambda loader, suffix, node: Unread(f"!!python/{suffix}"))


def read_zoo_yaml(path: Path) -> Any:
    """A YAML file RL Zoo wrote (``config.yml``, ``args.yml``, ``env_kwargs.yml``), read safely.

    Raises:
        ValueError: not readable as YAML.
    """
    try:
        return yaml.load(Path(path).read_text(), Loader=_ZooLoader)  # noqa: S506 - safe loader
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not a readable RL Zoo settings file ({e})") from e


def _normalize_kwargs(value: Any, source: Path | None) -> dict[str, Any]:
    """config.yml's ``normalize`` (true, a mapping, or a ``"dict(norm_obs=...)"`` string)
    as VecNormalize keyword arguments, read without ``eval``."""
    if isinstance(value, str):
        try:
            tree = ast.parse(value, mode="eval").body
            if isinstance(tree, ast.Call) and getattr(tree.func, "id", None) == "dict" \
                    and not tree.args:
                return {k.arg: ast.literal_eval(k.value) for k in tree.keywords}
            value = ast.literal_eval(tree)
        except (SyntaxError, ValueError) as e:
            raise ValueError(f"{source}: normalize: {value!r} is not a dict of literals "
                             "(expected true, false or e.g. \"dict(norm_obs=True)\")") from e
    if isinstance(value, dict):
        return dict(value)
    return {"norm_obs": bool(value)} if value else {}


@dataclass(frozen=True)
class RLZooFiles:
    """What RL Zoo (or a Hugging Face ``sb3/`` repo) keeps about one agent zip."""

    agent: Path
    algo: str | None
    """RL Zoo's algorithm name (``"ppo"``, ``"tqc"``): args.yml, the ``algo-ENV.zip`` name or
    the ``logs/ALGO/`` folder; None when nothing says."""
    env_id: str | None
    """The task as recorded (``"HalfCheetah-v3"``): args.yml ``env``, else the run folder's
    name (``ENV_1``), else the file name (``ENV.zip``, ``algo-ENV.zip``), else the
    ``<zip>.json`` card rlprune ships beside its checkpoints."""
    vecnormalize: Path | None
    """The VecNormalize statistics found, if any."""
    normalized: bool
    """The agent acts on VecNormalize-scaled observations: config.yml's ``normalize`` (with
    ``normalize_kwargs``) says so, or, with no config.yml, statistics were found."""
    env_kwargs: dict[str, Any]
    """Keyword arguments of the env it was trained on (args.yml or the card, then
    env_kwargs.yml)."""
    env_wrappers: tuple[list, ...]
    """The env wrappers the agent acts through, as ``envs.zoo_wrappers`` specs
    (``[name, kwargs]``, innermost first): config.yml's ``env_wrapper`` then ``frame_stack``."""
    unsupported: tuple[str, ...]
    """Wrappers RL Zoo applies when acting and rlprune does not (``"env_wrapper: ..."``)."""
    searched: tuple[Path, ...]
    """The folders looked in, in order."""

    def statistics(self) -> Path | None:
        """The statistics to act with (None: the agent needs none; RL Zoo ignores statistics
        a config says were not used, and so do we).

        Raises:
            ValueError: the agent was normalised and no statistics were found.
        """
        if not self.normalized:
            return None
        if self.vecnormalize is None:
            where = ", ".join(str(d) for d in self.searched)
            raise ValueError(f"{self.agent} was trained on VecNormalize-normalised "
                             f"observations but no {' or '.join(STATISTICS_FILES)} is in "
                             f"{where}: pass its statistics with --vecnormalize PATH")
        return self.vecnormalize

    def check_supported(self) -> None:
        """Raises ValueError if acting needs a wrapper rlprune does not apply."""
        if self.unsupported:
            raise ValueError(f"{self.agent} acts through RL Zoo's {'; '.join(self.unsupported)}, "
                             "which rlprune does not apply yet")
        unread = [f"{k}={v.tag}" for k, v in self.env_kwargs.items() if isinstance(v, Unread)]
        if unread:
            raise ValueError(f"{self.agent}: env kwargs {', '.join(unread)} are Python objects "
                             "rlprune does not build; give an equivalent --env instead")


def _env_wrappers(config: dict[str, Any]) -> tuple[tuple[list, ...], tuple[str, ...]]:
    """(specs rlprune applies, descriptions of those it does not) from config.yml's
    ``env_wrapper`` (a class path, ``{path: kwargs}``, or a list of them), ``frame_stack``
    and ``vec_env_wrapper``."""
    listed = config.get("env_wrapper") or []
    listed = listed if isinstance(listed, list) else [listed]
    specs: list[list] = []
    unsupported = [f"{key}: {config[key]}" for key in _VEC_WRAPPERS if config.get(key)]
    for entry in listed:
        name, kwargs = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
        if is_supported_wrapper(str(name)) and isinstance(kwargs or {}, dict):
            specs.append([str(name), dict(kwargs or {})])
        else:
            unsupported.append(f"env_wrapper: {name}")
    if config.get("frame_stack") not in (None, 0, 1, False):
        specs.append(["frame_stack", {"n": int(config["frame_stack"])}])
    return tuple(specs), tuple(unsupported)


def _search_dirs(agent: Path) -> list[Path]:
    """``<dir>/<stem>/`` (RL Zoo), ``ENV_1/ENV/`` (best_model.zip, checkpoints), ``<dir>``."""
    folder = agent.parent
    dirs = [folder / agent.stem]
    run = _RUN_DIR.match(folder.name)
    if run:
        dirs.append(folder / run.group(1))
    dirs.append(folder)
    return [d for d in dict.fromkeys(dirs) if d.is_dir()]


def _first(dirs: list[Path], names: tuple[str, ...]) -> Path | None:
    return next((d / n for d in dirs for n in names if (d / n).is_file()), None)


def _yaml_dict(path: Path | None) -> dict[str, Any]:
    value = read_zoo_yaml(path) if path else None
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"{path}: expected a mapping, got {type(value).__name__}")
    return value or {}


def _name_guesses(agent: Path, algo: str | None) -> tuple[str | None, str | None]:
    """(algo, env id) read off RL Zoo and Hugging Face paths."""
    folder, stem = agent.parent, agent.stem
    run = _RUN_DIR.match(folder.name)
    algo_dir = folder.parent.name if run else folder.name
    prefix, _, rest = stem.partition("-")
    algo = algo or (prefix if prefix in _ZOO_ALGOS and rest else None) or (
        algo_dir if algo_dir in _ZOO_ALGOS else None)
    names = [run.group(1) if run else None, rest if algo and prefix == algo else stem]
    return algo, next((n for n in names if n and _ENV_ID.match(n)), None)


def _card(agent: Path) -> dict[str, Any]:
    """The ``<zip>.json`` card rlprune writes beside the agents it saves and ships."""
    card = agent.with_suffix(".json")
    return json.loads(card.read_text()) if card.is_file() else {}


def rl_zoo_files(agent: str | Path) -> RLZooFiles:
    """The algorithm, task, statistics and env kwargs RL Zoo (or a Hugging Face repo) keeps
    for an agent zip; only reads files (nothing is refused here: see ``statistics`` and
    ``check_supported``).

    Raises:
        ValueError: a settings file that is not readable.
    """
    agent = Path(agent)
    dirs = _search_dirs(agent)
    config_file = _first(dirs, ("config.yml",))
    config = _yaml_dict(config_file)
    args = _yaml_dict(_first(dirs, ("args.yml",)))
    card = _card(agent)
    env_kwargs = dict(args.get("env_kwargs") or card.get("env_kwargs") or {})
    env_kwargs.update(_yaml_dict(_first(dirs, ("env_kwargs.yml",))))
    statistics = _first(dirs, STATISTICS_FILES)
    if "normalize" in config or "normalize_kwargs" in config:
        flag = config.get("normalize", bool(config.get("normalize_kwargs")))
        kwargs = {**_normalize_kwargs(flag, config_file),
                  **(config.get("normalize_kwargs") or {})}
        normalized = bool(flag) and bool(kwargs.get("norm_obs", True))
    else:  # no config: RL Zoo normalises when statistics exist
        normalized = statistics is not None
    algo, env_id = _name_guesses(agent, args.get("algo"))
    wrappers, unsupported = _env_wrappers(config)
    if config_file is None:  # rlprune's card keeps them beside a pruned agent
        wrappers = tuple(card.get("env_wrappers", ()))
    return RLZooFiles(agent, algo, args.get("env") or env_id or card.get("task"), statistics,
                      normalized, env_kwargs, wrappers, unsupported, tuple(dirs))
