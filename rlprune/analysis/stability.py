"""Latent-space stability of a pruned world model against its dense original.

arXiv 2507.14882, step 4, on the same closed-loop trajectories of the dense agent:

- latent drift: distance between pruned and dense encoder latents, and the error of
  multi-step dynamics rollouts over the planning horizon (both starting from the dense
  latent, fed the recorded actions);
- closed-loop latent dynamics z' = d(z, pi(z)) with the policy prior's mean action: the
  spectral radius of its Jacobian at visited latents (distribution and max);
- a sampled Lyapunov decrease test in the visited region: the fraction of samples with
  V(z') < V(z) for a quadratic V(z) = (z - z*)^T P (z - z*), where z* is the latent the
  closed loop settles to from the mean visited latent and P solves the discrete Lyapunov
  equation of the linearisation there (identity if that linearisation is unstable).
  Samples are visited latents and convex mixtures of pairs of them, which stay on
  SimNorm's product of simplices. (Our concrete choices; COM-PACT, arXiv 2508.08144,
  learns V instead.)
- the loop that acts, z' = d(z, MPPI(z)), for agents that plan (``planner_action``): the
  planner samples and picks elites, so it has no autograd Jacobian; its spectral radius at
  a few visited latents is estimated from Jacobian-vector products by central differences,
  every perturbed latent planned with the same random numbers, through a short Arnoldi
  iteration (the largest Ritz value). The planner runs without warm start: the map from
  latent to action, not the controller's memory of its previous plan.

When the latent interface itself was pruned, the pruned latent keeps a subset of the
dense dimensions (``meta["interface_index"]["latent"]``): the dense latents are compared
on those dimensions, and the pruned model is started from them.

Agents without a latent space get the action deviation from the dense policy instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy import linalg

__all__ = ["ActionDeviation", "LatentStability", "action_deviation", "latent_stability",
           "planner_radii", "stability_report"]


@dataclass(frozen=True)
class LatentStability:
    """Drift from the dense model and closed-loop stability indicators of both models."""

    encoder_drift: float
    """Mean L2 distance between pruned and dense latents of the same observations."""
    encoder_drift_relative: float
    """``encoder_drift`` divided by the mean L2 norm of the dense latents."""
    rollout_error: list[float]
    """Mean L2 error of the pruned dynamics rollout vs the dense one, per horizon step."""
    spectral_radius_dense: dict[str, float]
    """Mean, 95th percentile and max spectral radius of the closed-loop Jacobian."""
    spectral_radius_pruned: dict[str, float]
    lyapunov_decrease_dense: float
    """Fraction of sampled latents where V decreases along the closed loop."""
    lyapunov_decrease_pruned: float
    samples: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ActionDeviation:
    """How far a pruned policy's actions move from the dense policy's on the same states."""

    mean_abs: float
    max_abs: float
    rmse: float

    def to_dict(self) -> dict:
        return asdict(self)


def _closed_loop(agent):
    return lambda z: agent.latent_step(z, agent.policy_mean(z))


def _spectral_radii(agent, latents: torch.Tensor) -> np.ndarray:
    step = _closed_loop(agent)
    radii = []
    for z in latents:
        jac = torch.autograd.functional.jacobian(lambda x: step(x[None])[0], z)
        radii.append(np.abs(np.linalg.eigvals(jac.double().numpy())).max())
    return np.asarray(radii)


def _ritz_radii(step, z: torch.Tensor, krylov: int, eps: float, seed: int) -> np.ndarray:
    """Per row of ``z``: the largest |Ritz value| of ``step``'s Jacobian there, after
    ``krylov`` Arnoldi steps whose Jacobian-vector products are central differences
    (one batched call of ``step`` per step, on 2 x rows latents)."""
    rows, width = z.shape
    m = min(krylov, width)
    basis = torch.zeros(rows, m + 1, width, dtype=torch.float64)
    hessenberg = torch.zeros(rows, m + 1, m, dtype=torch.float64)
    start = torch.randn(rows, width, generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64)
    basis[:, 0] = start / start.norm(dim=-1, keepdim=True)
    for j in range(m):
        direction = eps * basis[:, j].float()
        moved = step(torch.cat([z + direction, z - direction])).double()
        w = (moved[:rows] - moved[rows:]) / (2 * eps)
        for i in range(j + 1):  # modified Gram-Schmidt
            hessenberg[:, i, j] = (basis[:, i] * w).sum(-1)
            w = w - hessenberg[:, i, j, None] * basis[:, i]
        hessenberg[:, j + 1, j] = w.norm(dim=-1)
        basis[:, j + 1] = w / w.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return np.abs(np.linalg.eigvals(hessenberg[:, :m, :m].numpy())).max(axis=1)


@torch.no_grad()
def planner_radii(agent, latents: torch.Tensor, seed: int = 0, krylov: int = 12,
                  eps: float = 1e-3) -> np.ndarray:
    """Spectral radius of the acting loop z' = d(z, MPPI(z)) at each latent, estimated
    (``_ritz_radii``; exact up to differencing error when ``krylov`` >= the latent width).
    The planner plans every perturbed latent with the random numbers of ``seed``."""
    def step(z: torch.Tensor) -> torch.Tensor:
        return agent.latent_step(z, agent.planner_action(z, seed))
    return _ritz_radii(step, latents, krylov, eps, seed)


def _summary(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(values.mean()), "p95": float(np.percentile(values, 95)),
            "max": float(values.max())}


@torch.no_grad()
def _settle(agent, z: torch.Tensor, steps: int = 200) -> torch.Tensor:
    step = _closed_loop(agent)
    for _ in range(steps):
        z = step(z)
    return z


def _lyapunov_fraction(agent, samples: torch.Tensor) -> float:
    z_star = _settle(agent, samples.mean(0, keepdim=True))
    a = torch.autograd.functional.jacobian(lambda x: _closed_loop(agent)(x[None])[0],
                                           z_star[0]).double().numpy()
    if np.abs(np.linalg.eigvals(a)).max() < 1:
        p = linalg.solve_discrete_lyapunov(a.T, np.eye(a.shape[0]))
    else:
        p = np.eye(a.shape[0])
    p_t = torch.as_tensor(p, dtype=torch.float32)
    with torch.no_grad():
        nxt = _closed_loop(agent)(samples)

    def v(z: torch.Tensor) -> torch.Tensor:
        d = z - z_star
        return ((d @ p_t) * d).sum(-1)

    return float((v(nxt) < v(samples)).float().mean())


def _kept_latent_dims(dense, pruned) -> list[int] | None:
    """Positions in the dense latent that the pruned latent keeps (None: all of them)."""
    kept = pruned.meta.get("interface_index", {}).get("latent")
    base = dense.meta.get("interface_index", {}).get("latent")
    if kept is None or kept == base:
        return None
    if base is None:
        return list(kept)
    position = {dim: i for i, dim in enumerate(base)}
    if any(dim not in position for dim in kept):
        raise ValueError("the pruned agent keeps latent dimensions the dense agent does not "
                         "have: it was not pruned from this agent")
    return [position[dim] for dim in kept]


def latent_stability(dense, pruned, trajectories: list[tuple[np.ndarray, np.ndarray]],
                     horizon: int = 3, max_samples: int = 128, seed: int = 0
                     ) -> LatentStability:
    """Compares a pruned world-model agent with its dense original.

    Args:
        dense: the dense agent adapter (with ``latent``, ``latent_step``, ``policy_mean``).
        pruned: the pruned agent adapter.
        trajectories: per episode (observations [T, O], actions [T, A]) from closed-loop
            rollouts (``StateRecorder.trajectories()``).
        horizon: rollout length for the dynamics error (the planning horizon).
        max_samples: visited latents used for Jacobians and the Lyapunov test.
        seed: picks the samples.
    """
    rng = np.random.default_rng(seed)
    dims = _kept_latent_dims(dense, pruned)

    def shared(z: torch.Tensor) -> torch.Tensor:
        """A dense latent restricted to the dimensions the pruned latent has."""
        return z if dims is None else z[..., dims]

    obs = np.concatenate([o for o, _ in trajectories])
    z_dense, z_pruned = shared(dense.latent(obs)), pruned.latent(obs)
    drift = (z_pruned - z_dense).norm(dim=-1).mean().item()
    scale = z_dense.norm(dim=-1).mean().item()

    errors = np.zeros(horizon)
    count = 0
    with torch.no_grad():
        for o, u in trajectories:
            if len(o) <= horizon:
                continue
            zd = dense.latent(o[: len(o) - horizon])
            zp = shared(zd)
            acts = torch.as_tensor(u, dtype=torch.float32)
            for k in range(horizon):
                a = acts[k: len(o) - horizon + k]
                zd, zp = dense.latent_step(zd, a), pruned.latent_step(zp, a)
                errors[k] += (zp - shared(zd)).norm(dim=-1).sum().item()
            count += len(zp)
    errors /= max(count, 1)

    pick = rng.choice(len(obs), size=min(max_samples, len(obs)), replace=False)
    visited = dense.latent(obs[pick])
    mix = torch.as_tensor(rng.uniform(size=(len(visited), 1)), dtype=torch.float32)
    partners = visited[torch.as_tensor(rng.permutation(len(visited)))]
    samples = torch.cat([visited, mix * visited + (1 - mix) * partners])
    return LatentStability(
        encoder_drift=drift, encoder_drift_relative=drift / max(scale, 1e-12),
        rollout_error=errors.tolist(),
        spectral_radius_dense=_summary(_spectral_radii(dense, visited)),
        spectral_radius_pruned=_summary(_spectral_radii(pruned, shared(visited))),
        lyapunov_decrease_dense=_lyapunov_fraction(dense, samples),
        lyapunov_decrease_pruned=_lyapunov_fraction(pruned, shared(samples)),
        samples=len(samples))


def action_deviation(dense, pruned, observations: np.ndarray) -> ActionDeviation:
    """Action differences of two (deterministic) policies on the same observations."""
    dense.reset(0)
    pruned.reset(0)
    diff = np.asarray(pruned.act(observations)) - np.asarray(dense.act(observations))
    return ActionDeviation(float(np.abs(diff).mean()), float(np.abs(diff).max()),
                           float(np.sqrt((diff ** 2).mean())))


POLICY_PRIOR_LOOP = "policy-prior loop z' = d(z, pi(z)) (not the MPPI planner's)"
PLANNER_LOOP = ("acting loop z' = d(z, MPPI(z)), planner without warm start, radius from "
                "finite differences")
ACTING_LOOP = "the acting policy on the dense agent's visited observations"


def _planner_loop(dense, pruned, observations: np.ndarray, samples: int, seed: int) -> dict:
    """Both agents' acting-loop radii at ``samples`` visited latents of the dense agent."""
    pick = np.random.default_rng(seed).choice(len(observations),
                                              size=min(samples, len(observations)),
                                              replace=False)
    visited = dense.latent(observations[np.sort(pick)])
    dims = _kept_latent_dims(dense, pruned)
    dense_radii = planner_radii(dense, visited, seed)
    pruned_radii = planner_radii(pruned, visited if dims is None else visited[..., dims], seed)
    return {"jacobian_radius_max_planner": float(pruned_radii.max()),
            "jacobian_radius_max_planner_dense": float(dense_radii.max()),
            "loop_planner": PLANNER_LOOP}


