"""Any ``nn.Module`` (or dict of modules) with user-given example inputs as an agent.

With ``policy=``, spaces and (optionally) a task, a plain PyTorch actor (CleanRL's, a
user's own) evaluates, searches and prunes like a loaded agent, from Python.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlprune.adapters.base import EPISODE_RETURN, Calls, Component, Interface, padded_rows
from rlprune.adapters.vecnormalize import ObservationNormalizer

__all__ = ["ModuleAdapter"]


def _last_linear(module: nn.Module) -> nn.Linear:
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(module).__name__} has no nn.Linear layer to prune")
    return linears[-1]


class ModuleAdapter:
    """Plain networks as prunable components.

    Args:
        modules: one network, or several by name.
        example_inputs: an input batch for each network (same structure as ``modules``).
        output_layers: per component, layers whose output width must stay; default: the
            last ``nn.Linear`` of each network (its output is the network's output).
        policy: name of the component that maps observations to actions, if any; it makes
            ``act`` available.
        observation_space: what the policy observes; with ``action_space`` it makes the
            module an agent of an env (the evaluator checks them against the env's).
        action_space: a ``Box`` (actions are clipped to its bounds, as an env expects)
            or a ``Discrete`` (the policy outputs one logit per action; act takes the
            argmax).
        normalizer: observation statistics the policy was trained with (e.g. CleanRL's
            ``NormalizeObservation``: ``ObservationNormalizer.from_stats``).
        task: env spec the agent acts in by default (``"Hopper-v5"``, ``"dmc/..."``).
    """

    kind = "module"
    metric = EPISODE_RETURN
    file_suffix = ".pt"
    default_components = None

    def __init__(
        self,
        modules: nn.Module | Mapping[str, nn.Module],
        example_inputs: torch.Tensor | Mapping[str, torch.Tensor],
        output_layers: Mapping[str, tuple[nn.Module, ...]] | None = None,
        policy: str | None = None,
        *,
        observation_space: gym.spaces.Space | None = None,
        action_space: gym.spaces.Space | None = None,
        normalizer: ObservationNormalizer | None = None,
        task: str | None = None,
    ) -> None:
        if isinstance(modules, nn.Module):
            modules, example_inputs = {"model": modules}, {"model": example_inputs}
        if not isinstance(example_inputs, Mapping) or set(example_inputs) != set(modules):
            raise TypeError("give one example input tensor per module, keyed like the modules")
        if policy is not None and policy not in modules:
            raise ValueError(f"policy {policy!r} is not one of {list(modules)}")
        self.modules = dict(modules)
        self.example_inputs = dict(example_inputs)
        self.output_layers = dict(output_layers or {})
        if (observation_space is None) != (action_space is None) or (
                observation_space is not None and policy is None):
            raise ValueError("an acting ModuleAdapter needs policy=, observation_space= and "
                             "action_space= together")
        if action_space is not None and not isinstance(action_space,
                                                       (gym.spaces.Box, gym.spaces.Discrete)):
            raise TypeError(f"action_space must be a Box or Discrete, got {action_space}")
        self.policy = policy
        self.observation_space, self.action_space = observation_space, action_space
        self.normalizer = normalizer
        self.meta: dict[str, Any] = {"task": task} if task else {}

    @property
    def interfaces(self) -> tuple[Interface, ...]:
        """The policy's observation and action widths, when it acts in an env."""
        if self.observation_space is None:
            return ()
        actions = self.action_space
        width = actions.n if isinstance(actions, gym.spaces.Discrete) else \
            int(np.prod(actions.shape))
        return (Interface("observation", int(np.prod(self.observation_space.shape)), (),
                          (self.policy,)),
                Interface("action", int(width), (self.policy,), ()))

    def components(self) -> dict[str, Component]:
        return {name: Component(name, module, self.example_inputs[name],
                                tuple(self.output_layers.get(name, (_last_linear(module),))))
                for name, module in self.modules.items()}

    @torch.no_grad()
    def act(self, obs: np.ndarray, first_step: np.ndarray | None = None) -> np.ndarray:
        if self.policy is None:
            raise TypeError("this ModuleAdapter has no policy component; pass policy=NAME")
        obs = np.asarray(obs, dtype=np.float32)
        if self.normalizer is not None:
            obs = self.normalizer.normalize(obs)
        out = self.modules[self.policy](torch.as_tensor(padded_rows(obs)))[: len(obs)].numpy()
        if isinstance(self.action_space, gym.spaces.Discrete):
            return out.argmax(-1) + self.action_space.start
        if isinstance(self.action_space, gym.spaces.Box):
            return np.clip(out, self.action_space.low, self.action_space.high)
        return out

    def reset(self, seed: int) -> None:
        """Plain networks hold no randomness."""

    def latent(self, obs: np.ndarray) -> None:
        return None

    def component_inputs(self, obs: np.ndarray, actions: np.ndarray) -> dict[str, torch.Tensor]:
        obs = np.asarray(obs, dtype=np.float32)
        if self.normalizer is not None:
            obs = self.normalizer.normalize(obs)
        x = torch.as_tensor(obs)
        return {name: x for name in self.modules}

    def export_graphs(self) -> dict[str, tuple[nn.Module, torch.Tensor]]:
        """Every network under its own name (the policy component also as ``policy``)."""
        graphs = {name: (m, self.example_inputs[name]) for name, m in self.modules.items()}
        if self.policy is not None:
            module, example = graphs[self.policy]
            if self.normalizer is not None:  # the exported policy takes raw observations
                module = nn.Sequential(self.normalizer.module(), module)
            graphs["policy"] = (module, example)
        return graphs

    def step_calls(self) -> dict[str, tuple[Calls, ...]]:
        """The policy once per step where the modules act; otherwise each module once."""
        return {name: (Calls(1, 1),) for name in ([self.policy] if self.policy
                                                   else self.modules)}

    def acting_networks(self) -> dict[str, nn.Module]:
        return {self.policy: self.modules[self.policy]} if self.policy else {}

    def record_widths(self) -> None:
        """Plain modules carry no configuration besides their layers."""

    def save(self, path: str, meta: dict[str, Any] | None = None) -> None:
        raise NotImplementedError("save a plain module with torch.save(adapter.modules)")

    def clone(self) -> ModuleAdapter:
        modules = copy.deepcopy(self.modules)
        # Protected layers must point into the copy: map them by name.
        layers = {}
        for name, module in self.modules.items():
            names = {m: n for n, m in module.named_modules()}
            layers[name] = tuple(modules[name].get_submodule(names[m])
                                 for m in self.output_layers.get(name, ()))
        clone = ModuleAdapter(modules, self.example_inputs,
                              {k: v for k, v in layers.items() if v}, self.policy,
                              observation_space=self.observation_space,
                              action_space=self.action_space, normalizer=self.normalizer)
        clone.meta = copy.deepcopy(self.meta)
        return clone

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "components": list(self.modules),
                "task": self.meta.get("task"), "action_repeat": 1}
