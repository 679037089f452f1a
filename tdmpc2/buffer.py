"""Replay of sub-trajectories for TD-MPC2 updates, stored in one preallocated TensorDict.

Row ``i`` holds an observation and the action, reward and termination that led to it
(NaN action on the first row of an episode). A sample of horizon H is H+1 consecutive
rows of one episode, as TD-MPC2's losses need.
"""

from __future__ import annotations

import numpy as np
import torch
from tensordict import TensorDict

__all__ = ["ReplayBuffer"]


class ReplayBuffer:
    """Fixed-capacity ring of transitions, sampled as sequences within episodes.

    Args:
        capacity: rows kept (the oldest are overwritten).
        obs_dim: observation size.
        action_dim: action size.
    """

    def __init__(self, capacity: int, obs_dim: int, action_dim: int) -> None:
        self.capacity = capacity
        self.data = TensorDict({
            "obs": torch.zeros(capacity, obs_dim),
            "action": torch.full((capacity, action_dim), float("nan")),
            "reward": torch.zeros(capacity, 1),
            "terminated": torch.zeros(capacity, 1),
            "episode": torch.full((capacity,), -1, dtype=torch.long),
        }, batch_size=[capacity])
        self.size = 0
        self.cursor = 0
        self.episodes = 0

    def _write(self, obs, action, reward: float, terminated: bool, episode: int) -> None:
        row = self.cursor
        self.data["obs"][row] = torch.as_tensor(obs, dtype=torch.float32)
        self.data["action"][row] = torch.as_tensor(action, dtype=torch.float32)
        self.data["reward"][row] = float(reward)
        self.data["terminated"][row] = float(terminated)
        self.data["episode"][row] = episode
        self.cursor = (self.cursor + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def start_episode(self, obs: np.ndarray) -> None:
        """Records the first observation of a new episode."""
        self.episodes += 1
        nan_action = torch.full((self.data["action"].shape[1],), float("nan"))
        self._write(obs, nan_action, 0.0, False, self.episodes)

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, terminated: bool) -> None:
        """Records one step of the current episode."""
        if self.episodes == 0:
            raise RuntimeError("call start_episode() before add()")
        self._write(obs, action, reward, terminated, self.episodes)

    def sample(self, batch_size: int, horizon: int, rng: np.random.Generator):
        """Sequences of ``horizon + 1`` rows from within episodes.

        Returns:
            obs [H+1, B, O], action [H, B, A], reward [H, B, 1], terminated [H, B, 1].
        """
        if self.size <= horizon:
            raise RuntimeError(f"buffer holds {self.size} rows, need more than {horizon}")
        episode = self.data["episode"]  # -1 on rows never written
        valid = []
        while sum(len(v) for v in valid) < batch_size:
            start = torch.as_tensor(rng.integers(0, self.size, size=2 * batch_size))
            rows = (start[:, None] + torch.arange(horizon + 1)) % self.capacity
            valid.append(rows[(episode[rows] == episode[start, None]).all(1)])
        rows = torch.cat(valid)[:batch_size].T  # [H+1, B]
        batch = self.data[rows]
        return batch["obs"], batch["action"][1:], batch["reward"][1:], batch["terminated"][1:]

    def state_dict(self) -> dict:
        return {"data": self.data[: self.size].to_dict(), "size": self.size,
                "cursor": self.cursor, "episodes": self.episodes}

    def load_state_dict(self, state: dict) -> None:
        size = int(state["size"])
        for key, value in state["data"].items():
            self.data[key][:size] = value
        self.size, self.cursor, self.episodes = size, int(state["cursor"]), int(state["episodes"])
