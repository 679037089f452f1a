"""Adapter for the MLP autoencoder: encoder and decoder components, the code as interface."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rlprune.adapters.base import Calls, Component, Interface, Metric
from rlprune.adapters.registry import AgentKind, FileProbe, register_agent_kind
from rlprune.io import load_weights_only
from rlprune.models.digits_autoencoder import (
    DIGITS_SPLITS,
    FORMAT,
    MLPAutoencoder,
    digits_splits,
    load_autoencoder,
    psnr,
    save_autoencoder,
)

__all__ = ["AutoencoderAdapter"]


def _widths(net: nn.Sequential) -> list[int]:
    """Output widths of the Linear layers, in order (hidden ones, then the output)."""
    return [m.out_features for m in net if isinstance(m, nn.Linear)]


class AutoencoderAdapter:
    """An autoencoder seen as two components; its metric is PSNR, not episode return."""

    kind = "autoencoder"
    metric = Metric("psnr", "PSNR (dB)")
    file_suffix = ".pt"
    default_components = None
    observation_space = None
    action_space = None

    def __init__(self, model: MLPAutoencoder, meta: dict | None = None) -> None:
        self.model = model.eval()
        self.meta = dict(meta or {})

    @property
    def code_width(self) -> int:
        """Current bottleneck width (it shrinks when the code interface is pruned)."""
        return _widths(self.model.encoder)[-1]

    @property
    def interfaces(self) -> tuple[Interface, ...]:
        size = self.model.cfg.input_dim
        return (Interface("input", size, (), ("encoder",)),
                Interface("code", self.code_width, ("encoder",), ("decoder",), prunable=True),
                Interface("reconstruction", size, ("decoder",), ()))

    def components(self) -> dict[str, Component]:
        out = {}
        for name, net, width in (("encoder", self.model.encoder, self.model.cfg.input_dim),
                                 ("decoder", self.model.decoder, self.code_width)):
            last = [m for m in net if isinstance(m, nn.Linear)][-1]
            out[name] = Component(name, net, torch.zeros(1, width), (last,))
        return out

    def act(self, obs, first_step=None):
        raise TypeError("an autoencoder does not act; score it with reconstruct()/psnr")

    def reset(self, seed: int) -> None:
        """No randomness at evaluation."""

    def latent(self, obs) -> torch.Tensor:
        with torch.no_grad():
            return self.model.encoder(torch.as_tensor(obs, dtype=torch.float32))

    @torch.no_grad()
    def component_inputs(self, obs, actions=None) -> dict[str, torch.Tensor]:
        x = torch.as_tensor(obs, dtype=torch.float32)
        return {"encoder": x, "decoder": self.model.encoder(x)}

    @torch.no_grad()
    def psnr(self, images: torch.Tensor) -> float:
        """Reconstruction PSNR (dB) on a batch of images in [0, 1]."""
        return psnr(self.model(images), images)

    def evaluation_images(self, split: str) -> torch.Tensor:
        """Images of one of the fixed, disjoint digits splits (``digits_splits``)."""
        if split not in DIGITS_SPLITS[1:]:
            raise ValueError(f"no digits split {split!r}; choose {list(DIGITS_SPLITS[1:])}")
        return digits_splits()[split]

    def export_graphs(self) -> dict[str, tuple[nn.Module, torch.Tensor]]:
        size = self.model.cfg.input_dim
        return {"autoencoder": (self.model, torch.zeros(1, size)),
                "encoder": (self.model.encoder, torch.zeros(1, size)),
                "decoder": (self.model.decoder, torch.zeros(1, self.code_width))}

    def step_calls(self) -> dict[str, tuple[Calls, ...]]:
        """One image: encoded once, decoded once."""
        return {"encoder": (Calls(1, 1),), "decoder": (Calls(1, 1),)}

    def acting_networks(self) -> dict[str, nn.Module]:
        """None: an autoencoder does not act."""
        return {}

    def record_widths(self) -> None:
        self.model.cfg = replace(self.model.cfg, encoder=_widths(self.model.encoder)[:-1],
                                 decoder=_widths(self.model.decoder)[:-1],
                                 bottleneck=self.code_width)

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> None:
        save_autoencoder(path, self.model, {**self.meta, **(meta or {})})

    def clone(self) -> AutoencoderAdapter:
        return AutoencoderAdapter(copy.deepcopy(self.model), self.meta)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "config": self.model.cfg.__dict__, "meta": self.meta}


def _is_autoencoder(probe: FileProbe) -> bool:
    data = probe.torch_data
    return isinstance(data, dict) and data.get("format") == FORMAT


register_agent_kind(AgentKind(
    "autoencoder", "rlprune's MLP autoencoder checkpoint (.pt), scored by PSNR",
    _is_autoencoder, lambda path, _: AutoencoderAdapter(*load_autoencoder(
        load_weights_only(path)))))
