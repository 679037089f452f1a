"""Short fine-tuning of a pruned agent by distillation from its dense original.

Every pruned component is trained to reproduce the dense component's outputs (actions
and their log-std, latents, reward and Q logits, reconstructions) on states the dense
agent visits: the pruned component reads what it will read when the pruned agent runs
(its own, possibly narrower, latent), the target is what the dense component computed.
Losses are mean squared errors normalised by the target's variance, so components of
any scale weigh alike. With ``refresh`` the pruned agent's own closed-loop states are
added halfway (DAgger-style: it is corrected where it actually goes).

Where components read actions (a planner's world model: dynamics, reward, Q heads),
every state is also paired with actions drawn uniformly from the action space: MPPI
queries the model at actions the agent never took, and a model fitted only on the taken
ones misleads the planner (measured: README, "Design choices, measured").
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from rlprune.adapters.base import AgentAdapter
from rlprune.search.objective import Objective
from rlprune.search.visited import VisitedInputs

__all__ = ["DistillResult", "distill", "distill_if_better", "distill_on_objective"]


@dataclass(frozen=True)
class DistillResult:
    """Loss per component before and after, and the data used."""

    loss_before: dict[str, float]
    loss_after: dict[str, float]
    samples: int
    steps: int


def _restrict(dense: AgentAdapter, pruned: AgentAdapter) -> dict[str, list[int]]:
    """Per producer component, the dense output dims a pruned interface keeps."""
    kept = pruned.meta.get("interface_index", {})
    out = {}
    for interface in dense.interfaces:
        if interface.name in kept:
            for producer in interface.producers:
                out[producer] = list(kept[interface.name])
    return out


def _pruned_components(dense: AgentAdapter, pruned: AgentAdapter) -> list[str]:
    """Components that lost parameters (all of them if none did)."""
    def size(agent):
        return {n: sum(p.numel() for p in c.module.parameters())
                for n, c in agent.components().items()}
    before, after = size(dense), size(pruned)
    return [n for n in after if after[n] < before[n]] or list(after)


def _with_explored_actions(agent: AgentAdapter, observations: np.ndarray,
                           actions: np.ndarray | None, samples: int,
                           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """The visited rows plus ``samples`` copies of each with uniform random actions, if
    some component reads actions and the action space is a bounded box."""
    space = agent.action_space
    reads_actions = any(i.name == "action" and i.consumers for i in agent.interfaces)
    if (actions is None or samples == 0 or not reads_actions
            or not isinstance(space, gym.spaces.Box) or not space.is_bounded()):
        return observations, actions
    explored = rng.uniform(space.low, space.high, size=(samples, *actions.shape))
    return (np.concatenate([observations] * (samples + 1)),
            np.concatenate([actions, *explored.astype(actions.dtype)]))


def _targets(dense: AgentAdapter, pruned: AgentAdapter, names: list[str],
             observations: np.ndarray, actions: np.ndarray | None):
    restrict = _restrict(dense, pruned)
    dense_parts = dense.components()
    with torch.no_grad():
        dense_inputs = dense.component_inputs(observations, actions)
        pruned_inputs = pruned.component_inputs(observations, actions)
        targets = {}
        for name in names:
            y = dense_parts[name].module(dense_inputs[name])
            targets[name] = y[..., restrict[name]] if name in restrict else y
    return {n: pruned_inputs[n].detach() for n in names}, targets


def _losses(pruned: AgentAdapter, names, inputs, targets, rows=None) -> dict[str, torch.Tensor]:
    parts = pruned.components()
    losses = {}
    for name in names:
        x, y = inputs[name], targets[name]
        if rows is not None:
            x, y = x[rows], y[rows]
        scale = targets[name].var().clamp(min=1e-8)
        losses[name] = ((parts[name].module(x) - y) ** 2).mean() / scale
    return losses


def distill(dense: AgentAdapter, pruned: AgentAdapter, observations: np.ndarray,
            actions: np.ndarray | None = None, components: list[str] | None = None,
            steps: int = 200, lr: float = 1e-3, batch_size: int = 256, seed: int = 0,
            refresh=None, action_samples: int = 4, progress: bool = False) -> DistillResult:
    """Fine-tunes ``pruned`` in place towards ``dense``.

    Args:
        dense: the dense original (unchanged).
        pruned: the physically pruned agent to train.
        observations: visited observations [N, ...] (images for the autoencoder).
        actions: the actions taken there (None for the autoencoder).
        components: components to train (default: those that lost parameters).
        steps: Adam steps.
        lr: Adam step size.
        batch_size: rows per step (sampled with a seeded generator).
        seed: seeds the sampling.
        refresh: optional ``agent -> (observations, actions)``; called on the pruned
            agent after half the steps, its states are added to the data.
        action_samples: random actions paired with every state where components read
            actions (see the module docstring); 0: the taken actions only.
    """
    if steps < 0 or batch_size < 1 or action_samples < 0:
        raise ValueError("steps and action_samples must be >= 0 and batch_size >= 1")
    names = list(components or _pruned_components(dense, pruned))
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)

    def data(obs, acts):
        return _targets(dense, pruned, names,
                        *_with_explored_actions(dense, obs, acts, action_samples, rng))
    inputs, targets = data(observations, actions)
    parts = pruned.components()
    params = [p for n in names for p in parts[n].module.parameters()]
    optim = torch.optim.Adam(params, lr=lr)
    modules = [parts[n].module for n in names]
    modes = [m.training for m in modules]
    with torch.no_grad():
        before = {n: float(v) for n, v in _losses(pruned, names, inputs, targets).items()}
    try:
        for m in modules:
            m.eval()  # deterministic: no dropout in the copies being fitted
        for step in tqdm(range(steps), desc="distillation", disable=not progress,
                         mininterval=2, leave=False):
            if refresh is not None and step == steps // 2:
                extra_inputs, extra_targets = data(*refresh(pruned))
                inputs = {n: torch.cat([inputs[n], extra_inputs[n]]) for n in names}
                targets = {n: torch.cat([targets[n], extra_targets[n]]) for n in names}
            rows = torch.randint(len(next(iter(inputs.values()))), (batch_size,),
                                 generator=generator)
            loss = sum(_losses(pruned, names, inputs, targets, rows).values())
            optim.zero_grad()
            loss.backward()
            optim.step()
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
    with torch.no_grad():
        after = {n: float(v) for n, v in _losses(pruned, names, inputs, targets).items()}
    return DistillResult(before, after, len(next(iter(inputs.values()))), steps)


def distill_on_objective(dense: AgentAdapter, pruned: AgentAdapter, objective: Objective,
                         visited: VisitedInputs, steps: int, seed: int = 0,
                         progress: bool = False) -> DistillResult:
    """``distill`` on the dense agent's visited states; for a closed-loop objective they
    are refreshed halfway with the pruned agent's own episodes (its env steps are not
    counted: fine-tuning results are reported apart from the searches')."""
    refresh = ((lambda agent: objective.visited_states(agent)[:2])
               if objective.closed_loop else None)
    return distill(dense, pruned, *visited.states(), steps=steps, seed=seed, refresh=refresh,
                   progress=progress)


def distill_if_better(dense: AgentAdapter, pruned: AgentAdapter, objective: Objective,
                      visited: VisitedInputs, steps: int, validation: Objective,
                      seed: int = 0, progress: bool = False) -> tuple[AgentAdapter, dict]:
    """Fine-tunes a copy of ``pruned`` on ``objective``'s states; keeps it only if it
    scores no lower than ``pruned`` on ``validation`` (episodes neither the search nor
    the final held-out check use: deciding on the search's own episodes would select for
    them).

    Distillation pulls every component back towards its dense original, which can undo
    what a search exploited (a plan that nearly removes a head, say): hence the check.

    Returns:
        the agent to keep and a report (steps, the tuned and untuned validation metrics,
        ``kept``, losses).
    """
    tuned = pruned.clone()
    result = distill_on_objective(dense, tuned, objective, visited, steps, seed, progress)
    before, after = validation(pruned), validation(tuned)
    kept = after.value >= before.value
    return (tuned if kept else pruned), {
        "steps": steps, "metric": after.value, "ci95": after.ci95,
        "untuned_metric": before.value, "kept": kept, "validation": validation.describe(),
        "loss_before": result.loss_before, "loss_after": result.loss_after}
