"""Online TD-MPC2 training that survives interruption.

Resume state (weights, target nets, optimisers, replay, RNG states, counters) is written
atomically at episode boundaries, so a killed run restarts from its last checkpoint with
nothing but the unfinished episode lost.
"""

from __future__ import annotations

import csv
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import envs
from tdmpc2.agent import TDMPC2Agent, heuristic_discount
from tdmpc2.buffer import ReplayBuffer
from tdmpc2.checkpoint import atomic_save, read_checkpoint, save_agent
from tdmpc2.config import ModelConfig, PlannerConfig, TrainConfig, model_config_for
from tdmpc2.evaluation import evaluate_returns
from tdmpc2.planner import MPPIPlanner

__all__ = ["Trainer"]

RESUME_FILE = "resume.pt"
# Options a resumed run may change: extend training, evaluate or save more or less often.
_RESUMABLE_CHANGES = {"steps", "eval_every", "eval_episodes", "save_every"}
AGENT_FILE = "agent.pt"


class Trainer:
    """Trains one agent on one task into ``run_dir`` (agent.pt, resume.pt, CSV logs).

    Args:
        cfg: training configuration.
        run_dir: output folder; if it holds ``resume.pt``, training continues from it.
        planner_cfg: planner used to act (TD-MPC2 defaults if None).
    """

    def __init__(self, cfg: TrainConfig, run_dir: str | Path,
                 planner_cfg: PlannerConfig | None = None) -> None:
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.env = envs.make_env(cfg.task, action_repeat=cfg.action_repeat)
        obs_dim = int(np.prod(self.env.observation_space.shape))
        action_dim = int(np.prod(self.env.action_space.shape))
        self.episode_length = envs.episode_length(self.env)
        model_cfg = model_config_for(cfg.size, obs_dim, action_dim)
        if cfg.widths_of:
            model_cfg = dataclasses.replace(model_cfg, hidden_widths=_widths_of(
                cfg.widths_of, model_cfg))
        self.agent = TDMPC2Agent(model_cfg, planner_cfg, heuristic_discount(
            self.episode_length, cfg), train_cfg=cfg, seed=cfg.seed)
        collect = self.agent.planner_cfg.reduced(cfg.collect_iterations, cfg.collect_samples)
        self.collect_planner = MPPIPlanner(self.agent.model, collect, self.agent.discount,
                                           seed=cfg.seed + 2)
        self.buffer = ReplayBuffer(min(cfg.buffer_size, cfg.steps // cfg.action_repeat + 1000),
                                   obs_dim, action_dim)
        self.rng = np.random.default_rng(cfg.seed)
        self.step = 0  # agent steps taken
        self.episode = 0
        self.seed_steps = cfg.seed_steps or max(1000, 5 * (self.episode_length or 200))
        if (self.run_dir / RESUME_FILE).exists():
            self._load_resume()

    @property
    def env_steps(self) -> int:
        return self.step * self.cfg.action_repeat

    def _save_resume(self) -> None:
        a = self.agent
        atomic_save({
            "train_config": dataclasses.asdict(self.cfg),
            "model": a.model.state_dict(),
            "optim": a.optim.state_dict(),
            "pi_optim": a.pi_optim.state_dict(),
            "q_scale": a.scale.value,
            "buffer": self.buffer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "agent_generator": a.generator.get_state(),
            "planner_generator": self.collect_planner.generator.get_state(),
            "step": self.step,
            "episode": self.episode,
        }, self.run_dir / RESUME_FILE)

    def _load_resume(self) -> None:
        state = torch.load(self.run_dir / RESUME_FILE, weights_only=True)
        saved, now = dict(state["train_config"]), dataclasses.asdict(self.cfg)
        changed = {k for k in now if k not in _RESUMABLE_CHANGES and saved.get(k) != now[k]}
        if changed:
            raise ValueError(f"{self.run_dir} was started with other values of "
                             f"{sorted(changed)}; use a new run dir or the saved values "
                             f"{ {k: saved.get(k) for k in sorted(changed)} }")
        a = self.agent
        a.model.load_state_dict(state["model"])
        a.optim.load_state_dict(state["optim"])
        a.pi_optim.load_state_dict(state["pi_optim"])
        a.scale.value = state["q_scale"]
        self.buffer.load_state_dict(state["buffer"])
        self.rng.bit_generator.state = state["rng"]
        a.generator.set_state(state["agent_generator"])
        self.collect_planner.generator.set_state(state["planner_generator"])
        self.step, self.episode = int(state["step"]), int(state["episode"])

    def _append_csv(self, name: str, row: dict) -> None:
        path = self.run_dir / name
        new = not path.exists()
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def evaluate(self) -> float:
        """Mean return over seeded eval episodes (collection planner, for speed); saves agent.pt.

        Evaluate the saved agent with its full planner for reported numbers.
        """
        returns = evaluate_returns(self.agent, self.cfg.task, self.cfg.eval_episodes,
                                   seed=10_000, action_repeat=self.cfg.action_repeat,
                                   planner=self.collect_planner)
        self._append_csv("eval.csv", {"env_steps": self.env_steps,
                                      "mean_return": float(returns.mean()),
                                      "std_return": float(returns.std()),
                                      "time": time.time()})
        save_agent(self.run_dir / AGENT_FILE, self.agent, meta={
            "task": self.cfg.task, "action_repeat": self.cfg.action_repeat,
            "env_steps": self.env_steps, "seed": self.cfg.seed, "size": self.cfg.size,
            "eval_mean_return": float(returns.mean()),
        })
        return float(returns.mean())

    def _run_episode(self, bar: tqdm, total: int) -> None:
        cfg, agent = self.cfg, self.agent
        obs, _ = self.env.reset(seed=cfg.seed * 100_003 + self.episode)
        self.buffer.start_episode(obs)
        first, done, ep_return = True, False, 0.0
        while not done and self.step < total:
            if self.step < self.seed_steps:
                action = self.rng.uniform(-1, 1, size=self.env.action_space.shape)
            else:
                action = agent.act(obs[None], np.array([first]), eval_mode=False,
                                   planner=self.collect_planner)[0]
            obs, reward, terminated, truncated, _ = self.env.step(action)
            self.buffer.add(obs, action, reward, terminated)
            ep_return += reward
            done, first = terminated or truncated, False
            self.step += 1
            bar.update(cfg.action_repeat)
            if self.step >= self.seed_steps:
                updates = self.seed_steps if self.step == self.seed_steps else 1
                for _ in range(updates):
                    info = agent.update(*self.buffer.sample(cfg.batch_size,
                                                            agent.planner_cfg.horizon, self.rng))
                bar.set_postfix(ret=f"{ep_return:.0f}", cons=f"{info.consistency:.3f}",
                                refresh=False)
        self.episode += 1
        row = {"env_steps": self.env_steps, "episode": self.episode, "return": ep_return}
        if self.step > self.seed_steps:
            row.update(dataclasses.asdict(info))
        self._append_csv("train.csv", row)

    def run(self) -> float:
        """Trains to ``cfg.steps`` env steps; returns the last evaluation's mean return."""
        cfg = self.cfg
        total = cfg.steps // cfg.action_repeat
        last_eval = self.env_steps // cfg.eval_every
        last_save = self.env_steps // cfg.save_every
        result = float("nan")
        with tqdm(total=cfg.steps, initial=self.env_steps, unit="step", desc=cfg.task,
                  mininterval=10) as bar:
            while self.step < total:
                self._run_episode(bar, total)
                if self.env_steps // cfg.eval_every > last_eval or self.step >= total:
                    last_eval = self.env_steps // cfg.eval_every
                    result = self.evaluate()
                    bar.write(f"{self.env_steps} env steps: eval return {result:.1f}")
                if self.env_steps // cfg.save_every > last_save or self.step >= total:
                    last_save = self.env_steps // cfg.save_every
                    self._save_resume()
        return result


def _widths_of(path: str, model_cfg: ModelConfig) -> dict[str, list[int]]:
    """The hidden widths of the agent at ``path``, refused unless it is the same
    architecture as ``model_cfg`` apart from them (same task dimensions and size preset)."""
    other = read_checkpoint(path)["model_config"]
    mismatched = [key for key in ("obs_dim", "action_dim", "latent_dim", "mlp_dim", "enc_dim",
                                  "num_enc_layers", "num_q")
                  if other[key] != getattr(model_cfg, key)]
    if mismatched:
        raise ValueError(f"{path} is not this task's size-preset model: "
                         + ", ".join(f"{key} {other[key]} vs {getattr(model_cfg, key)}"
                                     for key in mismatched))
    return {name: list(widths) for name, widths in other["hidden_widths"].items()}
