"""Adapter for Stable-Baselines3 and sb3-contrib agents (every algorithm of
``sb3_algorithms.ALGORITHMS``).

Components are thin views (``sb3_modules``) of the policy's own submodules, so pruning a
component prunes the SB3 policy in place and ``model.predict`` keeps working: the acting
network (``actor``; ``q_net``/``quantile_net`` for DQN/QR-DQN) and the networks that never
act (critic heads ``qf0, qf1...``, the on-policy ``critic``). By default only the acting
network is pruned: it is what runs on the embedded target. A features extractor with
weights (``CnnPolicy``'s NatureCNN) prunes with it where SB3 builds every extractor of the
policy alike (DQN, QR-DQN, on-policy with a shared extractor; ``sb3_extractors`` describes
the pruned one to SB3), else it is kept whole and the MLP layers after it prune.

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
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from torch import nn

from rlprune.adapters.base import EPISODE_RETURN, Calls, Component, Interface, padded_rows
from rlprune.adapters.registry import AgentKind, FileProbe, register_agent_kind
from rlprune.adapters.rl_zoo import rl_zoo_files
from rlprune.adapters.sb3_algorithms import ALGORITHMS, ActingParts, ActionHead, algorithm_for
from rlprune.adapters.sb3_extractors import resized_settings
from rlprune.adapters.sb3_legacy import legacy_custom_objects
from rlprune.adapters.sb3_modules import (
    Chain,
    Critic,
    RecurrentPolicy,
    flat_width,
    hidden_widths,
    unflatten,
)
from rlprune.adapters.sb3_saving import (
    critic_memory_to_width,
    equal_width_critics,
    rebuild_optimizers,
    write_card,
)
from rlprune.adapters.vecnormalize import VECNORMALIZE_FILE, ObservationNormalizer
from rlprune.io import atomic_write
from rlprune.layers import ChannelwiseLayer, register_channelwise_layer

__all__ = ["SB3Adapter", "is_sb3_zip", "sb3_algorithm_of"]

# Old SB3 / RL Zoo files pickle schedules that may not unpickle on this version; acting
# and pruning need none of them.
_CUSTOM_OBJECTS = {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0,
                   "clip_range": lambda _: 0.0, "clip_range_vf": None,
                   "exploration_schedule": lambda _: 0.0}

# CrossQ's batch renormalisation: per channel in eval mode, as rlprune evaluates and prunes.
register_channelwise_layer(ChannelwiseLayer("sb3_contrib.common.torch_layers.BatchRenorm1d",
                                            ("scale", "bias", "ra_mean", "ra_var")))


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
    """The algorithm (``"SAC"``...) that wrote an SB3 zip, from its policy class and data
    (``sb3_algorithms.algorithm_for``)."""
    data = _zip_data(path) if data is None else data
    module = str(data.get("policy_class", {}).get("__module__", ""))
    row = algorithm_for(module, data)
    if row is None:
        raise ValueError(f"{path}: SB3 file of an algorithm rlprune does not know "
                         f"(policy module {module!r}); supported: {sorted(ALGORITHMS)}")
    return row.name


class SB3Adapter:
    """An SB3 model as prunable components.

    Args:
        model: a loaded SB3 algorithm object.
        algorithm: its name (``"SAC"``, ``"DQN"``...; a key of ``ALGORITHMS``).
        normalizer: ``VecNormalize`` observation statistics the policy was trained with
            (found in the RL Zoo folder or beside the zip by ``from_path``).
    """

    def __init__(self, model, algorithm: str,
                 normalizer: ObservationNormalizer | None = None) -> None:
        self.model, self.algorithm, self.normalizer = model, algorithm, normalizer
        self.family = ALGORITHMS[algorithm].family
        self.kind = f"sb3-{algorithm.lower()}"
        self.metric, self.file_suffix = EPISODE_RETURN, ".zip"
        policy = model.policy
        self.observation_space = _flat_space(policy.observation_space, self.kind, normalizer)
        """The env-facing space: a dict of arrays arrives flattened (``flatten_dict``)."""
        self.action_space = policy.action_space
        acting = self.family.acting
        self.default_components = (acting,)
        self.interfaces = (
            Interface("observation", flat_width(self.observation_space), (), (acting,)),
            Interface("action", self._output_width(), (acting,), ()))
        self.meta: dict[str, Any] = {}
        self._lstm_states = None

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
            model = ALGORITHMS[algorithm].load_class().load(path, device="cpu",
                                                            custom_objects=custom)
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
        wrappers = [list(w) for w in zoo.env_wrappers]
        if isinstance(model.policy.observation_space, spaces.Dict):
            wrappers.append(["flatten_dict", {}])
        if _channels_first_image(adapter.observation_space) and \
                ["channels_first", {}] not in wrappers:  # as SB3's VecTransposeImage
            wrappers.append(["channels_first", {}])
        if wrappers:
            adapter.meta["env_wrappers"] = wrappers
        return adapter

    def _observations(self, obs: np.ndarray) -> np.ndarray:
        """What the policy sees: VecNormalize-scaled observations where it has statistics."""
        obs = np.asarray(obs)
        return obs if self.normalizer is None else self.normalizer.normalize(obs)

    def _policy_input(self, obs: np.ndarray):
        """Flat env-facing rows as the policy takes them (a dict of keys for a dict space)."""
        space = self.model.policy.observation_space
        return unflatten(obs, space) if isinstance(space, spaces.Dict) else obs

    def _parts(self) -> ActingParts:
        return self.family.parts(self.model.policy)

    def _output_width(self) -> int:
        parts = self._parts()
        return sum(_last_linear(h).out_features for h in parts.heads) if parts.heads else \
            _last_linear(parts.body).out_features

    def components(self) -> dict[str, Component]:
        """Views in eval mode, as ``predict`` runs the policy (batch norms use their
        running statistics)."""
        policy = self.model.policy
        policy.set_training_mode(False)
        parts = self._parts()
        acting = Chain(parts.extractor, parts.body, list(parts.heads), list(parts.side),
                       parts.memory)
        example = torch.zeros(1, flat_width(self.observation_space))
        # Side networks keep their widths; a features extractor with weights (NatureCNN)
        # prunes only where the family says one description rebuilds all of them.
        kept = [*parts.pinned, *_layers(*parts.side)]
        if not self.family.extractor_prunable(policy):
            kept += _layers(parts.extractor)
        outputs = (*parts.heads, *kept) if parts.heads else (_last_linear(parts.body), *kept)
        out = {self.family.acting: Component(self.family.acting, acting, example, outputs)}
        for name, module in self.family.optional(policy).items():
            if isinstance(module, Critic):
                example = torch.zeros(1, flat_width(self.observation_space)
                                      + flat_width(self.action_space))
            # the acting network's extractor is pruned (or kept) through the acting view
            fixed = module.fixed if isinstance(module, Chain) else ()
            out[name] = Component(name, module, example,
                                  (_last_linear(module), *_layers(module.extractor), *fixed))
        return out

    @torch.no_grad()
    def act(self, obs: np.ndarray, first_step: np.ndarray | None = None) -> np.ndarray:
        n = len(obs)
        obs = padded_rows(self._observations(obs))
        if not self.family.recurrent:
            return self.model.predict(self._policy_input(obs), deterministic=True)[0][:n]
        starts = np.zeros(n, dtype=bool) if first_step is None else np.asarray(first_step,
                                                                               dtype=bool)
        starts = padded_rows(starts)
        if self._lstm_states is not None and self._lstm_states[0].shape[1] != len(obs):
            self._lstm_states, starts = None, np.ones_like(starts)  # another batch
        actions, self._lstm_states = self.model.predict(
            self._policy_input(obs), state=self._lstm_states, episode_start=starts,
            deterministic=True)
        return actions[:n]

    def reset(self, seed: int) -> None:
        """Deterministic SB3 policies hold no randomness; a recurrent one forgets its state."""
        self._lstm_states = None

    def latent(self, obs: np.ndarray) -> None:
        return None

    @torch.no_grad()
    def component_inputs(self, obs: np.ndarray, actions: np.ndarray) -> dict[str, torch.Tensor]:
        """Each component's input on visited states (a recurrent policy's views run its
        LSTM one step from a zero state: the visited states come without their episodes'
        order)."""
        obs_t = torch.as_tensor(self._observations(obs), dtype=torch.float32)
        obs_t = obs_t.reshape(obs_t.shape[0], -1)
        act_t = np.asarray(actions)
        if isinstance(self.action_space, spaces.Box):  # critics see the scaled action
            act_t = self.model.policy.scale_action(act_t)
        act_t = torch.as_tensor(act_t, dtype=torch.float32).reshape(obs_t.shape[0], -1)
        both = torch.cat([obs_t, act_t], dim=-1)
        return {name: both if isinstance(c.module, Critic) else obs_t
                for name, c in self.components().items()}

    def export_graphs(self) -> dict[str, tuple[nn.Module, torch.Tensor | tuple]]:
        """``policy``: raw observation -> env action, as ``predict(obs, deterministic=True)``
        on the VecNormalize-scaled observation (the scaling is inside the graph). A
        recurrent policy's graph takes and returns its LSTM state: ``(obs, h, c) ->
        (action, h', c')``, zeros at an episode's start."""
        parts = self._parts()
        # SAC/TQC/CrossQ: the mean head only (log_std does not act).
        head = ActionHead(self.family.action_kind(self.model.policy), self.action_space)
        observe = nn.Identity() if self.normalizer is None else self.normalizer.module()
        obs = torch.zeros(1, *self.observation_space.shape)
        if self.family.recurrent:
            lstm = self.model.policy.lstm_actor
            state = torch.zeros(1, 1, lstm.hidden_size)
            graph = RecurrentPolicy(observe, parts.extractor, lstm, parts.body,
                                    nn.Sequential(*parts.heads[:1], head))
            return {"policy": (graph, (obs, state, state))}
        actor = nn.Sequential(observe, Chain(parts.extractor, parts.body,
                                             list(parts.heads[:1])), head)
        return {"policy": (actor, obs)}

    def step_calls(self) -> dict[str, tuple[Calls, ...]]:
        """``predict`` runs the acting network once per step; critics and targets never."""
        return {self.family.acting: (Calls(1, 1),)}

    def acting_networks(self) -> dict[str, nn.Module]:
        """None: SB3's ``predict`` runs the policy's own modules, not rlprune's views."""
        return {}

    def _optional_widths(self) -> list[list[int]]:
        """Hidden widths of each network that does not act."""
        return [hidden_widths(c) for c in self.family.optional(self.model.policy).values()]

    def record_widths(self) -> None:
        """The pruned hidden widths into ``policy_kwargs["net_arch"]``, so SB3 rebuilds
        the smaller networks before loading their weights; targets follow their online
        networks and optimisers are rebuilt over the new parameters (``learn`` goes on).
        SB3 builds every critic head from one list: the first head's widths are recorded
        here, and ``save`` pads heads of different widths to one list."""
        policy = self.model.policy
        acting = [m.out_features for m in _linears(self._parts().body)]
        optional = self._optional_widths() or [[]]
        self.model.policy_kwargs["net_arch"] = self.family.net_arch(acting, optional)
        self.model.policy_kwargs.update(self.family.recorded(policy))
        if self.family.extractor_prunable(policy):
            self.model.policy_kwargs.update(resized_settings(
                self.family.extractor(policy), policy.features_extractor_class,
                policy.features_extractor_kwargs, self.observation_space) or {})
        self._sync_targets()
        rebuild_optimizers(self.family.optimized(self.model.policy))

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> None:
        """An SB3 zip that ``SB3Adapter.from_path`` (and SB3 itself) reloads and trains
        on, with its card (env id and kwargs) and the VecNormalize statistics beside it,
        where RL Zoo and ``from_path`` look. Critic heads pruned to different widths are
        saved zero-padded to the widest (the same Q values); a recurrent policy's critic
        memory is saved cut to its actor LSTM's width (``critic_memory_to_width``)."""
        path = Path(path)
        saving = self
        widths = self._optional_widths()
        if any(w != widths[0] for w in widths):
            saving = self.clone()
            equal_width_critics(saving.model.policy.critic.q_networks)
            saving.record_widths()
        if self.family.recurrent:
            saving = saving.clone() if saving is self else saving
            policy = saving.model.policy
            if critic_memory_to_width(policy, policy.lstm_actor.hidden_size):
                saving.record_widths()
        saving.model.save(str(path))
        write_card(path, self.meta.get("task"), self.meta.get("env_kwargs", {}),
                   self.meta.get("env_wrappers", []), self.algorithm)
        if self.normalizer is not None:  # the agent acts with them: keep them beside it
            target = path.parent / VECNORMALIZE_FILE
            if target.resolve() != self.normalizer.source.resolve():
                atomic_write(target, lambda tmp: shutil.copyfile(self.normalizer.source, tmp))

    def _sync_targets(self) -> None:
        """Target networks take the pruned shapes (and weights) of their online twins."""
        policy = self.model.policy
        for online, target in self.family.targets:
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
                "env_wrappers": self.meta.get("env_wrappers", []),
                "observation_shape": list(self.observation_space.shape),
                "action_shape": list(self.action_space.shape), "meta": self.meta}


