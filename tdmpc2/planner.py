"""MPPI planning in latent space, batched over environments (TD-MPC2 Sec. 3.3).

One ``plan`` call refines action sequences for N environments at once: the N x S
candidate trajectories run through the world model as one batch, which is what makes
batched closed-loop evaluation cheap.

All randomness comes from the planner's own generators, one *stream per batch row*:
row ``i`` draws from a generator seeded ``seed + i``, in the order a single-env plan
would. So planning N episodes in one batch makes the same draws as planning each alone
with seed ``seed + i`` (batched evaluation equals the sequential loop, up to float
rounding of batched matrix products), and a seed reproduces every action.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from tdmpc2.config import PlannerConfig
from tdmpc2.world_model import WorldModel

__all__ = ["MPPIPlanner", "MPPIStep", "PlanNoise"]


@dataclass(frozen=True)
class PlanNoise:
    """The random numbers of one plan of N rows (``MPPIPlanner.draw``)."""

    pi: torch.Tensor
    """Policy-prior proposals' noise [H, N * P, A]."""
    samples: torch.Tensor
    """Sampled sequences' noise per iteration [I, H, N, S - P, A]."""
    terminal: torch.Tensor
    """Terminal policy noise per iteration [I, N * S, A]."""
    pairs: torch.Tensor
    """Each row's two Q heads per iteration [I, N, 2]."""


