"""Component inputs on the states a dense agent visits, shared by criteria and searches."""

from __future__ import annotations

from pathlib import Path

import torch

from rlprune.adapters.base import AgentAdapter
from rlprune.io import atomic_torch_save, load_weights_only
from rlprune.search.objective import Objective

__all__ = ["VisitedInputs"]


class VisitedInputs:
    """Component inputs on the dense agent's closed-loop states, measured at most once.

    Data-aware criteria and the gradient surrogate read them; one instance may serve
    many searches of the same agent (a sweep). With a folder they are kept on disk
    (weights-only), so a resumed run neither re-runs nor re-counts the episodes.
    """

    FILE = "visited_inputs.pt"

    def __init__(self, objective: Objective, agent: AgentAdapter,
                 folder: str | Path | None = None) -> None:
        self.objective, self.agent = objective, agent
        self.path = Path(folder) / self.FILE if folder is not None else None
        self._inputs: dict[str, torch.Tensor] | None = None
        self.env_steps = 0

    def inputs(self) -> dict[str, torch.Tensor]:
        if self._inputs is None:
            if self.path is not None and self.path.exists():
                saved = load_weights_only(self.path)
                self._inputs, self.env_steps = saved["inputs"], int(saved["env_steps"])
            else:
                self._inputs, self.env_steps = self.objective.surrogate_inputs(self.agent)
                if self.path is not None:
                    atomic_torch_save({"inputs": self._inputs, "env_steps": self.env_steps},
                                      self.path)
        return self._inputs