def _flat_space(space: spaces.Space, kind: str, normalizer) -> spaces.Space:
    """The observation space as the env-facing rows carry it: a dict of arrays flattened
    (keys in the space's order).

    Raises:
        ValueError: a dict with non-array entries, a tuple space, or VecNormalize statistics
            of dict observations.
    """
    if isinstance(space, spaces.Tuple) or (isinstance(space, spaces.Dict) and not all(
            isinstance(s, spaces.Box) for s in space.spaces.values())):
        raise ValueError(f"{kind} agent observing {space}: rlprune takes arrays and dicts "
                         "of arrays")
    if not isinstance(space, spaces.Dict):
        return space
    if normalizer is not None:
        raise ValueError(f"{kind} agent: VecNormalize statistics of dict observations are "
                         "not supported yet")
    return spaces.flatten_space(space)


def _channels_first_image(space) -> bool:
    """A (channels, height, width) image space, as SB3 stores one it transposed."""
    return isinstance(space, spaces.Box) and is_image_space(space, check_channels=False) \
        and is_image_space_channels_first(space)


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def _last_linear(module: nn.Module) -> nn.Linear:
    return _linears(module)[-1]


def _layers(*modules: nn.Module) -> list[nn.Module]:
    """Linear and convolution layers: what can root a pruning group."""
    return [m for module in modules for m in module.modules()
            if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]


register_agent_kind(AgentKind(
    "sb3", "Stable-Baselines3 / sb3-contrib agent zip (any SB3 release)",
    is_sb3_zip,
    lambda path, options: SB3Adapter.from_path(path, vecnormalize=options.vecnormalize),
    options=frozenset({"vecnormalize"})))