class MPPIPlanner:
    """Model predictive path integral control with a policy prior and warm starts.

    Args:
        model: the world model to plan with.
        cfg: planner settings.
        discount: return discount used in value estimates.
        seed: seed of the planner's generator.
    """

    def __init__(self, model: WorldModel, cfg: PlannerConfig, discount: float, seed: int = 0):
        self.model, self.cfg, self.discount = model, cfg, discount
        self.graph: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None
        """Runs ``MPPIStep`` (compiled, exported...) in place of the eager refinement
        when set; None: eager."""
        self.reseed(seed)

    def reseed(self, seed: int, same_rows: bool = False) -> None:
        """Restarts every stream: row i from ``seed + i`` (common random numbers across
        runs); with ``same_rows``, every row from ``seed``, so rows that differ only in
        their latent plan with the same numbers (finite differences across rows)."""
        self.seed, self.same_rows = seed, same_rows
        self.streams: list[torch.Generator] = []
        self._prev_mean: torch.Tensor | None = None

    @property
    def generator(self) -> torch.Generator:
        """The stream of row 0 (the only one when acting in a single env)."""
        return self._streams(1)[0]

    def _streams(self, n: int) -> list[torch.Generator]:
        while len(self.streams) < n:
            row = 0 if self.same_rows else len(self.streams)
            self.streams.append(torch.Generator().manual_seed(self.seed + row))
        return self.streams[:n]

    def _randn(self, n: int, *shape: int) -> torch.Tensor:
        """Standard normals [n, *shape], row i from stream i."""
        return torch.stack([torch.randn(*shape, generator=g) for g in self._streams(n)])

    def _q_pairs(self, n: int) -> torch.Tensor:
        """Two distinct Q heads per row: [n, 2]."""
        return torch.stack([torch.randperm(self.model.cfg.num_q, generator=g)[:2]
                            for g in self._streams(n)])

    def estimate_value(self, z: torch.Tensor, actions: torch.Tensor, n: int,
                       terminal_noise: torch.Tensor | None = None,
                       pairs: torch.Tensor | None = None,
                       every_head: bool = False) -> torch.Tensor:
        """Discounted model return of action sequences plus a terminal Q value
        (differentiable in the model where gradients are on: pruning fits to it).

        With a termination head, rewards and the terminal value after a predicted episode
        end count zero, as in official TD-MPC2 for episodic tasks.

        Args:
            z: latents [n * S, L], the S candidates of each of n rows together.
            actions: [H, n * S, A].
            n: batch rows (random streams).
            terminal_noise, pairs: the terminal policy's noise [n * S, A] and each row's
                two Q heads [n, 2] (default: drawn from the rows' streams).
            every_head: run every Q head on every row and pick each row's pair after
                (more compute, no data-dependent shapes: for a graph export).

        Returns:
            values [n * S, 1].
        """
        per_row = z.shape[0] // n
        if terminal_noise is None:
            terminal_noise = self._randn(n, per_row, self.model.cfg.action_dim).flatten(0, 1)
            pairs = self._q_pairs(n)
        value = torch.zeros(z.shape[0], 1)
        alive = torch.ones(z.shape[0], 1)  # 0 after a predicted episode end
        weight = 1.0
        for action in actions:
            reward = self.model.two_hot.decode(self.model.reward_logits(z, action))
            z = self.model.next(z, action)
            value = value + weight * alive * reward
            weight *= self.discount
            if self.model.termination is not None:
                alive = alive * (1 - self.model.terminated(z))
        terminal, _, _ = self.model.policy(z, terminal_noise)
        pairs = pairs.repeat_interleave(per_row, dim=0)
        return value + weight * alive * self.model.q_value(z, terminal, pairs, "avg",
                                                           every_head=every_head)

    def calls_per_step(self) -> dict[str, list[tuple[float, float]]]:
        """How each world-model network runs to plan one env's action: a list of
        (forward passes, rows per pass).

        The policy prior rolls ``num_pi_trajs`` trajectories through the horizon; each
        iteration values every sample: reward and dynamics at every horizon step, the
        policy and two Q heads (drawn per row: each head sees ``1 / num_q`` of the rows in
        each of its two passes) at its end.
        """
        cfg, model = self.cfg, self.model
        h, s, p, i = cfg.horizon, cfg.num_samples, cfg.num_pi_trajs, cfg.iterations
        if i == 0:  # the policy prior alone
            return {"encoder": [(1, 1)], "pi": [(1, 1)]}
        rollout = [(h, p)] if p else []
        calls = {"encoder": [(1, 1)], "pi": rollout + [(i, s)],
                 "dynamics": ([(h - 1, p)] if p and h > 1 else []) + [(i * h, s)],
                 "reward": [(i * h, s)]}
        calls.update({f"Q{q}": [(2 * i, s / model.cfg.num_q)] for q in range(model.cfg.num_q)})
        if model.termination is not None:
            calls["termination"] = [(i * h, s)]
        return calls

    def draw(self, n: int) -> PlanNoise:
        """Every random number one plan of n rows takes, from the rows' streams in the
        order planning uses them (so a plan made from them equals ``plan``'s)."""
        cfg, a_dim = self.cfg, self.model.cfg.action_dim
        h, s, p = cfg.horizon, cfg.num_samples, cfg.num_pi_trajs
        per_row: list[tuple] = []
        for g in self._streams(n):
            pi = [torch.randn(p, a_dim, generator=g) for _ in range(h)] if p else []
            iterations = [(torch.randn(h, s - p, a_dim, generator=g),
                           torch.randn(s, a_dim, generator=g),
                           torch.randperm(self.model.cfg.num_q, generator=g)[:2])
                          for _ in range(cfg.iterations)]
            per_row.append((pi, iterations))

        def stacked(part, index: int) -> torch.Tensor:
            return torch.stack([torch.stack([it[index] for it in iterations])
                                for _, iterations in part])

        return PlanNoise(
            pi=(torch.stack([torch.stack(pi) for pi, _ in per_row], 1).flatten(1, 2)
                if p else torch.empty(h, 0, a_dim)),
            samples=stacked(per_row, 0).permute(1, 2, 0, 3, 4),
            terminal=stacked(per_row, 1).transpose(0, 1).flatten(1, 2),
            pairs=stacked(per_row, 2).transpose(0, 1))

    def refine(self, z: torch.Tensor, mean: torch.Tensor, noise: PlanNoise,
               every_head: bool = False) -> tuple[torch.Tensor, ...]:
        """MPPI's iterations from latents z [N, L] and an initial mean [H, N, A] with the
        random numbers ``noise``: (mean, std [H, N, A], elites [H, N, K, A], elite
        scores [N, K]). Pure tensor code: ``MPPIStep`` exports it as one graph."""
        cfg, n, a_dim = self.cfg, z.shape[0], self.model.cfg.action_dim
        h, s, p, k = cfg.horizon, cfg.num_samples, cfg.num_pi_trajs, cfg.num_elites
        proposals = (self._policy_trajectories(z, noise.pi).reshape(h, n, p, a_dim) if p
                     else torch.empty(h, n, 0, a_dim))
        std = torch.full((h, n, a_dim), cfg.max_std)
        z_rep = z.repeat_interleave(s, dim=0)
        for i in range(cfg.iterations):
            sampled = (mean.unsqueeze(2) + std.unsqueeze(2) * noise.samples[i]).clamp(-1, 1)
            actions = torch.cat([proposals, sampled], dim=2)  # [H, N, S, A]
            value = self.estimate_value(z_rep, actions.reshape(h, n * s, a_dim), n,
                                        noise.terminal[i], noise.pairs[i], every_head)
            value = torch.nan_to_num(value.reshape(n, s), nan=-torch.inf)
            elite_value, elite_idx = value.topk(k, dim=1)
            elites = actions.gather(2, elite_idx[None, :, :, None].expand(h, n, k, a_dim))
            score = torch.softmax(cfg.temperature * elite_value, dim=1)  # [N, K]
            weight = score[None, :, :, None]
            mean = (weight * elites).sum(2)
            var = (weight * (elites - mean.unsqueeze(2)).pow(2)).sum(2)
            std = var.sqrt().clamp(cfg.min_std, cfg.max_std)
        return mean, std, elites, score

    def _policy_trajectories(self, z: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Roll the policy prior through the model: [H, N * P, A] for N latents, with
        its noise [H, N * P, A]."""
        cfg = self.cfg
        z = z.repeat_interleave(cfg.num_pi_trajs, dim=0)
        out = []
        for t in range(cfg.horizon):
            action, _, _ = self.model.policy(z, noise[t])
            out.append(action)
            if t < cfg.horizon - 1:
                z = self.model.next(z, action)
        return torch.stack(out)

    @torch.no_grad()
    def plan(
        self, z: torch.Tensor, first_step: torch.Tensor, eval_mode: bool = True
    ) -> torch.Tensor:
        """Actions [N, A] for latents [N, L].

        Args:
            z: current latents of N environments.
            first_step: bool [N], True where an episode just started (no warm start).
            eval_mode: False adds exploration noise of the final sampling std.
        """
        cfg, n = self.cfg, z.shape[0]
        if cfg.iterations == 0:  # no planning: the policy prior's mean (sampled in training)
            noise = torch.zeros(n, self.model.cfg.action_dim) if eval_mode else \
                self._randn(n, self.model.cfg.action_dim)
            return self.model.policy(z, noise)[0]
        mean = torch.zeros(cfg.horizon, n, self.model.cfg.action_dim)
        if self._prev_mean is not None and self._prev_mean.shape[1] == n:
            warm = ~first_step.bool()
            mean[:-1, warm] = self._prev_mean[1:, warm]
        noise = self.draw(n)
        if self.graph is not None and eval_mode:  # the refinement as one graph
            uniform = torch.stack([torch.rand((), generator=g) for g in self._streams(n)])
            action, self._prev_mean = self.graph(z, mean, noise.pi, noise.samples,
                                                 noise.terminal, noise.pairs, uniform)
            return action
        mean, std, elites, score = self.refine(z, mean, noise)

        # A broken model (non-finite values everywhere) yields NaN actions, which the
        # caller can detect, rather than an arbitrary sample or a crash.
        broken = ~torch.isfinite(score).all(dim=1)
        score = torch.where(broken[:, None], torch.full_like(score, 1.0 / cfg.num_elites),
                            score)
        choice = torch.cat([torch.multinomial(row, 1, generator=g)
                            for row, g in zip(score, self._streams(n))])  # [N]
        chosen = elites[:, torch.arange(n), choice]  # [H, N, A]
        self._prev_mean = mean
        action = chosen[0].masked_fill(broken[:, None], float("nan"))
        if not eval_mode:
            action = (action + std[0] * self._randn(n, self.model.cfg.action_dim)).clamp(-1, 1)
        return action


class MPPIStep(nn.Module):
    """MPPI's planning of one control step as one graph, to compile or export whole:
    latents [N, L], the initial mean [H, N, A] (warm-started by ``plan``) and the step's
    random numbers (``MPPIPlanner.draw``, and ``uniform`` [N] in [0, 1)) in; actions
    [N, A] and the refined mean out.

    Every Q head runs on every sample (no data-dependent shapes), and the final sequence
    is drawn from the elites' scores by the inverse CDF of ``uniform``, where eager
    planning calls ``torch.multinomial``: the same distribution, other draws.
    """

    def __init__(self, planner: MPPIPlanner) -> None:
        super().__init__()
        self.model = planner.model
        self._planner = planner

    def forward(self, z: torch.Tensor, mean: torch.Tensor, pi: torch.Tensor,
                samples: torch.Tensor, terminal: torch.Tensor, pairs: torch.Tensor,
                uniform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, _, elites, score = self._planner.refine(
            z, mean, PlanNoise(pi, samples, terminal, pairs), every_head=True)
        choice = (score.cumsum(1) < uniform[:, None]).sum(1).clamp(max=score.shape[1] - 1)
        h, n, _, a_dim = elites.shape
        chosen = elites.gather(2, choice[None, :, None, None].expand(h, n, 1, a_dim))
        return chosen[0, :, 0], mean

    def example_inputs(self, n: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """Inputs of a first step for n random latents, drawn from ``seed``."""
        planner = self._planner
        previous = (planner.seed, planner.same_rows)
        planner.reseed(seed)
        try:
            noise = planner.draw(n)
            uniform = torch.stack([torch.rand((), generator=g) for g in planner._streams(n)])
        finally:
            planner.reseed(*previous)
        latent = self.model.cfg.latent_dim
        z = torch.randn(n, latent, generator=torch.Generator().manual_seed(seed))
        mean = torch.zeros(planner.cfg.horizon, n, self.model.cfg.action_dim)
        return z, mean, noise.pi, noise.samples, noise.terminal, noise.pairs, uniform
