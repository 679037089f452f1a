"""Adapter for Stable-Baselines3 agents (SAC, TD3, DDPG, PPO, A2C; TQC from sb3-contrib).

Components are thin wrappers that *reference* the policy's own submodules, so pruning a
component prunes the SB3 policy in place and ``model.predict`` keeps working:
``actor`` (observation -> action distribution parameters) and one component per critic
head. By default only the actor is pruned: it is what runs on the embedded target.

Zips of every SB3 era load: gym-era (SB3 1.x) pickles through ``sb3_legacy``, and the
statistics, task and env kwargs RL Zoo keeps in its folders through ``rl_zoo``.
"""

from __future__ import annotations

import copy
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rlprune.adapters.base import EPISODE_RETURN, Calls, Component, Interface, padded_rows
from rlprune.adapters.registry import AgentKind, FileProbe, register_agent_kind
from rlprune.adapters.rl_zoo import rl_zoo_files
from rlprune.adapters.sb3_legacy import legacy_custom_objects
from rlprune.adapters.sb3_saving import equal_width_critics, rebuild_optimizers, write_card
from rlprune.adapters.vecnormalize import VECNORMALIZE_FILE, ObservationNormalizer
from rlprune.io import atomic_write

__all__ = ["SB3Adapter", "is_sb3_zip", "sb3_algorithm_of"]

# Old SB3 / RL Zoo files pickle schedules that may not unpickle on this version; acting
# and pruning need none of them.
_CUSTOM_OBJECTS = {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0,
                   "clip_range": lambda _: 0.0, "clip_range_vf": None,
                   "exploration_schedule": lambda _: 0.0}

_ALGORITHMS = {"sac": "SAC", "td3": "TD3", "ddpg": "DDPG", "ppo": "PPO", "a2c": "A2C",
               "tqc": "TQC"}


def is_sb3_zip(probe: FileProbe) -> bool:
    """An SB3 save: a zip holding the JSON ``data`` and the policy's weights."""
    return {"data", "policy.pth"} <= probe.zip_names


def _zip_data(path: Path) -> dict[str, Any]:
    """The JSON ``data`` entry of an SB3 zip."""
    try:
        with zipfile.ZipFile(path) as zf:
            return json.loads(zf.read("data"))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise ValueError(f"{path}: not a readable SB3 zip ({e})") from e


def sb3_algorithm_of(path: Path, data: dict[str, Any] | None = None) -> str:
    """The algorithm (``"SAC"``...) that wrote an SB3 zip, from its policy class and data.

    PPO and A2C share one policy class (PPO stores a clip range, A2C does not); DDPG is
    TD3 with a policy delay of 1 and no target noise clipping.
    """
    data = _zip_data(path) if data is None else data
    module = str(data.get("policy_class", {}).get("__module__", ""))
    if module.endswith("common.policies"):
        return "PPO" if "clip_range" in data else "A2C"
    for key, name in _ALGORITHMS.items():
        if f".{key}." in module:
            if name == "TD3" and data.get("policy_delay") == 1 and \
                    data.get("target_noise_clip") == 0.0:
                return "DDPG"
            return name
    raise ValueError(f"{path}: SB3 file of an algorithm rlprune does not know "
                     f"(policy module {module!r}); supported: {sorted(_ALGORITHMS.values())}")


def _algorithm_class(name: str):
    if name == "TQC":
        from sb3_contrib import TQC

        return TQC
    import stable_baselines3

    return getattr(stable_baselines3, name)


class _Chain(nn.Module):
    """features extractor -> MLP body -> output heads, concatenated (none: the body's output)."""

    def __init__(self, extractor: nn.Module, body: nn.Module, heads: list[nn.Module]) -> None:
        super().__init__()
        self.extractor, self.body = extractor, body
        self.heads = nn.ModuleList(heads)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        latent = self.body(self.extractor(obs))
        if not len(self.heads):
            return latent
        return torch.cat([head(latent) for head in self.heads], dim=-1)


