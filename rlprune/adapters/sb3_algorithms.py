"""What rlprune needs to know about each Stable-Baselines3 and sb3-contrib algorithm, in one
table: which network acts (and is pruned by default), which networks are optional (critics,
targets: pruned only on request), how ``predict(deterministic=True)`` turns the acting
network's output into an env action, and how the pruned widths go back into ``net_arch``.

Algorithms share a *family* when their policies are built alike: SAC, TQC and CrossQ act
through a squashed Gaussian actor; PPO, A2C, TRPO and MaskablePPO through SB3's
``ActorCriticPolicy``; DQN and QR-DQN through a Q-network. A new algorithm is one row.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from gymnasium import spaces
from torch import nn

from rlprune.adapters.sb3_modules import (
    Chain,
    Critic,
    LSTMStep,
    ObservationInput,
    flat_width,
)

__all__ = ["ALGORITHMS", "ActingParts", "Algorithm", "ActionHead", "algorithm_for"]


@dataclass(frozen=True)
class ActingParts:
    """The acting network as ``extractor -> body -> heads``.

    ``heads`` empty: the body's last Linear is the output. ``pinned``: hidden layers whose
    output width must not change although they are not outputs (gSDE's noise matrix is
    sized by the actor's last hidden layer). ``side``: networks that also read the
    extractor's features without acting (the value branch of a shared extractor): they
    follow a pruned extractor and keep their own widths (their parameters count with the
    acting network's).
    """

    extractor: nn.Module
    body: nn.Module
    heads: tuple[nn.Module, ...]
    pinned: tuple[nn.Module, ...] = ()
    side: tuple[nn.Module, ...] = ()
    memory: nn.Module | None = None
    """A recurrent policy's LSTM step, between the extractor and the body."""


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def _observed(policy, extractor: nn.Module) -> nn.Module:
    """The policy's features extractor behind the flat-observation input."""
    return nn.Sequential(ObservationInput(policy), extractor)


def _gsde_pinned(policy, body: nn.Module) -> tuple[nn.Module, ...]:
    """gSDE draws noise through a matrix sized by the last hidden layer: it keeps its width."""
    return (_linears(body)[-1],) if getattr(policy, "use_sde", False) and _linears(body) else ()


class Family:
    """How one kind of SB3 policy acts and is rebuilt. Subclasses fill in the policy's parts."""

    acting = "actor"
    """Name of the acting component (pruned by default)."""
    targets: tuple[tuple[str, str], ...] = ()
    """(online, target) policy attributes: targets take their online twin's pruned shape."""
    recurrent = False

    def parts(self, policy) -> ActingParts:
        raise NotImplementedError

    def optional(self, policy) -> dict[str, nn.Module]:
        """Networks that never act (critics): name -> module."""
        return {}

    def extractor_prunable(self, policy) -> bool:
        """Whether the acting network's features extractor may be pruned: only where SB3
        builds every extractor of the policy alike (a Q-network and its target, one
        extractor shared by actor and critic), since one class and its arguments in
        ``policy_kwargs`` describe them all."""
        return False

    def extractor(self, policy) -> nn.Module:
        """The SB3 features extractor of the acting network."""
        raise NotImplementedError

    def recorded(self, policy) -> dict:
        """``policy_kwargs`` besides ``net_arch`` that describe the pruned widths (the
        policy's own bookkeeping of them updated too)."""
        return {}

    def action_kind(self, policy) -> str:
        """How the acting output becomes an action: see ``ActionHead``."""
        raise NotImplementedError

    def net_arch(self, acting: list[int], optional: list[list[int]]):
        """``policy_kwargs["net_arch"]`` for the given hidden widths."""
        raise NotImplementedError

    def optimized(self, policy) -> list[tuple[nn.Module, Iterable[nn.Parameter]]]:
        """(owner of an ``optimizer`` attribute, the parameters it steps)."""
        return [(policy, policy.parameters())]


class SquashedGaussianActor(Family):
    """SAC, TQC, CrossQ: ``latent_pi`` then a mean head squashed by tanh; Q heads
    ``qf0, qf1...`` (TQC's output quantiles)."""

    targets = (("critic", "critic_target"),)

    def parts(self, policy) -> ActingParts:
        actor = policy.actor
        heads = (actor.mu,) if isinstance(actor.log_std, nn.Parameter) else (actor.mu,
                                                                              actor.log_std)
        return ActingParts(_observed(policy, actor.features_extractor), actor.latent_pi, heads,
                           _gsde_pinned(actor, actor.latent_pi))

    def optional(self, policy) -> dict[str, nn.Module]:
        critic = policy.critic
        extractor = _observed(policy, critic.features_extractor)
        width = flat_width(policy.observation_space)
        return {f"qf{i}": Critic(extractor, q, width) for i, q in enumerate(critic.q_networks)}

    def action_kind(self, policy) -> str:
        return "tanh"

    def net_arch(self, acting, optional):
        return {"pi": acting, "qf": optional[0]}

    def optimized(self, policy):
        return [(policy.actor, policy.actor.parameters()),
                (policy.critic, policy.critic.parameters())]


class DeterministicActor(SquashedGaussianActor):
    """TD3, DDPG: ``mu`` is one MLP ending in tanh."""

    targets = (("actor", "actor_target"), ("critic", "critic_target"))

    def parts(self, policy) -> ActingParts:
        return ActingParts(_observed(policy, policy.actor.features_extractor),
                            policy.actor.mu, ())

    def action_kind(self, policy) -> str:
        return "scale"

    def net_arch(self, acting, optional):
        return {"pi": acting[:-1], "qf": optional[0]}


class ActorCritic(Family):
    """PPO, A2C, TRPO, MaskablePPO: ``mlp_extractor.policy_net`` then ``action_net``; the
    value branch is the optional ``critic``."""

    def parts(self, policy) -> ActingParts:
        body = policy.mlp_extractor.policy_net
        side = (nn.Sequential(policy.mlp_extractor.value_net, policy.value_net),) \
            if self.extractor_prunable(policy) else ()
        return ActingParts(_observed(policy, policy.pi_features_extractor), body,
                           (policy.action_net,), _gsde_pinned(policy, body), side)

    def optional(self, policy) -> dict[str, nn.Module]:
        return {"critic": Chain(_observed(policy, policy.vf_features_extractor),
                                policy.mlp_extractor.value_net,
                                [policy.value_net])}

    def extractor_prunable(self, policy) -> bool:
        """A shared extractor with weights (a flatten has nothing to prune, and the value
        branch would only weigh on the acting network's count)."""
        return bool(policy.share_features_extractor) and any(
            True for _ in policy.pi_features_extractor.parameters())

    def extractor(self, policy) -> nn.Module:
        return policy.pi_features_extractor

    def action_kind(self, policy) -> str:
        if isinstance(policy.action_space, spaces.Box):
            return "tanh" if policy.squash_output else "clip"
        return "logits"

    def net_arch(self, acting, optional):
        return {"pi": acting, "vf": optional[0]}


class RecurrentActorCritic(ActorCritic):
    """RecurrentPPO: an LSTM between the features extractor and the MLPs, its state carried
    through evaluation. Its hidden units prune with the actor (their removal is exact for
    one step per call, as ``predict`` runs it); a shared LSTM carries the value branch along.
    SB3 builds the critic's LSTM (or its Linear stand-in) at the same hidden size: a saved
    agent's critic is cut to the actor's (``SB3Adapter.save``)."""

    recurrent = True

    def parts(self, policy) -> ActingParts:
        body = policy.mlp_extractor.policy_net
        side = (nn.Sequential(policy.mlp_extractor.value_net, policy.value_net),) \
            if policy.shared_lstm else ()
        return ActingParts(_observed(policy, policy.pi_features_extractor), body,
                           (policy.action_net,), _gsde_pinned(policy, body), side,
                           LSTMStep(policy.lstm_actor))

    def optional(self, policy) -> dict[str, nn.Module]:
        if policy.shared_lstm:  # the actor's LSTM: pruned through the actor only
            memory, fixed = LSTMStep(policy.lstm_actor), (policy.lstm_actor,)
        else:
            memory = LSTMStep(policy.lstm_critic) if policy.lstm_critic is not None \
                else policy.critic
            fixed = ()
        return {"critic": Chain(_observed(policy, policy.vf_features_extractor),
                                policy.mlp_extractor.value_net, [policy.value_net],
                                memory=memory, fixed=fixed)}

    def extractor_prunable(self, policy) -> bool:
        return False

    def recorded(self, policy) -> dict:
        hidden = policy.lstm_actor.hidden_size
        policy.lstm_hidden_state_shape = (policy.lstm_actor.num_layers, 1, hidden)
        policy.lstm_output_dim = hidden
        return {"lstm_hidden_size": hidden}


class QNetwork(Family):
    """DQN: one MLP from observation to a Q value per action; acts greedily."""

    acting = "q_net"
    targets = (("q_net", "q_net_target"),)

    def parts(self, policy) -> ActingParts:
        return ActingParts(_observed(policy, policy.q_net.features_extractor),
                            policy.q_net.q_net, ())

    def action_kind(self, policy) -> str:
        return "logits"

    def net_arch(self, acting, optional):
        return acting[:-1]

    def optimized(self, policy):
        return [(policy, policy.q_net.parameters())]

    def extractor_prunable(self, policy) -> bool:
        return True

    def extractor(self, policy) -> nn.Module:
        return policy.q_net.features_extractor


class QuantileNetwork(QNetwork):
    """QR-DQN: like DQN with ``n_quantiles`` outputs per action; acts on their mean."""

    acting = "quantile_net"
    targets = (("quantile_net", "quantile_net_target"),)

    def parts(self, policy) -> ActingParts:
        return ActingParts(_observed(policy, policy.quantile_net.features_extractor),
                           policy.quantile_net.quantile_net, ())

    def action_kind(self, policy) -> str:
        return "quantiles"

    def optimized(self, policy):
        return [(policy, policy.quantile_net.parameters())]

    def extractor(self, policy) -> nn.Module:
        return policy.quantile_net.features_extractor


class LinearSearchPolicy(Family):
    """ARS: one ``action_net`` MLP (none hidden: the linear policy), trained without
    gradients, so no optimiser."""

    def parts(self, policy) -> ActingParts:
        return ActingParts(_observed(policy, policy.features_extractor), policy.action_net, ())

    def action_kind(self, policy) -> str:
        if isinstance(policy.action_space, spaces.Box):
            return "scale" if policy.squash_output else "clip"
        return "logits"

    def net_arch(self, acting, optional):
        return acting[:-1]

    def optimized(self, policy):
        return []


@dataclass(frozen=True)
class Algorithm:
    """One row of the table.

    Args:
        name: SB3's class name (``"SAC"``).
        package: where the class lives.
        policy_module: the dotted part of its policy class's module that identifies it.
        family: how its policy acts and is rebuilt.
        marker: a ``data`` key only this algorithm's zips hold, for algorithms that share
            a policy module (PPO/A2C/TRPO, TD3/DDPG are told apart in ``algorithm_for``).
    """

    name: str
    package: str
    policy_module: str
    family: Family
    marker: str | None = None

    def load_class(self):
        return getattr(importlib.import_module(self.package), self.name)


_SB3, _CONTRIB = "stable_baselines3", "sb3_contrib"
ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("SAC", _SB3, ".sac.", SquashedGaussianActor()),
    Algorithm("TD3", _SB3, ".td3.", DeterministicActor()),
    Algorithm("DDPG", _SB3, ".td3.", DeterministicActor()),
    Algorithm("PPO", _SB3, "common.policies", ActorCritic(), marker="clip_range"),
    Algorithm("TRPO", _CONTRIB, "common.policies", ActorCritic(), marker="cg_max_steps"),
    Algorithm("A2C", _SB3, "common.policies", ActorCritic()),
    Algorithm("DQN", _SB3, ".dqn.", QNetwork()),
    Algorithm("TQC", _CONTRIB, ".tqc.", SquashedGaussianActor()),
    Algorithm("CrossQ", _CONTRIB, ".crossq.", SquashedGaussianActor()),
    Algorithm("QRDQN", _CONTRIB, ".qrdqn.", QuantileNetwork()),
    Algorithm("ARS", _CONTRIB, ".ars.", LinearSearchPolicy()),
    Algorithm("MaskablePPO", _CONTRIB, ".maskable.", ActorCritic()),
    Algorithm("RecurrentPPO", _CONTRIB, ".recurrent.", RecurrentActorCritic()),
)}


