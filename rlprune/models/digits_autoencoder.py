"""The paper's non-RL case, offline: an MLP autoencoder on digits, scored by PSNR.

arXiv 2507.14882 prunes an MNIST autoencoder. MNIST cannot be downloaded here, so the
default data set is scikit-learn's bundled 8x8 ``digits`` (1797 images); ``load_idx``
reads MNIST IDX files for users who have them.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rlprune.io import atomic_torch_save

__all__ = ["DIGITS_SPLITS", "AutoencoderConfig", "MLPAutoencoder", "digits_split", "digits_splits",
           "load_idx", "psnr",
           "load_autoencoder", "save_autoencoder", "FORMAT"]

FORMAT = "rlprune-autoencoder"


@dataclass(frozen=True)
class AutoencoderConfig:
    """Architecture; ``encoder``/``decoder`` list hidden widths (pruning rewrites them)."""

    input_dim: int = 64
    """Pixels per image (8x8 digits: 64; MNIST: 784)."""
    bottleneck: int = 16
    """Width of the code between encoder and decoder (an interface, kept by default)."""
    encoder: list[int] = field(default_factory=lambda: [128, 64])
    """Hidden widths of the encoder."""
    decoder: list[int] = field(default_factory=lambda: [64, 128])
    """Hidden widths of the decoder."""


def _mlp(widths: list[int], out_layer: list[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-2], widths[1:-1]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(widths[-2], widths[-1]), *out_layer)


class MLPAutoencoder(nn.Module):
    """encoder: x -> code; decoder: code -> reconstruction in [0, 1] (sigmoid)."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = _mlp([cfg.input_dim, *cfg.encoder, cfg.bottleneck], [])
        self.decoder = _mlp([cfg.bottleneck, *cfg.decoder, cfg.input_dim], [nn.Sigmoid()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def psnr(reconstruction: torch.Tensor, target: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1], averaged over the batch's MSE."""
    mse = torch.mean((reconstruction - target) ** 2).item()
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def digits_split(seed: int = 0, test_fraction: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits in [0, 1], split into (train, held-out test) by a seed."""
    from sklearn.datasets import load_digits

    images = load_digits().data.astype(np.float32) / 16.0
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = int(len(images) * test_fraction)
    return torch.from_numpy(images[order[n_test:]]), torch.from_numpy(images[order[:n_test]])


DIGITS_SPLITS = ("train", "search", "validation", "test")


def digits_splits() -> dict[str, torch.Tensor]:
    """Fixed, disjoint splits: ``train`` (what the shipped autoencoder learned from,
    ``digits_split(0)``'s training part) and the rest cut in three: ``search`` (candidates
    are scored on it), ``validation`` (fine-tuning's keep-or-drop) and ``test`` (the
    held-out check and tables). No image is in two splits."""
    train, rest = digits_split(0)
    third = len(rest) // 3
    return {"train": train, "search": rest[:third], "validation": rest[third:2 * third],
            "test": rest[2 * third:]}


def load_idx(path: str | os.PathLike) -> torch.Tensor:
    """MNIST-style IDX image file (optionally .gz) -> float images in [0, 1], flattened.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an IDX file of unsigned bytes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no IDX file at {path}")
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims}, file holds {data.size} values")
    return torch.from_numpy(data.reshape(dims[0], -1).astype(np.float32) / 255.0)


def save_autoencoder(path: str | os.PathLike, model: MLPAutoencoder, meta: dict | None = None):
    atomic_torch_save({"format": FORMAT, "format_version": 1, "config": asdict(model.cfg),
                 "state_dict": model.state_dict(), "meta": dict(meta or {})}, path)


def load_autoencoder(data: dict) -> tuple[MLPAutoencoder, dict]:
    """Builds the model from a loaded (weights-only) checkpoint dict."""
    model = MLPAutoencoder(AutoencoderConfig(**data["config"]))
    model.load_state_dict(data["state_dict"])
    return model.eval(), data.get("meta", {})
