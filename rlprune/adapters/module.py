"""Any ``nn.Module`` (or dict of modules) with user-given example inputs as an agent."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from rlprune.adapters.base import Component, Interface, padded_rows

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
    """

    kind = "module"
    observation_space = None
    action_space = None
    interfaces: tuple[Interface, ...] = ()

    def __init__(
        self,
        modules: nn.Module | Mapping[str, nn.Module],
        example_inputs: torch.Tensor | Mapping[str, torch.Tensor],
        output_layers: Mapping[str, tuple[nn.Module, ...]] | None = None,
        policy: str | None = None,
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
        self.policy = policy
        self.meta: dict[str, Any] = {}

    def components(self) -> dict[str, Component]:
        return {name: Component(name, module, self.example_inputs[name],
                                tuple(self.output_layers.get(name, (_last_linear(module),))))
                for name, module in self.modules.items()}

    @torch.no_grad()
    def act(self, obs: np.ndarray, first_step: np.ndarray | None = None) -> np.ndarray:
        if self.policy is None:
            raise TypeError("this ModuleAdapter has no policy component; pass policy=NAME")
        x = torch.as_tensor(padded_rows(np.asarray(obs, dtype=np.float32)))
        return self.modules[self.policy](x)[: len(obs)].numpy()

    def reset(self, seed: int) -> None:
        """Plain networks hold no randomness."""

    def latent(self, obs: np.ndarray) -> None:
        return None

    def component_inputs(self, obs: np.ndarray, actions: np.ndarray) -> dict[str, torch.Tensor]:
        x = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
        return {name: x for name in self.modules}

    def export_graphs(self) -> dict[str, tuple[nn.Module, torch.Tensor]]:
        """Every network under its own name (the policy component also as ``policy``)."""
        graphs = {name: (m, self.example_inputs[name]) for name, m in self.modules.items()}
        if self.policy is not None:
            graphs["policy"] = graphs[self.policy]
        return graphs

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
        return ModuleAdapter(modules, self.example_inputs,
                             {k: v for k, v in layers.items() if v}, self.policy)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "components": list(self.modules)}