def algorithm_for(policy_module: str, data: dict) -> Algorithm | None:
    """The algorithm whose zip has this policy module and ``data`` (None: unknown).

    PPO, TRPO and A2C share SB3's ActorCriticPolicy: PPO stores a clip range, TRPO its
    conjugate-gradient steps, A2C neither. DDPG is TD3 with a policy delay of 1 and no
    target noise clipping.
    """
    rows = [a for a in ALGORITHMS.values() if a.policy_module in policy_module]
    for row in rows:
        if row.marker is not None and row.marker in data:
            return row
    rows = [a for a in rows if a.marker is None]
    if {a.name for a in rows} == {"TD3", "DDPG"}:
        ddpg = data.get("policy_delay") == 1 and data.get("target_noise_clip") == 0.0
        return ALGORITHMS["DDPG" if ddpg else "TD3"]
    return rows[0] if len(rows) == 1 else None


class ActionHead(nn.Module):
    """The acting network's output -> the env action ``predict(deterministic=True)`` gives.

    Kinds: ``tanh`` (squash, then map [-1, 1] to the action box), ``scale`` (already in
    [-1, 1]), ``clip`` (a Gaussian mean clipped to the box), ``logits`` (argmax per
    discrete dimension; MultiBinary: logit > 0), ``quantiles`` (argmax of the mean of each
    action's quantiles).
    """

    def __init__(self, kind: str, space: spaces.Space) -> None:
        super().__init__()
        self.kind = kind
        if isinstance(space, spaces.Box):
            self.register_buffer("low", torch.as_tensor(space.low, dtype=torch.float32))
            self.register_buffer("high", torch.as_tensor(space.high, dtype=torch.float32))
        self.splits = [int(n) for n in space.nvec] if isinstance(space, spaces.MultiDiscrete) \
            else None
        self.binary = isinstance(space, spaces.MultiBinary)
        self.actions = int(space.n) if isinstance(space, spaces.Discrete) else None

    def forward(self, out: torch.Tensor) -> torch.Tensor:
        if self.kind in ("tanh", "scale"):
            out = torch.tanh(out) if self.kind == "tanh" else out
            return self.low + 0.5 * (out + 1.0) * (self.high - self.low)
        if self.kind == "clip":
            return torch.maximum(torch.minimum(out, self.high), self.low)
        if self.kind == "quantiles":
            return out.reshape(out.shape[0], -1, self.actions).mean(1).argmax(-1)
        if self.binary:
            return (out > 0).to(torch.int64)
        if self.splits:
            return torch.stack([part.argmax(-1) for part in out.split(self.splits, -1)], -1)
        return out.argmax(-1)
