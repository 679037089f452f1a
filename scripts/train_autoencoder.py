"""Train the MLP autoencoder on scikit-learn's digits (or MNIST IDX files) and save it.

    python scripts/train_autoencoder.py --out checkpoints/digits-autoencoder.pt

Prints held-out PSNR; the checkpoint's card (same name, .json) records it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from tqdm import trange

from rlprune.models.digits_autoencoder import (
    AutoencoderConfig,
    MLPAutoencoder,
    digits_split,
    load_idx,
    psnr,
    save_autoencoder,
)
from rlprune.report import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mnist-train", help="MNIST IDX image file; default: sklearn digits")
    parser.add_argument("--mnist-test", help="MNIST IDX test image file")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    if args.mnist_train:
        train, test = load_idx(args.mnist_train), load_idx(args.mnist_test)
    else:
        train, test = digits_split(args.seed)
    model = MLPAutoencoder(AutoencoderConfig(input_dim=train.shape[1]))
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(args.seed)
    for _ in trange(args.epochs, desc="epochs", mininterval=5):
        for idx in torch.randperm(len(train), generator=generator).split(128):
            loss = torch.mean((model(train[idx]) - train[idx]) ** 2)
            optim.zero_grad()
            loss.backward()
            optim.step()
    model.eval()
    with torch.no_grad():
        score = psnr(model(test), test)
    meta = {"data": "mnist" if args.mnist_train else "sklearn-digits", "seed": args.seed,
            "epochs": args.epochs, "test_psnr": score}
    save_autoencoder(args.out, model, meta)
    write_json(Path(args.out).with_suffix(".json"), {
        **meta, "params": sum(p.numel() for p in model.parameters()),
        "reproduce": f"python scripts/train_autoencoder.py --out {args.out} "
                     f"--epochs {args.epochs} --seed {args.seed}"})
    print(f"held-out PSNR {score:.2f} dB -> {args.out}")


if __name__ == "__main__":
    main()