def stability_report(dense, pruned, trajectories: list[tuple[np.ndarray, np.ndarray]],
                     seed: int = 0, planner_samples: int = 8) -> dict:
    """The stability numbers a run reports for a pruned agent, on the dense agent's
    closed-loop trajectories, with the loop they are about: latent drift, rollout error,
    the Jacobian's spectral radius and the Lyapunov decrease test for world models (and
    for planners, the radius of the loop that acts, at ``planner_samples`` visited
    latents; 0 skips it: it plans 2 x samples latents 12 times per agent); the action
    deviation for policies."""
    observations = np.concatenate([o for o, _ in trajectories])
    if dense.latent(trajectories[0][0][:1]) is not None:
        stability = latent_stability(dense, pruned, trajectories, seed=seed)
        report = {"latent_drift": stability.encoder_drift_relative,
                  "rollout_error": stability.rollout_error,
                  "jacobian_radius_max": stability.spectral_radius_pruned["max"],
                  "jacobian_radius_max_dense": stability.spectral_radius_dense["max"],
                  "lyapunov_decrease": stability.lyapunov_decrease_pruned,
                  "lyapunov_decrease_dense": stability.lyapunov_decrease_dense,
                  "loop": POLICY_PRIOR_LOOP}
        if planner_samples and hasattr(dense, "planner_action"):
            report.update(_planner_loop(dense, pruned, observations, planner_samples, seed))
        return report
    return {"action_rmse": action_deviation(dense, pruned, observations).rmse,
            "loop": ACTING_LOOP}
