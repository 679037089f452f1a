"""Adapter for TD-MPC2 agents: the only place the toolkit touches ``tdmpc2``.

Two file kinds build it: our own agent files and official TD-MPC2 checkpoints, which
``tdmpc2.official`` maps into our agent (a multi-task model with its task folded in), so
grouping, search, pruning and saving treat both alike; a pruned official agent saves in
our format.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import tdmpc2
from rlprune.adapters.base import EPISODE_RETURN, Calls, Component, Interface
from rlprune.adapters.registry import AgentKind, FileProbe, LoadOptions, register_agent_kind
from tdmpc2.checkpoint import FORMAT as TDMPC2_FORMAT
from tdmpc2.config import parse_planner
from tdmpc2.official import load_official_agent
from tdmpc2.planner import MPPIStep

__all__ = ["TDMPC2Adapter"]


def _linears(network: nn.Module) -> list[nn.Linear]:
    return [m for m in network.modules() if isinstance(m, nn.Linear)]


_LATENT_INPUT = ("pi", "termination")
"""Components that read the latent alone; the others (but the encoder) read [z, a]."""


def _hidden_widths(network: nn.Module) -> list[int]:
    return [layer.out_features for layer in _linears(network)[:-1]]


def _policy_mean(pi: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """The policy prior's deterministic action: tanh of its Gaussian mean."""
    mean, _ = pi(z).chunk(2, dim=-1)
    return torch.tanh(mean)


class _PolicyPrior(nn.Module):
    """Deterministic policy-only controller: observation -> policy mean action."""

    def __init__(self, encoder: nn.Module, pi: nn.Module) -> None:
        super().__init__()
        self.encoder, self.pi = encoder, pi

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return _policy_mean(self.pi, self.encoder(obs))