class _Critic(nn.Module):
    """features extractor -> Q network over [features, action]."""

    def __init__(self, extractor: nn.Module, q_net: nn.Module, obs_dim: int) -> None:
        super().__init__()
        self.extractor, self.q_net, self.obs_dim = extractor, q_net, obs_dim

    def forward(self, obs_action: torch.Tensor) -> torch.Tensor:
        obs, action = obs_action[:, : self.obs_dim], obs_action[:, self.obs_dim:]
        return self.q_net(torch.cat([self.extractor(obs), action], dim=-1))


class _DeterministicActor(nn.Module):
    """observation -> the env action ``model.predict(obs, deterministic=True)`` returns.

    Squashing policies (SAC, TQC, TD3, DDPG) map their [-1, 1] output to the action box;
    Gaussian on-policy actors (PPO, A2C) output the mean, clipped to the box.
    """

    def __init__(self, actor: nn.Module, squashed: bool, tanh: bool, low, high) -> None:
        super().__init__()
        self.actor, self.squashed, self.tanh = actor, squashed, tanh
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.actor(obs)
        if self.tanh:
            out = torch.tanh(out)
        if self.squashed:
            return self.low + 0.5 * (out + 1.0) * (self.high - self.low)
        return torch.maximum(torch.minimum(out, self.high), self.low)


def _last_linear(module: nn.Module) -> nn.Linear:
    return [m for m in module.modules() if isinstance(m, nn.Linear)][-1]


