"""Facts of the official TD-MPC2 code (nicklashansen/tdmpc2) that its checkpoints do not hold.

Model sizes, the MT30/MT80 task lists (the order of the rows of a multi-task model's task
embedding) and how the official code runs a task (action repeat, episode length), copied
as data from its ``common/__init__.py`` and ``envs/``: an official checkpoint stores only
weights, so its task names and planning discount have to come from here, or, for a
model trained on other task sets, from a JSON card beside the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MODEL_SIZES", "MT30", "MT80", "TaskSetup", "dmc_task_in", "model_size", "task_names",
           "task_setup"]

MODEL_SIZES: dict[int, dict[str, int]] = {
    1: {"enc_dim": 256, "mlp_dim": 384, "latent_dim": 128, "num_enc_layers": 2, "num_q": 2},
    5: {"enc_dim": 256, "mlp_dim": 512, "latent_dim": 512, "num_enc_layers": 2, "num_q": 5},
    19: {"enc_dim": 1024, "mlp_dim": 1024, "latent_dim": 768, "num_enc_layers": 3, "num_q": 5},
    48: {"enc_dim": 1792, "mlp_dim": 1792, "latent_dim": 768, "num_enc_layers": 4, "num_q": 5},
    317: {"enc_dim": 4096, "mlp_dim": 4096, "latent_dim": 1376, "num_enc_layers": 5,
          "num_q": 8},
}
"""Official ``MODEL_SIZE`` (millions of parameters -> architecture; ``num_q`` 5 is the
official config default where ``MODEL_SIZE`` does not set it)."""

MT30: tuple[str, ...] = (
    # 19 original DMC tasks
    "walker-stand", "walker-walk", "walker-run", "cheetah-run", "reacher-easy",
    "reacher-hard", "acrobot-swingup", "pendulum-swingup", "cartpole-balance",
    "cartpole-balance-sparse", "cartpole-swingup", "cartpole-swingup-sparse", "cup-catch",
    "finger-spin", "finger-turn-easy", "finger-turn-hard", "fish-swim", "hopper-stand",
    "hopper-hop",
    # 11 custom DMC tasks of the official code (not in dm_control's suite)
    "walker-walk-backwards", "walker-run-backwards", "cheetah-run-backwards",
    "cheetah-run-front", "cheetah-run-back", "cheetah-jump", "hopper-hop-backwards",
    "reacher-three-easy", "reacher-three-hard", "cup-spin", "pendulum-spin",
)
"""Official ``TASK_SET["mt30"]``, in task-embedding order."""

MT80: tuple[str, ...] = MT30 + tuple("mw-" + name for name in (
    "assembly", "basketball", "button-press-topdown", "button-press-topdown-wall",
    "button-press", "button-press-wall", "coffee-button", "coffee-pull", "coffee-push",
    "dial-turn", "disassemble", "door-open", "door-close", "drawer-close", "drawer-open",
    "faucet-open", "faucet-close", "hammer", "handle-press-side", "handle-press",
    "handle-pull-side", "handle-pull", "lever-pull", "peg-insert-side", "peg-unplug-side",
    "pick-out-of-hole", "pick-place", "pick-place-wall", "plate-slide", "plate-slide-side",
    "plate-slide-back", "plate-slide-back-side", "push-back", "push", "push-wall", "reach",
    "reach-wall", "shelf-place", "soccer", "stick-push", "stick-pull", "sweep-into", "sweep",
    "window-open", "window-close", "bin-picking", "box-close", "door-lock", "door-unlock",
    "hand-insert",
))
"""Official ``TASK_SET["mt80"]``: MT30, then Meta-World's MT50."""

_DOMAIN_ALIASES = {"cup": "ball_in_cup", "pointmass": "point_mass"}
"""Official short DMC domain names (its ``envs/dmcontrol.py``)."""


@dataclass(frozen=True)
class TaskSetup:
    """How the official code runs a task, and the env spec of ours that runs it."""

    name: str
    """Official task name (``"walker-run"``, ``"mw-reach"``)."""
    spec: str | None
    """Our ``envs.make_env`` spec (None: Meta-World, which rlprune does not ship)."""
    action_repeat: int
    """Both official DMC and Meta-World wrappers repeat each action twice."""
    episode_length: int
    """Agent steps per episode (DMC: 1000 env steps / 2; Meta-World: 100 agent steps), the
    input of the official discount heuristic."""


def task_setup(name: str) -> TaskSetup:
    """The official run setup of a task name."""
    if name.startswith("mw-"):
        return TaskSetup(name, None, 2, 100)
    domain, _, task = name.partition("-")
    # Official DMC names join the suite's underscores with dashes (cartpole-swingup-sparse).
    spec = f"dmc/{_DOMAIN_ALIASES.get(domain, domain)}-{task.replace('-', '_')}"
    return TaskSetup(name, spec, 2, 500)


def dmc_task_in(stem: str, suite_names: list[str]) -> str | None:
    """The longest official or suite DMC task name inside a file stem (``"5M-walker-run"`` ->
    ``"walker-run"``; ``"cartpole-swingup-sparse"`` wins over ``"cartpole-swingup"``)."""
    known = {name for name in MT30} | {n.replace("_", "-") for n in suite_names}
    found = [name for name in known if name in stem]
    return max(found, key=len) if found else None


def model_size(arch: dict[str, int]) -> int | str:
    """The official size (1, 5, 19, 48, 317) whose widths match, else ``"custom"``."""
    for size, facts in MODEL_SIZES.items():
        if all(arch.get(key) == value for key, value in facts.items()):
            return size
    return "custom"


def task_names(path: Path, count: int) -> tuple[str, ...] | None:
    """Names of a multi-task checkpoint's ``count`` tasks, in embedding order: from a card
    ``<stem>.json`` beside it (``{"tasks": [...]}``), else MT30/MT80 by count, else None.

    Raises:
        ValueError: a card that is no JSON object or lists another number of tasks.
    """
    card = path.with_suffix(".json")
    if card.is_file():
        try:
            tasks = json.loads(card.read_text()).get("tasks")
        except (json.JSONDecodeError, AttributeError) as e:
            raise ValueError(f"{card} is not a JSON object: {e}") from e
        if tasks is not None:
            if (not isinstance(tasks, list) or len(tasks) != count
                    or not all(isinstance(t, str) for t in tasks)):
                raise ValueError(f'{card}: "tasks" must list {count} task names (the rows '
                                 f"of the task embedding), got {tasks!r}")
            return tuple(tasks)
    return {30: MT30, 80: MT80}.get(count)
