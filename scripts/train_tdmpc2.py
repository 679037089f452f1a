"""Train a TD-MPC2 agent on CPU (or wherever torch runs), resumably.

    python scripts/train_tdmpc2.py --task dmc/cartpole-swingup --steps 100000 \
        --run-dir runs/cartpole-swingup

Running the same command again continues from ``RUN_DIR/resume.pt``. The acting agent
is written to ``RUN_DIR/agent.pt`` at every evaluation; logs go to train.csv/eval.csv.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from tdmpc2.config import TrainConfig
from tdmpc2.trainer import Trainer


def parse_args() -> tuple[TrainConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(TrainConfig):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default),
                            default=f.default)
    parser.add_argument("--run-dir", required=True, help="output folder (resumes if present)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    return cfg, args


def main() -> None:
    cfg, args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = Trainer(cfg, args.run_dir).run()
    print(f"final eval mean return: {result:.1f}")


if __name__ == "__main__":
    main()