class SB3Adapter:
    """An SB3 model as prunable components.

    Args:
        model: a loaded SB3 algorithm object.
        algorithm: its name (``"SAC"``, ``"PPO"``...).
        normalizer: ``VecNormalize`` observation statistics the policy was trained with
            (found in the RL Zoo folder or beside the zip by ``from_path``).
    """

    def __init__(self, model, algorithm: str,
                 normalizer: ObservationNormalizer | None = None) -> None:
        self.model, self.algorithm, self.normalizer = model, algorithm, normalizer
        self.kind = f"sb3-{algorithm.lower()}"
        self.metric, self.file_suffix = EPISODE_RETURN, ".zip"
        policy = model.policy
        self.observation_space = policy.observation_space
        self.action_space = policy.action_space
        self.default_components = ("actor",)
        obs_dim = int(np.prod(self.observation_space.shape))
        self.interfaces = (Interface("observation", obs_dim, (), ("actor",)),
                           Interface("action", int(np.prod(self.action_space.shape)),
                                     ("actor",), ()))
        self.meta: dict[str, Any] = {}

    @classmethod
    def from_path(cls, path: str | Path, vecnormalize: Path | None = None) -> SB3Adapter:
        """Loads an SB3 zip of any SB3 era, with the statistics, task and env kwargs RL Zoo
        keeps for it (``rl_zoo_files``); ``vecnormalize`` overrides the statistics.

        Raises:
            ValueError: an unreadable zip; a normalised agent without statistics; an RL Zoo
                wrapper rlprune does not apply.
        """
        path = Path(path)
        data = _zip_data(path)
        algorithm = sb3_algorithm_of(path, data)
        zoo = rl_zoo_files(path)
        zoo.check_supported()
        statistics = vecnormalize or zoo.statistics()
        skip = frozenset(_CUSTOM_OBJECTS)
        custom = {**legacy_custom_objects(data, path, skip), **_CUSTOM_OBJECTS}
        try:
            model = _algorithm_class(algorithm).load(path, device="cpu", custom_objects=custom)
        except Exception as e:  # noqa: BLE001 - SB3 raises anything on a damaged file
            raise ValueError(f"{path}: SB3 cannot load this {algorithm} agent "
                             f"({type(e).__name__}: {e})") from e
        adapter = cls(model, algorithm,
                      ObservationNormalizer.from_file(statistics) if statistics else None)
        if adapter.normalizer is not None:
            adapter.meta["vecnormalize"] = str(adapter.normalizer.source)
        if zoo.env_id:  # SB3 zips do not record their env: RL Zoo's files or a card may
            adapter.meta["task"] = zoo.env_id
        if zoo.env_kwargs:
            adapter.meta["env_kwargs"] = zoo.env_kwargs
        return adapter

    def _observations(self, obs: np.ndarray) -> np.ndarray:
        """What the policy sees: VecNormalize-scaled observations where it has statistics."""
        obs = np.asarray(obs)
        return obs if self.normalizer is None else self.normalizer.normalize(obs)

    def _actor_parts(self) -> tuple[nn.Module, nn.Module, list[nn.Module]]:
        policy = self.model.policy
        if self.algorithm in ("SAC", "TQC"):
            actor = policy.actor
            return actor.features_extractor, actor.latent_pi, [actor.mu, actor.log_std]
        if self.algorithm in ("TD3", "DDPG"):
            actor = policy.actor
            return actor.features_extractor, actor.mu, []
        return (policy.pi_features_extractor, policy.mlp_extractor.policy_net,
                [policy.action_net])

    def _critic_components(self) -> dict[str, nn.Module]:
        policy = self.model.policy
        obs_dim = int(np.prod(self.observation_space.shape))
        if self.algorithm in ("PPO", "A2C"):
            return {"critic": _Chain(policy.vf_features_extractor,
                                     policy.mlp_extractor.value_net, [policy.value_net])}
        critic = policy.critic
        return {f"qf{i}": _Critic(critic.features_extractor, q, obs_dim)
                for i, q in enumerate(critic.q_networks)}

    def components(self) -> dict[str, Component]:
        extractor, body, heads = self._actor_parts()
        actor = _Chain(extractor, body, heads)
        obs = torch.zeros(1, *self.observation_space.shape)
        out = {"actor": Component("actor", actor, obs,
                                  tuple(heads) if heads else (_last_linear(body),))}
        action_dim = int(np.prod(self.action_space.shape))
        for name, module in self._critic_components().items():
            example = obs if name == "critic" else torch.zeros(1, obs.shape[1] + action_dim)
            out[name] = Component(name, module, example, (_last_linear(module),))
        return out

    @torch.no_grad()
    def act(self, obs: np.ndarray, first_step: np.ndarray | None = None) -> np.ndarray:
        obs = self._observations(obs)
        actions, _ = self.model.predict(padded_rows(obs), deterministic=True)
        return actions[: len(obs)]

    def reset(self, seed: int) -> None:
        """Deterministic SB3 policies hold no randomness at evaluation."""

    def latent(self, obs: np.ndarray) -> None:
        return None

    @torch.no_grad()
    def component_inputs(self, obs: np.ndarray, actions: np.ndarray) -> dict[str, torch.Tensor]:
        obs_t = torch.as_tensor(self._observations(obs), dtype=torch.float32)
        obs_t = obs_t.reshape(obs_t.shape[0], -1)
        act_t = torch.as_tensor(np.asarray(actions), dtype=torch.float32)
        if self.algorithm not in ("PPO", "A2C"):  # critics see the policy's scaled action
            act_t = torch.as_tensor(self.model.policy.scale_action(np.asarray(actions)),
                                    dtype=torch.float32)
        inputs = {name: obs_t for name in ("actor", "critic")}
        both = torch.cat([obs_t, act_t.reshape(act_t.shape[0], -1)], dim=-1)
        return {name: inputs.get(name, both) for name in self.components()}

    def export_graphs(self) -> dict[str, tuple[nn.Module, torch.Tensor]]:
        """``policy``: raw observation -> env action, as ``predict(obs, deterministic=True)``
        on the VecNormalize-scaled observation (the scaling is inside the graph)."""
        extractor, body, heads = self._actor_parts()
        squashed = self.algorithm not in ("PPO", "A2C")
        # SAC/TQC: mean head then tanh; TD3/DDPG: the mu network ends in its own Tanh.
        actor = _Chain(extractor, body, heads[:1])
        if self.normalizer is not None:
            actor = nn.Sequential(self.normalizer.module(), actor)
        graph = _DeterministicActor(actor, squashed, self.algorithm in ("SAC", "TQC"),
                                    self.action_space.low, self.action_space.high)
        return {"policy": (graph, torch.zeros(1, *self.observation_space.shape))}

    def step_calls(self) -> dict[str, tuple[Calls, ...]]:
        """``predict`` runs the actor once per step; critics and targets never run."""
        return {"actor": (Calls(1, 1),)}

    def acting_networks(self) -> dict[str, nn.Module]:
        """None: SB3's ``predict`` runs the actor's own modules, not rlprune's views."""
        return {}

    def _critic_widths(self) -> list[list[int]]:
        """Hidden widths of each critic head."""
        return [[m.out_features for m in c.modules() if isinstance(m, nn.Linear)][:-1]
                for c in self._critic_components().values()]

    def record_widths(self) -> None:
        """The pruned hidden widths into ``policy_kwargs["net_arch"]``, so SB3 rebuilds
        the smaller networks before loading their weights; targets follow their online
        networks and optimisers are rebuilt over the new parameters (``learn`` goes on).
        SB3 builds every critic head from one list: the first head's widths are recorded
        here, and ``save`` pads heads of different widths to one list."""
        _, body, _ = self._actor_parts()
        pi = [m.out_features for m in body.modules() if isinstance(m, nn.Linear)]
        if self.algorithm in ("TD3", "DDPG"):
            pi = pi[:-1]
        critics = self._critic_widths()
        key = "vf" if self.algorithm in ("PPO", "A2C") else "qf"
        self.model.policy_kwargs["net_arch"] = {"pi": pi, key: critics[0]}
        self._sync_targets()
        rebuild_optimizers(self.model.policy)

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> None:
        """An SB3 zip that ``SB3Adapter.from_path`` (and SB3 itself) reloads and trains
        on, with its card (env id and kwargs) and the VecNormalize statistics beside it,
        where RL Zoo and ``from_path`` look. Critic heads pruned to different widths are
        saved zero-padded to the widest (the same Q values)."""
        path = Path(path)
        saving = self
        critics = self._critic_widths()
        if any(c != critics[0] for c in critics):
            saving = self.clone()
            equal_width_critics(saving.model.policy.critic.q_networks)
            saving.record_widths()
        saving.model.save(str(path))
        write_card(path, self.meta.get("task"), self.meta.get("env_kwargs", {}),
                   self.algorithm)
        if self.normalizer is not None:  # the agent acts with them: keep them beside it
            target = path.parent / VECNORMALIZE_FILE
            if target.resolve() != self.normalizer.source.resolve():
                atomic_write(target, lambda tmp: shutil.copyfile(self.normalizer.source, tmp))

    def _sync_targets(self) -> None:
        """Target networks take the pruned shapes (and weights) of their online twins."""
        policy = self.model.policy
        for online, target in (("actor", "actor_target"), ("critic", "critic_target")):
            if hasattr(policy, target):
                setattr(policy, target, copy.deepcopy(getattr(policy, online)))
        if hasattr(self.model, "_create_aliases"):
            self.model._create_aliases()

    def clone(self) -> SB3Adapter:
        clone = SB3Adapter(copy.deepcopy(self.model), self.algorithm, self.normalizer)
        clone.meta = copy.deepcopy(self.meta)
        return clone

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "algorithm": self.algorithm,
                "task": self.meta.get("task"), "action_repeat": 1,
                "env_kwargs": self.meta.get("env_kwargs", {}),
                "observation_shape": list(self.observation_space.shape),
                "action_shape": list(self.action_space.shape), "meta": self.meta}


register_agent_kind(AgentKind(
    "sb3", "Stable-Baselines3 / sb3-contrib agent zip (any SB3 release)",
    is_sb3_zip,
    lambda path, options: SB3Adapter.from_path(path, vecnormalize=options.vecnormalize),
    options=frozenset({"vecnormalize"})))
