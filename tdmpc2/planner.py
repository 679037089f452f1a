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

import torch

from tdmpc2.config import PlannerConfig
from tdmpc2.world_model import WorldModel

__all__ = ["MPPIPlanner"]


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

    def estimate_value(self, z: torch.Tensor, actions: torch.Tensor, n: int) -> torch.Tensor:
        """Discounted model return of action sequences plus a terminal Q value
        (differentiable in the model where gradients are on: pruning fits to it).

        With a termination head, rewards and the terminal value after a predicted episode
        end count zero, as in official TD-MPC2 for episodic tasks.

        Args:
            z: latents [n * S, L], the S candidates of each of n rows together.
            actions: [H, n * S, A].
            n: batch rows (random streams).

        Returns:
            values [n * S, 1].
        """
        per_row = z.shape[0] // n
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
        noise = self._randn(n, per_row, self.model.cfg.action_dim).flatten(0, 1)
        terminal, _, _ = self.model.policy(z, noise)
        pairs = self._q_pairs(n).repeat_interleave(per_row, dim=0)
        return value + weight * alive * self.model.q_value(z, terminal, pairs, "avg")

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

    @torch.no_grad()
    def _policy_trajectories(self, z: torch.Tensor) -> torch.Tensor:
        """Roll the policy prior through the model: [H, N * P, A] for N latents."""
        cfg, n = self.cfg, z.shape[0]
        z = z.repeat_interleave(cfg.num_pi_trajs, dim=0)
        out = []
        for t in range(cfg.horizon):
            noise = self._randn(n, cfg.num_pi_trajs, self.model.cfg.action_dim).flatten(0, 1)
            action, _, _ = self.model.policy(z, noise)
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
        h, s, p, k = cfg.horizon, cfg.num_samples, cfg.num_pi_trajs, cfg.num_elites
        a_dim = self.model.cfg.action_dim
        actions = torch.empty(h, n, s, a_dim)
        if p:
            actions[:, :, :p] = self._policy_trajectories(z).reshape(h, n, p, a_dim)

        mean = torch.zeros(h, n, a_dim)
        if self._prev_mean is not None and self._prev_mean.shape[1] == n:
            warm = ~first_step.bool()
            mean[:-1, warm] = self._prev_mean[1:, warm]
        std = torch.full((h, n, a_dim), cfg.max_std)
        z_rep = z.repeat_interleave(s, dim=0)

        for _ in range(cfg.iterations):
            noise = self._randn(n, h, s - p, a_dim).transpose(0, 1)
            actions[:, :, p:] = (mean.unsqueeze(2) + std.unsqueeze(2) * noise).clamp(-1, 1)
            value = self.estimate_value(z_rep, actions.reshape(h, n * s, a_dim), n)
            value = value.reshape(n, s)
            value = torch.nan_to_num(value, nan=-torch.inf)
            elite_value, elite_idx = value.topk(k, dim=1)
            index = elite_idx[None, :, :, None].expand(h, n, k, a_dim)
            elites = actions.gather(2, index)  # [H, N, K, A]
            score = torch.softmax(cfg.temperature * elite_value, dim=1)  # [N, K]
            weight = score[None, :, :, None]
            mean = (weight * elites).sum(2)
            var = (weight * (elites - mean.unsqueeze(2)).pow(2)).sum(2)
            std = var.sqrt().clamp(cfg.min_std, cfg.max_std)

        # A broken model (non-finite values everywhere) yields NaN actions, which the
        # caller can detect, rather than an arbitrary sample or a crash.
        broken = ~torch.isfinite(score).all(dim=1)
        score = torch.where(broken[:, None], torch.full_like(score, 1.0 / k), score)
        choice = torch.cat([torch.multinomial(row, 1, generator=g)
                            for row, g in zip(score, self._streams(n))])  # [N]
        chosen = elites[:, torch.arange(n), choice]  # [H, N, A]
        self._prev_mean = mean
        action = chosen[0].masked_fill(broken[:, None], float("nan"))
        if not eval_mode:
            action = (action + std[0] * self._randn(n, a_dim)).clamp(-1, 1)
        return action
