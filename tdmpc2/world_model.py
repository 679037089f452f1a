"""The TD-MPC2 world model as separately named components.

Every component is a plain ``nn.Sequential`` over one input tensor (the caller
concatenates ``[z, a]``), so torch-pruning can trace each one on its own and no layer
hides inside a vectorised ensemble: the pruning toolkit sees exactly the networks that
run.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from tdmpc2.config import ModelConfig
from tdmpc2.numerics import TwoHot, squashed_gaussian

__all__ = ["SimNorm", "WorldModel", "build_mlp"]


class SimNorm(nn.Module):
    """Simplicial normalisation: softmax over consecutive groups of ``group`` features."""

    def __init__(self, group: int) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(*shape[:-1], -1, self.group)
        return F.softmax(x, dim=-1).reshape(shape)


def _block(in_dim: int, out_dim: int, dropout: float = 0.0) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return layers + [nn.LayerNorm(out_dim), nn.Mish()]


def build_mlp(
    in_dim: int,
    hidden: list[int],
    out_dim: int,
    simnorm: int | None = None,
    dropout: float = 0.0,
) -> nn.Sequential:
    """Linear-LayerNorm-Mish blocks, then a plain linear head or a LayerNorm-SimNorm head."""
    layers: list[nn.Module] = []
    dims = [in_dim, *hidden]
    for index, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers += _block(a, b, dropout if index == 0 else 0.0)
    layers.append(nn.Linear(dims[-1], out_dim))
    if simnorm:
        layers += [nn.LayerNorm(out_dim), SimNorm(simnorm)]
    return nn.Sequential(*layers)


class WorldModel(nn.Module):
    """Encoder, latent dynamics, reward, policy prior and a Q ensemble (TD-MPC2 Sec. 3).

    Components: ``encoder`` (obs -> z), ``dynamics`` ([z, a] -> z'), ``reward``
    ([z, a] -> two-hot logits), ``pi`` (z -> mean, log-std), ``Qs[i]`` ([z, a] -> two-hot
    logits); ``target_Qs`` are Polyak averages used only for TD targets. Optional:
    ``termination`` (z -> logit that the episode has ended), when ``cfg.termination``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        za = cfg.latent_dim + cfg.action_dim
        self.encoder = build_mlp(cfg.obs_dim, cfg.widths("encoder"), cfg.latent_dim,
                                 simnorm=cfg.simnorm_dim)
        self.dynamics = build_mlp(za, cfg.widths("dynamics"), cfg.latent_dim,
                                  simnorm=cfg.simnorm_dim)
        self.reward = build_mlp(za, cfg.widths("reward"), cfg.num_bins)
        self.pi = build_mlp(cfg.latent_dim, cfg.widths("pi"), 2 * cfg.action_dim)
        self.Qs = nn.ModuleList(
            build_mlp(za, cfg.widths(f"Q{i}"), cfg.num_bins, dropout=cfg.dropout)
            for i in range(cfg.num_q)
        )
        self.termination = (build_mlp(cfg.latent_dim, cfg.widths("termination"), 1)
                            if cfg.termination else None)
        self.apply(_init_weights)
        # TD-MPC2 zero-initialises reward and value heads: predictions start at 0.
        for head in [self.reward, *self.Qs]:
            nn.init.zeros_(head[-1].weight)
            nn.init.zeros_(head[-1].bias)
        self.target_Qs = copy.deepcopy(self.Qs).requires_grad_(False)
        self.two_hot = TwoHot(cfg.num_bins, cfg.vmin, cfg.vmax)

    def components(self) -> dict[str, nn.Module]:
        """The prunable networks by name: encoder, dynamics, reward, pi, Q0..Q{n-1}
        (and termination where the model has one)."""
        named: dict[str, nn.Module] = {
            "encoder": self.encoder, "dynamics": self.dynamics,
            "reward": self.reward, "pi": self.pi,
        }
        named.update({f"Q{i}": q for i, q in enumerate(self.Qs)})
        if self.termination is not None:
            named["termination"] = self.termination
        return named

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encoder(obs)

    def next(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.dynamics(torch.cat([z, action], dim=-1))

    def reward_logits(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.reward(torch.cat([z, action], dim=-1))

    def terminated(self, z: torch.Tensor) -> torch.Tensor:
        """1.0 where the termination head predicts the episode has ended at z, else 0.0
        ([..., 1]; official TD-MPC2 thresholds its probability at 0.5)."""
        return (torch.sigmoid(self.termination(z)) > 0.5).to(z.dtype)

    def policy(
        self, z: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Squashed Gaussian policy prior; ``noise`` is a standard normal of action shape.

        Returns:
            (action, mean action, scaled entropy [..., 1]).
        """
        mean, log_std = self.pi(z).chunk(2, dim=-1)
        lo, hi = self.cfg.log_std_min, self.cfg.log_std_max
        log_std = lo + 0.5 * (hi - lo) * (torch.tanh(log_std) + 1)
        return squashed_gaussian(mean, log_std, noise)

    def q_logits(self, z: torch.Tensor, action: torch.Tensor, target: bool = False) -> torch.Tensor:
        """All heads' two-hot logits, stacked: [num_q, ..., num_bins]."""
        za = torch.cat([z, action], dim=-1)
        heads = self.target_Qs if target else self.Qs
        return torch.stack([q(za) for q in heads])

    def q_value(
        self,
        z: torch.Tensor,
        action: torch.Tensor,
        pair: torch.Tensor,
        reduce: str = "avg",
        target: bool = False,
        every_head: bool = False,
    ) -> torch.Tensor:
        """Value from two heads, averaged or min'd: [..., 1].

        ``pair`` holds two head indices for every row, or one pair per row ([B, 2] for
        z of shape [B, L]: each planning row draws its own). Evaluating only the chosen
        heads keeps planning cost independent of ``num_q``; ``every_head`` runs every
        head on every row and picks after (a graph with no data-dependent shapes).
        """
        za = torch.cat([z, action], dim=-1)
        heads = self.target_Qs if target else self.Qs
        if every_head:
            values = torch.stack([self.two_hot.decode(head(za)) for head in heads])
            q1, q2 = (values.gather(0, pair[None, :, j, None]).squeeze(0) for j in (0, 1))
        elif pair.ndim == 1:
            q1, q2 = (self.two_hot.decode(heads[int(i)](za)) for i in pair)
        else:
            q1, q2 = (self._q_per_row(heads, za, pair[:, j]) for j in (0, 1))
        return torch.min(q1, q2) if reduce == "min" else (q1 + q2) / 2

    def _q_per_row(self, heads: nn.ModuleList, za: torch.Tensor,
                   head_of_row: torch.Tensor) -> torch.Tensor:
        """Row r valued by head ``head_of_row[r]``, each head run once on its rows."""
        out = za.new_empty(za.shape[0], 1)
        for head in head_of_row.unique().tolist():
            rows = (head_of_row == head).nonzero()[:, 0]
            out[rows] = self.two_hot.decode(heads[head](za[rows]))
        return out

    def soft_update_targets(self, tau: float) -> None:
        with torch.no_grad():
            for p, tp in zip(self.Qs.parameters(), self.target_Qs.parameters()):
                tp.lerp_(p, tau)

    def acting_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights needed to act and plan (target Qs left out: they only serve training)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("target_Qs.")}


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)
