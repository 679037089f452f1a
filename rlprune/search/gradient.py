"""Constrained gradient descent on the coefficients (arXiv 2507.14882's second search).

The hard cut (keep the top channels by c_g * importance) has no gradient, so the search
relaxes it: channel ``i`` of group ``g`` gets a soft mask

    m_i = sigmoid((c_g * imp_i - tau) / T)

applied through ``ChannelMasks`` (exact LayerNorm handling included), with the
temperature T annealed geometrically. The sparsity constraint is kept by projection
(our choice; the paper's exact constraint handling is not public): at every step the
threshold ``tau`` is re-solved by bisection so that the *soft* parameter count meets
rho, and the coefficients follow the gradient of a surrogate loss.

Surrogate: episode return is not differentiable, so the masked agent is fitted to the
dense one on states from closed-loop rollouts: for every pruned component, the mean
squared difference of what the agent reads from it (its ``readout``: values rather than
two-hot logits), normalised by the dense readouts' variance, an ensemble's heads sharing
one component's weight. Where the latent itself is pruned, its producers' errors are
averaged over the latent's soft mask, so dropping dims does not lower the loss by
itself. For closed-loop objectives the states are refreshed halfway with the current
hard candidate's own episodes (DAgger-style).

Snapshots of the coefficients along the way become hard plans at rho +- eps, scored on
the real objective by the harness as far as the budget goes. Where the agent plans
(``PlannerAdapter``) they are ordered by how alike the hard-pruned planner ranks random
action sequences to the dense one (no env steps); elsewhere the last snapshot comes first
and the all-ones start last. The README's "Design choices, measured" says what each
choice was measured against.
"""

from __future__ import annotations

import contextlib
from collections import Counter

import numpy as np
import torch

from rlprune.adapters.base import Component, PlannerAdapter
from rlprune.pruning.masking import ChannelMasks
from rlprune.pruning.physical import prune_physically
from rlprune.pruning.ranking import InfeasibleTarget
from rlprune.search.harness import BudgetExhausted, SearchHarness
from rlprune.search.methods import SearchMethod, register_method
from rlprune.search.visited import VisitedInputs

__all__ = ["gradient_search"]


def _soft_masks(harness: SearchHarness, log_c: torch.Tensor, temperature: float):
    """Soft masks per group with the threshold solved for soft sparsity == rho."""
    c = torch.exp(log_c)[torch.as_tensor(harness.unit_of_group)]
    scores = {g.id: c[i] * harness.ranking.importance[g.id].float()
              for i, g in enumerate(harness.grouper.groups)}
    flat = torch.cat([s.detach() for s in scores.values()])
    lo, hi = float(flat.min()) - 10 * temperature, float(flat.max()) + 10 * temperature
    for _ in range(40):
        tau = (lo + hi) / 2
        removed = {g: float((1 - torch.sigmoid((s.detach() - tau) / temperature)).sum())
                   for g, s in scores.items()}
        if harness.ranking.costs.sparsity(removed)[0] > harness.rho:
            hi = tau
        else:
            lo = tau
    tau = (lo + hi) / 2
    return {g: torch.sigmoid((s - tau) / temperature) for g, s in scores.items()}


def _output_weights(harness: SearchHarness, masks: dict[str, torch.Tensor]):
    """Per component, soft weights of its output dims: a pruned interface's producers are
    only asked to match the latent dims that stay."""
    weights = {}
    for group in harness.grouper.groups:
        if group.component == "interface":
            for ref in group.layers:
                if ref.role == "out":
                    weights[ref.component] = masks[group.id]
    return weights


