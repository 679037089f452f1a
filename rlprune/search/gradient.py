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
squared difference of its outputs (actions, latents, Q and reward logits for TD-MPC2;
the code and the reconstruction for the autoencoder), normalised by the dense outputs'
variance, a family's members (an ensemble's heads) sharing one component's weight; where
the latent itself is pruned, its producers are weighted by the latent's
soft mask (they need not match dims that go). Snapshots of the coefficients along the
way become hard plans at rho +- eps and are ranked on the real objective by the harness.
"""

from __future__ import annotations

import numpy as np
import torch

from rlprune.masking import ChannelMasks
from rlprune.search.harness import BudgetExhausted, SearchHarness

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
    families = [c.family or n for n, c in harness.grouper.components.items()]
    loss = torch.zeros(())
    for (name, component), family in zip(harness.grouper.components.items(), families):
        out = component.module(inputs[name])
        target = targets[name]
        error = (out - target) ** 2
        if name in weights:
            error = error * weights[name]
        loss = loss + error.mean() / target.var().clamp(min=1e-8) / families.count(family)
    return loss


def gradient_search(harness: SearchHarness, inputs: dict[str, torch.Tensor],
                    steps: int = 100, lr: float = 0.05, t_start: float = 0.5,
                    t_end: float = 0.02, snapshots: int = 4, max_rows: int = 2048,
                    seed: int = 0) -> None:
    """Descends the surrogate, then lets the harness score ``snapshots`` hard candidates.

    Args:
        inputs: component name -> input batch from the dense agent's closed-loop states.
        steps: gradient steps.
        lr: Adam step size on log-coefficients.
        t_start: initial mask temperature (units of normalised importance).
        t_end: final temperature.
        snapshots: coefficient snapshots (evenly spaced, the last one included) scored on
            the real objective, besides the all-ones start.
        max_rows: inputs are subsampled to this many rows per component (seeded).
        seed: seeds the subsampling.
    """
    generator = torch.Generator().manual_seed(seed)
    batch = {}
    for name in harness.grouper.components:
        x = inputs[name].detach().float()
        if len(x) > max_rows:
            x = x[torch.randperm(len(x), generator=generator)[:max_rows]]
        batch[name] = x
    with torch.no_grad():
        targets = {n: c.module(batch[n]) for n, c in harness.grouper.components.items()}
    log_c = torch.zeros(len(harness.units), requires_grad=True)
    optim = torch.optim.Adam([log_c], lr=lr)
    keep = {int(round(s)) for s in np.linspace(0, steps, snapshots + 1)[1:]}
    candidates = [np.ones(len(harness.units))]
    for component in harness.grouper.components.values():
        component.module.requires_grad_(False)
    try:
        with ChannelMasks(harness.grouper) as masks:
            for step in range(1, steps + 1):
                temperature = t_start * (t_end / t_start) ** (step / steps)
                soft = _soft_masks(harness, log_c, temperature)
                masks.set_masks(soft)
                loss = _distillation_loss(harness, batch, targets,
                                          _output_weights(harness, soft))
                optim.zero_grad()
                loss.backward()
                optim.step()
                with torch.no_grad():
                    # The cut is invariant to scaling every coefficient alike, while soft
                    # masks are not (they sharpen): keep that direction out of the descent.
                    log_c.sub_(log_c.mean()).clamp_(-3.0, 3.0)
                if step in keep:
                    candidates.append(np.exp(log_c.detach().double().numpy()))
    finally:
        for component in harness.grouper.components.values():
            component.module.requires_grad_(True)
    try:
        for candidate in candidates:
            harness.evaluate(candidate)
    except BudgetExhausted:
        return
