"""The README's main job: evaluate the shipped TD-MPC2 agent on seeded episodes.

    make demo            # or: .venv/bin/python scripts/demo.py --episodes 10

Prints the agent card and the measured returns. (The pruning step joins this job as the
rlprune core lands.)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tdmpc2 import load_agent
from tdmpc2.evaluation import evaluate_returns

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agent", default=str(ROOT / "checkpoints" / "cartpole-swingup.pt"))
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    agent = load_agent(args.agent)
    card_path = Path(args.agent).with_suffix(".json")
    if card_path.exists():
        print(json.dumps(json.loads(card_path.read_text()), indent=2))
    meta = agent.meta
    start = time.perf_counter()
    returns = evaluate_returns(agent, meta["task"], args.episodes, seed=args.seed,
                               action_repeat=meta["action_repeat"])
    elapsed = time.perf_counter() - start
    print(f"{meta['task']}: {args.episodes} episodes (seed {args.seed}) "
          f"mean return {returns.mean():.1f} +- {returns.std():.1f}  "
          f"[{', '.join(f'{r:.1f}' for r in returns)}]  in {elapsed:.0f}s")
    if not np.all(np.isfinite(returns)):
        raise SystemExit("non-finite returns")


if __name__ == "__main__":
    main()