def _distillation_loss(harness: SearchHarness, inputs: dict[str, torch.Tensor],
                       targets: dict[str, torch.Tensor],
                       weights: dict[str, torch.Tensor]) -> torch.Tensor:
    family_of = harness.grouper.families
    members = Counter(family_of.values())  # a family weighs like one component
    loss = torch.zeros(())
    for name, component in harness.grouper.components.items():
        target = targets[name]
        error = ((_read(component, inputs[name]) - target) ** 2).mean(0)
        if name in weights:  # a mean over the kept dims: dropping dims is not free
            error = error * weights[name] / weights[name].mean().clamp(min=1e-12)
        loss = loss + error.mean() / target.var().clamp(min=1e-8) / members[family_of[name]]
    return loss


@contextlib.contextmanager
def _frozen(harness: SearchHarness):
    """Weights without gradients while only the coefficients learn (tracing a pruned copy
    needs them back: torch-pruning follows the autograd graph)."""
    modules = [c.module for c in harness.grouper.components.values()]
    for module in modules:
        module.requires_grad_(False)
    try:
        yield
    finally:
        for module in modules:
            module.requires_grad_(True)


def _subsample(inputs: dict[str, torch.Tensor], max_rows: int,
               generator: torch.Generator) -> dict[str, torch.Tensor]:
    out = {}
    for name, x in inputs.items():
        x = x.detach().float()
        if len(x) > max_rows:
            x = x[torch.randperm(len(x), generator=generator)[:max_rows]]
        out[name] = x
    return out


def _read(component: Component, x: torch.Tensor) -> torch.Tensor:
    out = component.module(x)
    return out if component.readout is None else component.readout(out)


def _dense_outputs(harness: SearchHarness, batch: dict[str, torch.Tensor]):
    with torch.no_grad():
        return {n: _read(c, batch[n]) for n, c in harness.grouper.components.items()}


def _candidate_states(harness: SearchHarness, log_c: torch.Tensor, phase: int, max_rows: int,
                      generator: torch.Generator) -> dict[str, torch.Tensor] | None:
    """Dense component inputs on the states the current hard candidate visits.

    DAgger-style: the surrogate then also fits where the pruned agent goes, not only
    where the dense one went. The episodes are the candidate's evaluation where the
    objective scores them, else extra env steps of the search.
    """
    values = np.exp(log_c.detach().double().numpy())
    try:
        plan = harness.ranking.plan(harness.coefficients(values), harness.rho, harness.eps)
    except InfeasibleTarget:
        return None
    pruned = prune_physically(harness.agent, plan, list(harness.grouper.components))
    visited = VisitedInputs(harness.objective, pruned, harness.run_dir, f"refresh_{phase}.pt")
    observations, actions = visited.states()  # kept in the run dir: a resumed run reuses them
    if visited.score is not None:
        harness.record(values, visited.score)
    else:
        harness.extra_env_steps += visited.env_steps
    return _subsample(harness.agent.component_inputs(observations, actions), max_rows,
                      generator)


def _rank_agreement(dense: torch.Tensor, pruned: torch.Tensor) -> float:
    """Mean over rows of the rank correlation of two [N, K] value tables."""
    ranks = [torch.nan_to_num(v, nan=-torch.inf).argsort(1).argsort(1).double()
             for v in (dense, pruned)]
    a, b = (r - r.mean(1, keepdim=True) for r in ranks)
    return float(((a * b).sum(1) / (a.square().sum(1) * b.square().sum(1)).sqrt()).mean())


@torch.no_grad()
def _by_planner_agreement(harness: SearchHarness, candidates: list[np.ndarray],
                          observations: np.ndarray, seed: int, rows: int = 256,
                          sequences: int = 64) -> list[np.ndarray]:
    """Candidates, the hard-pruned planners that rank action sequences most like the
    dense one's first (infeasible ones last: the harness skips them)."""
    agent = harness.agent
    picked = np.random.default_rng(seed).permutation(len(observations))[:rows]
    obs = observations[np.sort(picked)]
    dense = agent.plan_values(obs, sequences, seed)
    agreement = []
    with ChannelMasks(harness.grouper) as masks:
        for values in candidates:
            try:
                plan = harness.ranking.plan(harness.coefficients(values), harness.rho,
                                            harness.eps)
            except InfeasibleTarget:
                agreement.append(-np.inf)
                continue
            masks.set_plan(plan)
            agreement.append(_rank_agreement(dense, agent.plan_values(obs, sequences, seed)))
    order = sorted(range(len(candidates)), key=lambda i: -agreement[i])  # stable: ties keep
    return [candidates[i] for i in order]


