"""Component inputs on the states a dense agent visits, shared by criteria and searches."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from rlprune.adapters.base import AgentAdapter
from rlprune.io import atomic_torch_save, load_weights_only
from rlprune.search.objective import Objective, Score

__all__ = ["VisitedInputs"]


class VisitedInputs:
    """An agent's visited states and its component inputs on them, measured once.

    Data-aware criteria, the gradient surrogate and distillation read them; one instance
    may serve many searches of the same agent (a sweep). With a folder they are kept on
    disk (weights-only), so a resumed run neither re-runs nor re-counts the episodes.
    """

    FILE = "visited_inputs.pt"

    def __init__(self, objective: Objective, agent: AgentAdapter,
                 folder: str | Path | None = None, file: str = FILE) -> None:
        self.objective, self.agent = objective, agent
        self.path = Path(folder) / file if folder is not None else None
        self._states: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self.env_steps = 0
        self.score: Score | None = None
        """The agent's score on the same episodes, where the objective offers one
        (``scored_states``); known after ``states()``."""

    def states(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(observations, actions or None) the agent visited."""
        if self._states is None:
            if self.path is not None and self.path.exists():
                saved = load_weights_only(self.path)
                self._states = (saved["observations"], saved.get("actions"))
                self.env_steps = int(saved["env_steps"])
                self.score = Score(**saved["score"]) if "score" in saved else None
            else:
                obs, actions = self._measure()
                self._states = (torch.as_tensor(obs),
                                None if actions is None else torch.as_tensor(actions))
                if self.path is not None:
                    saved = {"observations": self._states[0], "env_steps": self.env_steps}
                    if actions is not None:
                        saved["actions"] = self._states[1]
                    if self.score is not None:
                        saved["score"] = dataclasses.asdict(self.score)
                    atomic_torch_save(saved, self.path)
        obs, actions = self._states
        return obs.numpy(), None if actions is None else actions.numpy()

    def _measure(self) -> tuple[np.ndarray, np.ndarray | None]:
        self.score, obs, actions = self.objective.scored_states(self.agent)
        self.env_steps = self.score.env_steps
        return obs, actions

    def inputs(self, agent: AgentAdapter | None = None) -> dict[str, torch.Tensor]:
        """What each component of ``agent`` (default: the dense one) sees on the states."""
        return (agent or self.agent).component_inputs(*self.states())
