"""The TD-MPC2 agent: acting by batched MPPI planning, learning by the TD-MPC2 losses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tdmpc2.config import ModelConfig, PlannerConfig, TrainConfig
from tdmpc2.planner import MPPIPlanner
from tdmpc2.world_model import WorldModel

__all__ = ["RunningScale", "TDMPC2Agent", "UpdateInfo", "heuristic_discount"]

_MIN_ROWS = 4
"""Smallest batch the encoder runs on (see ``act``)."""


def heuristic_discount(episode_length: int | None, cfg: TrainConfig) -> float:
    """TD-MPC2's discount from the episode length: longer episodes, longer horizon."""
    if not episode_length:
        return cfg.discount_max
    frac = episode_length / cfg.discount_denom
    return float(min(max((frac - 1) / frac, cfg.discount_min), cfg.discount_max))


class RunningScale:
    """Running 5-95 percentile range of Q values; divides the policy objective so its
    size does not depend on the task's reward scale (TD-MPC2)."""

    def __init__(self, tau: float) -> None:
        self.tau = tau
        self.value = torch.ones(())

    def update(self, x: torch.Tensor) -> None:
        x = x.detach().flatten()
        spread = torch.quantile(x, 0.95) - torch.quantile(x, 0.05)
        self.value = torch.lerp(self.value, spread, self.tau)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.value.clamp(min=1.0)


@dataclass(frozen=True)
class UpdateInfo:
    """Losses of one gradient update."""

    consistency: float
    reward: float
    value: float
    pi: float
    grad_norm: float


class TDMPC2Agent:
    """World model + planner + optimisers.

    Args:
        model_cfg: architecture.
        planner_cfg: MPPI settings.
        discount: return discount (see ``heuristic_discount``).
        train_cfg: optimisation settings; ``None`` for an acting-only agent.
        seed: seeds network initialisation and the planner.
    """

    def __init__(
        self,
        model_cfg: ModelConfig,
        planner_cfg: PlannerConfig | None = None,
        discount: float = 0.99,
        train_cfg: TrainConfig | None = None,
        seed: int = 0,
    ) -> None:
        torch.manual_seed(seed)
        self.model = WorldModel(model_cfg).eval()
        self.planner_cfg = planner_cfg or PlannerConfig()
        self.discount = discount
        self.planner = MPPIPlanner(self.model, self.planner_cfg, discount, seed=seed)
        self.scale = RunningScale(train_cfg.tau if train_cfg else 0.01)
        self.train_cfg = train_cfg
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.meta: dict = {}
        """Free-form facts about the agent (task, env steps...), saved with it."""
        if train_cfg is not None:
            m = self.model
            self.optim = torch.optim.Adam([
                {"params": m.encoder.parameters(), "lr": train_cfg.lr * train_cfg.enc_lr_scale},
                {"params": [*m.dynamics.parameters(), *m.reward.parameters(),
                            *m.Qs.parameters()]},
            ], lr=train_cfg.lr, capturable=False)
            self.pi_optim = torch.optim.Adam(m.pi.parameters(), lr=train_cfg.lr, eps=1e-5)

    def set_planner(self, cfg: PlannerConfig, seed: int = 0) -> None:
        """Acts through a planner with other settings from now on (saved with the agent)."""
        self.planner_cfg = cfg
        self.planner = MPPIPlanner(self.model, cfg, self.discount, seed=seed)

    @torch.no_grad()
    def act(
        self,
        obs: np.ndarray | torch.Tensor,
        first_step: np.ndarray | torch.Tensor | None = None,
        eval_mode: bool = True,
        planner: MPPIPlanner | None = None,
    ) -> np.ndarray:
        """Planned actions [N, A] for observations [N, obs_dim].

        ``planner`` overrides the agent's own (e.g. a cheaper one while collecting data).
        """
        obs_t = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
        if obs_t.ndim == 1:
            obs_t = obs_t.unsqueeze(0)
        if first_step is None:
            first_step = torch.ones(obs_t.shape[0], dtype=torch.bool)
        # MKL multiplies matrices of fewer than 4 rows with other kernels, which sum in
        # another order: pad small batches, so an env gets bit-identical actions whether
        # it is planned alone or inside a batch.
        padding = max(0, _MIN_ROWS - len(obs_t))
        z = self.model.encode(torch.cat([obs_t, obs_t[:1].expand(padding, -1)]))[:len(obs_t)]
        planner = planner or self.planner
        action = planner.plan(z, torch.as_tensor(np.asarray(first_step)), eval_mode)
        return action.numpy()

    def _noise(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=self.generator)

    def _pair(self) -> torch.Tensor:
        return torch.randperm(self.model.cfg.num_q, generator=self.generator)[:2]

    def update(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
               terminated: torch.Tensor) -> UpdateInfo:
        """One TD-MPC2 update on sequences: obs [H+1, B, O], action/reward/terminated [H, B, *]."""
        if self.train_cfg is None:
            raise RuntimeError("this agent was built without a TrainConfig and cannot learn")
        cfg, m = self.train_cfg, self.model
        horizon = action.shape[0]
        m.train()
        with torch.no_grad():
            next_z = m.encode(obs[1:])
            next_action, _, _ = m.policy(next_z, self._noise(*action.shape))
            next_q = m.q_value(next_z, next_action, self._pair(), "min", target=True)
            td_target = reward + self.discount * (1 - terminated) * next_q

        weights = cfg.rho ** torch.arange(horizon, dtype=torch.float32)
        z = m.encode(obs[0])
        zs = [z]
        consistency = torch.zeros(())
        for t in range(horizon):
            z = m.next(z, action[t])
            consistency = consistency + weights[t] * F.mse_loss(z, next_z[t])
            zs.append(z)
        z_seq = torch.stack(zs[:-1])  # [H, B, L]
        reward_loss = (m.two_hot.loss(m.reward_logits(z_seq, action), reward).mean((1, 2))
                       * weights).sum()
        q_logits = m.q_logits(z_seq, action)  # [Q, H, B, bins]
        value_loss = (m.two_hot.loss(q_logits, td_target.unsqueeze(0)).mean((0, 2, 3))
                      * weights).sum()
        total = (cfg.consistency_coef * consistency + cfg.reward_coef * reward_loss
                 + cfg.value_coef * value_loss) / horizon
        self.optim.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(
            [p for g in self.optim.param_groups for p in g["params"]], cfg.grad_clip)
        self.optim.step()

        pi_loss = self._update_pi(torch.stack(zs).detach(), weights)
        m.soft_update_targets(cfg.tau)
        m.eval()
        return UpdateInfo(consistency.item() / horizon, reward_loss.item() / horizon,
                          value_loss.item() / horizon, pi_loss, grad_norm.item())

    def _update_pi(self, zs: torch.Tensor, weights: torch.Tensor) -> float:
        """Maximise scaled Q of the policy's actions plus entropy over the latent rollout."""
        cfg, m = self.train_cfg, self.model
        m.Qs.requires_grad_(False)
        action, _, entropy = m.policy(zs, self._noise(*zs.shape[:-1], m.cfg.action_dim))
        q = m.q_value(zs, action, self._pair(), "avg")
        self.scale.update(q[0])
        q = self.scale(q)
        rho = torch.cat([weights, weights[-1:] * cfg.rho])
        loss = (-(cfg.entropy_coef * entropy + q).mean((1, 2)) * rho).mean()
        self.pi_optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.pi.parameters(), cfg.grad_clip)
        self.pi_optim.step()
        m.Qs.requires_grad_(True)
        return loss.item()