def gradient_search(harness: SearchHarness, inputs: dict[str, torch.Tensor],
                    observations: np.ndarray | None = None, steps: int = 100,
                    lr: float = 0.05, t_start: float = 0.5, t_end: float = 0.02,
                    snapshots: int = 4, max_rows: int = 2048, refresh: int = 1,
                    seed: int = 0) -> None:
    """Descends the surrogate, then lets the harness score ``snapshots`` hard candidates.

    Args:
        inputs: component name -> input batch from the dense agent's closed-loop states.
        observations: those states' observations: a planning agent's snapshots are
            ordered by planner agreement on them (default: last snapshot first).
        steps: gradient steps.
        lr: Adam step size on log-coefficients.
        t_start: initial mask temperature (units of normalised importance).
        t_end: final temperature.
        snapshots: coefficient snapshots (evenly spaced, the last one included) scored on
            the real objective, besides the all-ones start.
        max_rows: inputs are subsampled to this many rows per component (seeded).
        refresh: times (evenly spaced) the current hard candidate is rolled out and its
            states join the surrogate's data; only for closed-loop objectives, and at
            most the budget minus one (a refresh rollout is an evaluation: one is kept
            for the first snapshot in order).
        seed: seeds the subsampling and the planner agreement's states and sequences.
    """
    generator = torch.Generator().manual_seed(seed)
    batch = _subsample(inputs, max_rows, generator)
    targets = _dense_outputs(harness, batch)
    log_c = torch.zeros(len(harness.units), requires_grad=True)
    optim = torch.optim.Adam([log_c], lr=lr)
    keep = {int(round(s)) for s in np.linspace(0, steps, snapshots + 1)[1:]}
    candidates = [np.ones(len(harness.units))]
    closed_loop = harness.objective.closed_loop
    refresh = min(refresh, harness.budget - 1) if closed_loop else 0
    phases = np.array_split(np.arange(1, steps + 1), refresh + 1)
    for phase, phase_steps in enumerate(phases):
        more = _candidate_states(harness, log_c, phase, max_rows, generator) if phase else None
        if more is not None:  # outside the masks: dense inputs and targets
            batch = {n: torch.cat([batch[n], more[n]]) for n in batch}
            targets = _dense_outputs(harness, batch)
        with _frozen(harness), ChannelMasks(harness.grouper) as masks:
            for step in phase_steps.tolist():
                temperature = t_start * (t_end / t_start) ** (step / steps)
                soft = _soft_masks(harness, log_c, temperature)
                masks.set_masks(soft)
                loss = _distillation_loss(harness, batch, targets,
                                          _output_weights(harness, soft))
                optim.zero_grad()
                loss.backward()
                optim.step()
                with torch.no_grad():
                    # The cut is invariant to scaling every coefficient alike, while
                    # soft masks are not (they sharpen): keep that direction out.
                    log_c.sub_(log_c.mean()).clamp_(-3.0, 3.0)
                if step in keep:
                    candidates.append(np.exp(log_c.detach().double().numpy()))
    ordered = [*reversed(candidates[1:]), candidates[0]]
    if observations is not None and isinstance(harness.agent, PlannerAdapter):
        ordered = _by_planner_agreement(harness, ordered, observations, seed)
    try:
        for candidate in ordered:
            harness.evaluate(candidate)
    except BudgetExhausted:
        return


register_method(SearchMethod(
    "gradient", lambda harness, visited, seed: gradient_search(
        harness, visited.inputs(), visited.states()[0], seed=seed),
    uses_states=True, description="constrained descent on a distillation surrogate, "
                                  "the paper's second search"))
