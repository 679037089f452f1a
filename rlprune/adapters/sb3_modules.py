"""Views of an SB3 policy's own submodules as rlprune components: each takes one flat float
tensor (what torch-pruning traces and the activation statistics record), and pruning a view
prunes the policy in place."""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import preprocess_obs
from torch import nn

__all__ = ["Chain", "Critic", "LSTMStep", "ObservationInput", "RecurrentPolicy",
           "flat_width", "hidden_widths", "unflatten"]


def flat_width(space) -> int:
    """Width of a flattened raw observation or action of ``space`` (1 for Discrete; a
    dict of arrays: its keys' widths summed)."""
    if isinstance(space, spaces.Dict):
        return sum(flat_width(s) for s in space.spaces.values())
    return int(np.prod(space.shape)) if space.shape else 1


def unflatten(flat, space: spaces.Dict) -> dict:
    """Rows of flattened dict observations (keys joined in the space's order) as a dict of
    per-key batches; works on arrays and tensors alike."""
    out, start = {}, 0
    for key, sub in space.spaces.items():
        width = flat_width(sub)
        out[key] = flat[:, start:start + width].reshape(flat.shape[0], *sub.shape)
        start += width
    return out


class ObservationInput(nn.Module):
    """Flat raw observations -> what the policy's features extractor takes: reshaped to the
    observation space (split into its keys for a dict space) and preprocessed as SB3 does
    (float cast, images scaled to [0, 1], discrete observations one-hot)."""

    def __init__(self, policy) -> None:
        super().__init__()
        self.space = policy.observation_space
        self.normalize_images = policy.normalize_images

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if isinstance(self.space, spaces.Dict):
            obs = unflatten(obs, self.space)
        else:
            obs = obs.reshape(obs.shape[0], *(self.space.shape or ()))
        return preprocess_obs(obs, self.space, normalize_images=self.normalize_images)


class LSTMStep(nn.Module):
    """One step of a recurrent policy's LSTM from a zero state, on a batch of features."""

    def __init__(self, lstm: nn.LSTM) -> None:
        super().__init__()
        self.lstm = lstm

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.lstm(features.unsqueeze(0))[0].squeeze(0)


class Chain(nn.Module):
    """features extractor [-> memory] -> MLP body -> output heads, concatenated (none: the
    body's output); ``side`` networks read the body's input too and are concatenated after.

    ``fixed``: layers of the view that another view prunes (or none may), kept whole here.
    """

    def __init__(self, extractor: nn.Module, body: nn.Module, heads: list[nn.Module],
                 side: list[nn.Module] = (), memory: nn.Module | None = None,
                 fixed: tuple[nn.Module, ...] = ()) -> None:
        super().__init__()
        self.extractor, self.body, self.memory = extractor, body, memory or nn.Identity()
        self.heads, self.side = nn.ModuleList(heads), nn.ModuleList(side)
        self.fixed = fixed

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.memory(self.extractor(obs))
        latent = self.body(features)
        outputs = [head(latent) for head in self.heads] if len(self.heads) else [latent]
        return torch.cat([*outputs, *(net(features) for net in self.side)], dim=-1)


class RecurrentPolicy(nn.Module):
    """(observation, h, c) -> (action, h', c'): one acting step of a recurrent policy with
    its state passed in and out (zeros start an episode), for export."""

    def __init__(self, observe: nn.Module, extractor: nn.Module, lstm: nn.LSTM,
                 body: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.observe, self.extractor, self.lstm = observe, extractor, lstm
        self.body, self.head = body, head

    def forward(self, obs: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        features = self.extractor(self.observe(obs))
        out, (h, c) = self.lstm(features.unsqueeze(0), (h, c))
        return self.head(self.body(out.squeeze(0))), h, c


class Critic(nn.Module):
    """[flat observation, action] -> one Q network over [features, action]."""

    def __init__(self, extractor: nn.Module, q_net: nn.Module, obs_width: int) -> None:
        super().__init__()
        self.extractor, self.q_net, self.obs_width = extractor, q_net, obs_width

    def forward(self, obs_action: torch.Tensor) -> torch.Tensor:
        obs, action = obs_action[:, : self.obs_width], obs_action[:, self.obs_width:]
        return self.q_net(torch.cat([self.extractor(obs), action], dim=-1))


def hidden_widths(view: Chain | Critic) -> list[int]:
    """Hidden widths of a view's MLP as ``net_arch`` lists them (the extractor's own layers
    and the output layer are not in ``net_arch``)."""
    if isinstance(view, Critic):
        return [m.out_features for m in view.q_net.modules() if isinstance(m, nn.Linear)][:-1]
    return [m.out_features for m in view.body.modules() if isinstance(m, nn.Linear)]