class TDMPC2Adapter:
    """A TD-MPC2 agent as encoder, dynamics, reward, pi and one component per Q head.

    Acting is MPPI planning with the agent's own planner; ``reset(seed)`` reseeds it so
    every candidate sees the same planner noise (common random numbers).

    Args:
        agent: a loaded ``tdmpc2.TDMPC2Agent``.
    """

    kind = "tdmpc2"
    metric = EPISODE_RETURN
    file_suffix = ".pt"
    default_components = None

    def __init__(self, agent: tdmpc2.TDMPC2Agent) -> None:
        self.agent = agent
        cfg = agent.model.cfg
        self.meta = dict(agent.meta)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (cfg.obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (cfg.action_dim,), np.float32)

    @property
    def latent_width(self) -> int:
        """Current latent width (it shrinks when the latent interface is pruned)."""
        return _linears(self.agent.model.encoder)[-1].out_features

    @property
    def interfaces(self) -> tuple[Interface, ...]:
        cfg = self.agent.model.cfg
        readers = tuple(name for name in self.agent.model.components() if name != "encoder")
        return (
            Interface("observation", cfg.obs_dim, (), ("encoder",)),
            Interface("latent", self.latent_width, ("encoder", "dynamics"), readers,
                      prunable=True, unit=cfg.simnorm_dim),
            Interface("action", cfg.action_dim, ("pi",),
                      tuple(name for name in readers if name not in _LATENT_INPUT),
                      offset=self.latent_width),
        )

    @classmethod
    def from_path(cls, path: str | Path) -> TDMPC2Adapter:
        return cls(tdmpc2.load_agent(path))

    @property
    def task(self) -> str | None:
        return self.meta.get("task")

    @property
    def action_repeat(self) -> int:
        return int(self.meta.get("action_repeat", 1))

    def components(self) -> dict[str, Component]:
        cfg = self.agent.model.cfg
        z = torch.zeros(1, self.latent_width)
        za = torch.zeros(1, self.latent_width + cfg.action_dim)
        inputs = {"encoder": torch.zeros(1, cfg.obs_dim), **dict.fromkeys(_LATENT_INPUT, z)}
        decode = self.agent.model.two_hot.decode  # reward and Q heads predict two-hot logits
        return {name: Component(name, module, inputs.get(name, za), (_linears(module)[-1],),
                                family="Qs" if name.startswith("Q") else None,
                                readout=decode if name == "reward" or name.startswith("Q")
                                else None)
                for name, module in self.agent.model.components().items()}

    @torch.no_grad()
    def act(self, obs: np.ndarray, first_step: np.ndarray | None = None) -> np.ndarray:
        return self.agent.act(obs, first_step, eval_mode=True)

    def reset(self, seed: int) -> None:
        self.agent.planner.reseed(seed)

    def plan_values(self, obs: np.ndarray, sequences: int, seed: int) -> torch.Tensor:
        """MPPI's value estimates [N, sequences] of uniform random action sequences over
        the planning horizon (their order picks the elites); differentiable."""
        model, planner = self.agent.model, self.agent.planner
        obs_t = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
        n, shape = len(obs_t), (planner.cfg.horizon, len(obs_t) * sequences, model.cfg.action_dim)
        actions = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1
        planner.reseed(seed)
        z = model.encode(obs_t).repeat_interleave(sequences, dim=0)
        return planner.estimate_value(z, actions, n).view(n, sequences)

    @torch.no_grad()
    def latent(self, obs: np.ndarray) -> torch.Tensor:
        return self.agent.model.encode(torch.as_tensor(np.asarray(obs), dtype=torch.float32))

    def latent_step(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Latent dynamics d(z, a) (differentiable, for stability analysis)."""
        return self.agent.model.next(z, action)

    @torch.no_grad()
    def planner_action(self, z: torch.Tensor, seed: int) -> torch.Tensor:
        """The MPPI planner's action at latents z [N, L], without warm start, every row
        planned with the random numbers of ``seed`` (finite differences of the acting
        controller across rows). The planner's own seed is restored afterwards."""
        planner = self.agent.planner
        previous = planner.seed
        planner.reseed(seed, same_rows=True)
        try:
            return planner.plan(z, torch.ones(len(z), dtype=torch.bool))
        finally:
            planner.reseed(previous)

    def planner_budget(self) -> tuple[int, int]:
        cfg = self.agent.planner_cfg
        return cfg.iterations, cfg.num_samples

    def with_planner_budget(self, iterations: int, samples: int) -> TDMPC2Adapter:
        """A copy planning with that budget; elites stay 1/8 of the samples (TD-MPC2's
        ratio), policy trajectories as they are (they must stay fewer than the samples)."""
        clone = self.clone()
        clone.agent.set_planner(self.agent.planner_cfg.reduced(iterations, samples))
        return clone

    def plan_step(self) -> tuple[MPPIStep, tuple[torch.Tensor, ...]] | None:
        """MPPI's planning of one control step as one module, with inputs for one env
        (None for a policy-only controller: no planning to export)."""
        if not self.agent.planner.cfg.iterations:
            return None
        step = MPPIStep(self.agent.planner)
        return step, step.example_inputs(1)

    def plan_through(self, make: Callable[[MPPIStep], Callable]) -> None:
        """Plans through ``make(step)`` from now on: the whole MPPI refinement as one
        graph (a backend's compiled or exported ``MPPIStep``)."""
        planner = self.agent.planner
        planner.graph = make(MPPIStep(planner)) if planner.cfg.iterations else None

    def policy_mean(self, z: torch.Tensor) -> torch.Tensor:
        """The policy prior's deterministic action at latent z (differentiable)."""
        return _policy_mean(self.agent.model.pi, z)

    @torch.no_grad()
    def component_inputs(self, obs: np.ndarray, actions: np.ndarray) -> dict[str, torch.Tensor]:
        obs_t = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
        z = self.agent.model.encode(obs_t)
        za = torch.cat([z, torch.as_tensor(np.asarray(actions), dtype=torch.float32)], -1)
        inputs = {"encoder": obs_t, **dict.fromkeys(_LATENT_INPUT, z)}
        return {name: inputs.get(name, za) for name in self.agent.model.components()}

    def export_graphs(self) -> dict[str, tuple[nn.Module, torch.Tensor]]:
        """``policy`` (observation -> tanh(policy mean): policy-only control, no MPPI) and
        every world-model component."""
        graphs = {"policy": (_PolicyPrior(self.agent.model.encoder, self.agent.model.pi),
                             torch.zeros(1, self.agent.model.cfg.obs_dim))}
        graphs.update({name: (c.module, c.example_input)
                       for name, c in self.components().items()})
        return graphs

    def step_calls(self) -> dict[str, tuple[Calls, ...]]:
        """How MPPI runs every world-model network per control step."""
        return {name: tuple(Calls(n, rows) for n, rows in calls)
                for name, calls in self.agent.planner.calls_per_step().items()}

    def acting_networks(self) -> dict[str, nn.Module]:
        """Every world-model network MPPI runs (the planner calls them directly)."""
        calls = self.agent.planner.calls_per_step()
        return {name: net for name, net in self.agent.model.components().items()
                if name in calls}

    def record_widths(self) -> None:
        """Hidden widths that differ from the dense ones, and the latent width, into the
        model config (``tdmpc2.load_agent`` rebuilds the pruned networks from it)."""
        model = self.agent.model
        widths = {name: _hidden_widths(net) for name, net in model.components().items()}
        cfg = model.cfg
        dense = {name: cfg.__class__(**{**cfg.to_dict(), "hidden_widths": {}}).widths(name)
                 for name in widths}
        changed = {name: w for name, w in widths.items() if w != dense[name]}
        model.cfg = cfg.__class__(**{**cfg.to_dict(), "hidden_widths": changed,
                                     "latent_dim": self.latent_width})

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> None:
        tdmpc2.save_agent(path, self.agent, meta={**self.meta, **(meta or {})})

    def clone(self) -> TDMPC2Adapter:
        clone = TDMPC2Adapter(copy.deepcopy(self.agent))
        clone.meta = copy.deepcopy(self.meta)
        return clone

    def describe(self) -> dict[str, Any]:
        cfg = self.agent.model.cfg
        return {"kind": self.kind, "task": self.task, "action_repeat": self.action_repeat,
                "obs_dim": cfg.obs_dim, "action_dim": cfg.action_dim,
                "latent_dim": self.latent_width, "meta": self.meta}


def _is_tdmpc2(probe: FileProbe) -> bool:
    data = probe.torch_data
    return isinstance(data, dict) and data.get("format") == TDMPC2_FORMAT


def _load_tdmpc2(path: Path, options: LoadOptions) -> TDMPC2Adapter:
    agent = tdmpc2.load_agent(path)
    if options.planner is not None:
        agent.set_planner(parse_planner(options.planner, agent.planner_cfg))
    return TDMPC2Adapter(agent)


_OFFICIAL_PREFIXES = ("_encoder.", "_dynamics.", "_reward.", "_pi.", "_Qs.")


def _is_official(probe: FileProbe) -> bool:
    """A ``{"model": state_dict}`` (or bare state dict) with official TD-MPC2 module names;
    loose on purpose, so that a damaged one reaches the loader and its precise errors."""
    data = probe.torch_data
    state = data.get("model", data) if isinstance(data, dict) else None
    return isinstance(state, dict) and any(str(k).startswith(_OFFICIAL_PREFIXES)
                                           for k in state)


def _load_official(path: Path, options: LoadOptions) -> TDMPC2Adapter:
    planner = None if options.planner is None else parse_planner(options.planner)
    return TDMPC2Adapter(load_official_agent(path, options.task, planner=planner))


register_agent_kind(AgentKind(
    "tdmpc2", "rlprune's TD-MPC2 agent file (.pt, weights only)", _is_tdmpc2, _load_tdmpc2,
    options=frozenset({"planner"})))
register_agent_kind(AgentKind(
    "tdmpc2-official", "official TD-MPC2 checkpoint (nicklashansen/tdmpc2, either layout; "
    "--task picks a multi-task model's task)", _is_official, _load_official,
    options=frozenset({"task", "planner"})))
