"""The agent adapter contract: what the pruning toolkit may know about an agent.

Search, grouping and evaluation talk to agents only through this protocol. What makes
an agent special (which layers are protected outputs, which tensors cross components)
is data the adapter declares, never a branch on the agent's type inside the toolkit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

__all__ = ["EPISODE_RETURN", "AgentAdapter", "Calls", "Component", "Interface", "Metric",
           "PlannerAdapter", "ReconstructionAdapter", "WorldModelAdapter", "padded_rows"]


def padded_rows(obs: np.ndarray) -> np.ndarray:
    """``obs`` with its first row repeated up to 4 rows; act on it, keep ``len(obs)`` rows.

    MKL multiplies matrices of fewer than 4 rows with other kernels (another summation
    order), so unpadded, an env would act differently alone than in a batch: padded,
    batched evaluation equals the sequential loop bit for bit.
    """
    padding = max(0, 4 - len(obs))
    return np.concatenate([obs, np.repeat(obs[:1], padding, axis=0)]) if padding else obs


@dataclass(frozen=True)
class Metric:
    """What an agent is judged by: the objective that scores it by default and its label.

    ``name`` is a key of ``rlprune.search.OBJECTIVES`` (``"return"``, ``"psnr"``);
    ``label`` names it on plots and in tables.
    """

    name: str
    label: str


EPISODE_RETURN = Metric("return", "episode return")
"""The metric of every agent that acts in an environment."""


@dataclass(frozen=True)
class Calls:
    """``count`` forward passes of ``rows`` samples each (expected values where the
    controller draws at random, like MPPI's choice of Q heads)."""

    count: float
    rows: float

    @property
    def samples(self) -> float:
        return self.count * self.rows


@dataclass(frozen=True)
class Component:
    """One separately prunable network of an agent.

    Args:
        name: component name (``"encoder"``, ``"pi"``, ``"Q0"``, ``"actor"``...).
        module: the network; it takes a single tensor input.
        example_input: an input batch for tracing ([1, in_features] is enough).
        output_layers: layers whose outputs leave the component (their output width is
            an interface width: latent, action, value bins) and are never pruned.
        family: components of one family share a coefficient when the search gives one
            per component (the heads of an ensemble, like TD-MPC2's ``Q0..Q4`` in
            ``"Qs"``: they play one role, and one coefficient each would only widen the
            search space); ``None``: its own name.
        readout: what the agent takes from the output, where that is not the output
            itself (TD-MPC2's reward and Q heads: the expected value of their two-hot
            logits). The gradient search's surrogate matches readouts: logits may move
            where the value they encode does not.
    """

    name: str
    module: nn.Module
    example_input: torch.Tensor
    output_layers: tuple[nn.Module, ...] = ()
    family: str | None = None
    readout: Callable[[torch.Tensor], torch.Tensor] | None = None


@dataclass(frozen=True)
class Interface:
    """A tensor that crosses components, e.g. the latent ``z`` or the action.

    Args:
        name: ``"latent"``, ``"action"``, ``"observation"``...
        width: its size.
        producers: components whose protected output layer writes it.
        consumers: components whose first Linear reads it.
        prunable: its width may shrink (a latent or a bottleneck; never the env's
            observation or action).
        unit: channels removed together (SimNorm's group size for a SimNorm latent, so
            every remaining group is still a whole simplex).
        offset: where it starts in each consumer's input (inputs like ``[z, a]``).
    """

    name: str
    width: int
    producers: tuple[str, ...] = ()
    consumers: tuple[str, ...] = field(default_factory=tuple)
    prunable: bool = False
    unit: int = 1
    offset: int = 0


@runtime_checkable
class AgentAdapter(Protocol):
    """An agent seen by rlprune: named components, batched acting, optional latent."""

    kind: str
    """Short agent kind (``"tdmpc2"``, ``"sb3-sac"``, ``"module"``...)."""
    observation_space: gym.spaces.Space | None
    """Observation space the agent was trained on (None for non-RL models)."""
    action_space: gym.spaces.Space | None
    """Action space the agent acts in (None for non-RL models)."""
    interfaces: tuple[Interface, ...]
    """Tensors that cross components; their widths are protected by default."""
    meta: dict[str, Any]
    """JSON-able facts saved with the agent (task, training steps, pruned interfaces)."""
    metric: Metric
    """What the agent is judged by (``EPISODE_RETURN`` for agents that act)."""
    file_suffix: str
    """Suffix of the files ``save`` writes (``".pt"``, ``".zip"``)."""
    default_components: tuple[str, ...] | None
    """Components pruned when none are named (None: every component). An SB3 agent's is
    its actor: the critics do not act."""

    def components(self) -> dict[str, Component]:
        """The prunable networks by name."""
        ...

    def act(self, obs: np.ndarray, first_step: np.ndarray | None = None) -> np.ndarray:
        """Deterministic (eval-mode) actions [N, A] for observations [N, O]."""
        ...

    def reset(self, seed: int) -> None:
        """Restarts any internal randomness (e.g. a planner) for common random numbers.

        Agents with randomness should give batch row ``i`` its own stream seeded
        ``seed + i``: then a batch of episodes acts exactly as each episode alone.
        """
        ...

    def component_inputs(self, obs: np.ndarray, actions: np.ndarray) -> dict[str, torch.Tensor]:
        """Inputs every component sees when the agent acts on ``obs`` and takes ``actions``.

        Data-aware importance criteria and distillation read these.
        """
        ...

    def latent(self, obs: np.ndarray) -> torch.Tensor | None:
        """The agent's latent state for observations, or None if it has no latent space."""
        ...

    def step_calls(self) -> dict[str, int]:
        """How many samples each component processes per control step (one env, one
        action): the cost model of the controller, not of its networks. A policy runs
        its actor once; a planner runs its dynamics horizon x samples x iterations times.
        Components that never run when acting (critics, targets) are absent."""
        ...

    def acting_networks(self) -> dict[str, nn.Module]:
        """The networks ``act`` calls, by component name, each called with one tensor: a
        backend (compiled, bfloat16, ONNX Runtime) replaces their ``forward``. Empty where
        acting runs through code rlprune does not own (SB3's ``predict``)."""
        ...

    def record_widths(self) -> None:
        """Writes the networks' current widths into the agent's own configuration.

        ``prune_physically`` calls it once the channels are gone, so a pruned agent's
        configuration always describes its networks (``save`` writes it unchanged).
        """
        ...

    def save(self, path: str, meta: dict[str, Any] | None = None) -> None:
        """Writes the (possibly physically pruned) agent so that ``load_agent`` reloads it."""
        ...

    def clone(self) -> AgentAdapter:
        """An independent deep copy (physical pruning works on a copy)."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-able facts about the agent (kind, task, sizes)."""
        ...

    def export_graphs(self) -> dict[str, tuple[nn.Module, torch.Tensor | tuple]]:
        """Graphs to export (name -> module, example input or inputs); ``policy`` maps a
        raw observation to the env action where the agent has one (a recurrent policy's
        takes and returns its state too)."""
        ...


@runtime_checkable
class WorldModelAdapter(AgentAdapter, Protocol):
    """An agent with a latent space and latent dynamics (latent stability needs these)."""

    def latent_step(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Latent dynamics d(z, a), differentiable."""
        ...

    def policy_mean(self, z: torch.Tensor) -> torch.Tensor:
        """The deterministic action of the agent's policy at latent z, differentiable."""
        ...


@runtime_checkable
class PlannerAdapter(AgentAdapter, Protocol):
    """An agent that acts by ranking imagined action sequences (TD-MPC2's MPPI).

    What such an agent decides depends on how its model orders candidate sequences, not
    on any one component's output: a pruned model that keeps the order acts alike.
    """

    def plan_values(self, obs: np.ndarray, sequences: int, seed: int) -> torch.Tensor:
        """The planner's values [N, sequences] of random action sequences from each
        observation: the same sequences and planner noise for the same seed."""
        ...

    def planner_budget(self) -> tuple[int, int]:
        """What one control step plans with: (refinement iterations, sampled sequences
        per iteration); 0 iterations act with the policy prior alone."""
        ...

    def with_planner_budget(self, iterations: int, samples: int) -> PlannerAdapter:
        """A copy that plans with that budget (saved with it): a cheaper controller
        with the same networks."""
        ...

    def plan_step(self) -> tuple[nn.Module, tuple[torch.Tensor, ...]] | None:
        """One control step's planning as one module, with example inputs for one env
        (``rlprune export`` writes it whole); None where the agent does not plan."""
        ...

    def plan_through(self, make: Callable[[nn.Module], Callable]) -> None:
        """From now on, one control step's planning runs as ``make(step)`` does it, where
        ``step`` is the planning as one module (a whole-step backend compiles or exports
        it)."""
        ...


@runtime_checkable
class ReconstructionAdapter(AgentAdapter, Protocol):
    """A model judged by how well it reconstructs data (the autoencoder), not by acting."""

    def psnr(self, images: torch.Tensor) -> float:
        """Reconstruction PSNR (dB) on a batch of images in [0, 1]."""
        ...

    def evaluation_images(self, split: str) -> torch.Tensor:
        """Images to score reconstructions on: ``search``, ``validation`` or ``test``
        (fixed and disjoint, none seen in training)."""
        ...
