"""Closed-loop evaluation: seeded, batched episode returns of any agent adapter.

Episode return is the objective of the coefficient search, so evaluation cost is search
cost. All N episodes run in lockstep (``envs.run_episodes``) with one batched ``act`` per
step. Every candidate sees the same env seeds and the same planner noise seed (common
random numbers), so differences between candidates are not noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from scipy import stats as scipy_stats

import envs
from rlprune.adapters.base import AgentAdapter
from rlprune.analysis.statistics import robust_summary
from rlprune.timing import torch_threads

__all__ = ["ClosedLoopEvaluator", "EvalResult", "StateRecorder", "agent_task"]


@dataclass(frozen=True)
class EvalResult:
    """Per-episode outcome of one evaluation, with summary statistics as properties."""

    returns: np.ndarray
    lengths: np.ndarray
    seeds: tuple[int, ...]
    failed: np.ndarray
    """Episodes ended by a non-finite action or reward (scored as failed)."""
    env_steps: int
    """Environment steps simulated, summed over episodes (agent steps x action repeat)."""
    wall_time: float
    error: str | None = None
    """Set when the env raised: the run was stopped, every episode is marked failed."""

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns, ddof=1)) if len(self.returns) > 1 else 0.0

    @property
    def ci95(self) -> float:
        """Half-width of the Student-t 95% confidence interval of the mean."""
        n = len(self.returns)
        if n < 2:
            return float("inf")
        return float(scipy_stats.t.ppf(0.975, n - 1) * self.std / np.sqrt(n))

    @property
    def any_failed(self) -> bool:
        return bool(self.failed.any())

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "ci95": self.ci95,
                **robust_summary(self.returns), "returns": self.returns.tolist(),
                "lengths": self.lengths.tolist(),
                "seeds": list(self.seeds), "failed": self.failed.tolist(),
                "env_steps": self.env_steps, "wall_time": self.wall_time, "error": self.error}


@dataclass
class StateRecorder:
    """Records what every active episode saw and did during an evaluation."""

    steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def __call__(self, obs: np.ndarray, actions: np.ndarray, active: np.ndarray) -> None:
        self.steps.append((np.array(obs), np.array(actions), active.copy()))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(observations, actions) of all active steps, episodes interleaved."""
        return (np.concatenate([o[a] for o, _, a in self.steps]),
                np.concatenate([u[a] for _, u, a in self.steps]))

    def trajectories(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per episode, in time order: (observations [T, ...], actions [T, ...])."""
        episodes = []
        for i in range(len(self.steps[0][2]) if self.steps else 0):
            rows = [(o[i], u[i]) for o, u, a in self.steps if a[i]]
            episodes.append((np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])))
        return episodes


class ClosedLoopEvaluator:
    """Runs an agent for a fixed set of seeded episodes on one env spec.

    Args:
        env: env spec for ``envs.make_env`` (``"dmc/cartpole-swingup"``, ``"Hopper-v5"``); an
            id that needs mujoco-py runs as its newest version (``envs.registry.current_spec``).
        episodes: episodes per evaluation (all run in one batch).
        seed: episode ``i`` resets with ``seed + i``; the agent is reset with ``seed``.
        action_repeat: agent steps span this many env steps.
        perturb: perturbations for robustness studies (see ``envs.perturb``).
        max_episode_steps: cap on episode length (env steps), e.g. for quick checks.
        env_kwargs: keyword arguments of the Gymnasium env (an RL Zoo agent's
            ``env_kwargs.yml``); ``for_agent`` passes the agent's own.
        wrappers: env wrappers the agent acts through (``envs.zoo_wrappers`` specs: RL
            Zoo's ``env_wrapper`` and ``frame_stack``); ``for_agent`` passes the agent's own.
        threads: torch threads the agent acts on. Fixed, not the machine's count: sums
            split over another number of threads round differently, and a planner's
            closed loop can grow that into other returns, so an evaluation must pin it to
            give the same returns on every machine, here or in an executor's worker.
    """

    def __init__(
        self,
        env: str,
        episodes: int = 10,
        seed: int = 0,
        action_repeat: int = 1,
        perturb: str | Mapping[str, float] | None = None,
        max_episode_steps: int | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
        wrappers: Sequence[Sequence[Any]] = (),
        threads: int = 1,
    ) -> None:
        if episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {episodes}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads = threads
        self.requested_spec = env
        """The spec asked for (``env_spec`` is what runs)."""
        self.env_spec, self.episodes, self.seed = envs.current_spec(env), episodes, seed
        self.env_kwargs = dict(env_kwargs or {})
        self.options = {"action_repeat": action_repeat, "perturb": perturb,
                        "max_episode_steps": max_episode_steps, "perturb_seed": seed,
                        "wrappers": [list(w) for w in wrappers]}
        self._envs: dict[int, list[gym.Env]] = {}
        probe = self._make_env()  # a bad spec, option or env kwarg fails here
        self.observation_space, self.action_space = probe.observation_space, probe.action_space
        probe.close()

    @classmethod
    def for_agent(cls, agent: AgentAdapter, env: str | None = None,
                  **options: Any) -> ClosedLoopEvaluator:
        """An evaluator on the agent's own task (or ``env``), at its action repeat and with
        the env kwargs it was trained with (both only on its own task), through the env
        wrappers it acts through (on any task); ``options`` as for the constructor."""
        spec, repeat = agent_task(agent, env)
        info = agent.describe()
        kwargs = info.get("env_kwargs") if spec == info.get("task") else None
        return cls(spec, action_repeat=repeat, env_kwargs=kwargs,
                   wrappers=info.get("env_wrappers", ()), **options)

    def _make_env(self) -> gym.Env:
        return envs.make_env(self.env_spec, **self.options, **self.env_kwargs)

    def _env_list(self, n: int) -> list[gym.Env]:
        """n env copies, made once and reused: every episode starts from a seeded reset
        (perturbations re-applied), so reuse changes no result."""
        if n not in self._envs:
            self._envs[n] = [self._make_env() for _ in range(n)]
        return self._envs[n]

    def close(self) -> None:
        for env in (e for group in self._envs.values() for e in group):
            env.close()
        self._envs = {}

    def __getstate__(self) -> dict:  # workers make their own envs
        return {**self.__dict__, "_envs": {}}

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(self.seed + i for i in range(self.episodes))

    def check_agent(self, agent: AgentAdapter) -> None:
        """Raises ValueError if the agent's spaces do not fit the env (before any episode)."""
        via = "" if self.env_spec == self.requested_spec else \
            f" (run for {self.requested_spec}, which needs mujoco-py)"
        for what, agent_space, env_space in (
                ("observation", agent.observation_space, self.observation_space),
                ("action", agent.action_space, self.action_space)):
            if agent_space is None:
                raise ValueError(f"{agent.kind} agent has no {what} space: it cannot act in "
                                 f"{self.env_spec}")
            expects, gives = _space_size(agent_space), _space_size(env_space)
            if expects != gives:
                raise ValueError(f"{what} space mismatch: the agent expects {expects}, "
                                 f"{self.env_spec} gives {gives}{via}; pass --env with the "
                                 "task (version and env kwargs) the agent was trained on")

    def evaluate(self, agent: AgentAdapter,
                 recorder: StateRecorder | Callable[..., None] | None = None,
                 episodes: range | None = None) -> EvalResult:
        """Runs the episodes; ``recorder`` (optional: a ``StateRecorder``, a progress bar)
        sees every control step (observations, actions, which episodes are active).

        ``episodes`` picks a contiguous part of the episode list (racing evaluates a
        candidate chunk by chunk). The agent is reset with the seed of the part's first
        episode, so a part gives exactly the returns those episodes get in a full run
        (for agents whose randomness is one stream per batch row, like our planner).
        """
        self.check_agent(agent)
        episodes = range(self.episodes) if episodes is None else episodes
        if episodes.step != 1 or not 0 <= episodes.start < episodes.stop <= self.episodes:
            raise ValueError(f"episodes must be a contiguous part of range({self.episodes}), "
                             f"got {episodes}")
        seeds = self.seeds[episodes.start:episodes.stop]
        start = time.perf_counter()
        copies = self._env_list(len(seeds))
        agent.reset(seeds[0])
        try:
            with torch_threads(self.threads):
                batch = envs.run_episodes(copies, agent.act, seeds, on_step=recorder)
        except Exception as e:  # noqa: BLE001 - a crashing simulator must not end a sweep
            for env in self._envs.pop(len(seeds)):  # never reuse an env that raised
                env.close()
            n = len(seeds)
            return EvalResult(np.zeros(n), np.zeros(n, dtype=np.int64), seeds,
                              np.ones(n, dtype=bool), 0, time.perf_counter() - start,
                              error=f"{type(e).__name__}: {e} (episode seeds {seeds})")
        return EvalResult(batch.returns, batch.lengths, seeds, batch.failed,
                          int(batch.lengths.sum()) * self.options["action_repeat"],
                          time.perf_counter() - start)


def _space_size(space: gym.Space) -> str:
    """What must match between an agent's and an env's space: the shape of an array space,
    the number of choices of a discrete one."""
    if isinstance(space, gym.spaces.Discrete):
        return f"{space.n} discrete values"
    return f"shape {space.shape}"


def agent_task(agent: AgentAdapter, env: str | None = None) -> tuple[str, int]:
    """(env spec, action repeat) to run ``agent`` on: ``env`` if given (the agent's action
    repeat only on its own task), else the task its checkpoint records.

    Raises:
        ValueError: the agent does not act (no observation space), or records no task
            and no ``env`` is given.
    """
    info = agent.describe()
    if agent.observation_space is None:
        raise ValueError(f"{info['kind']} agent does not act in an environment (no "
                         "observation space); prune or sweep it on its own metric")
    spec = env or info.get("task")
    if spec is None:
        raise ValueError(f"{info['kind']} agent records no task: pass an env spec (--env)")
    repeat = info.get("action_repeat", 1) if spec == info.get("task") else 1
    return spec, repeat
