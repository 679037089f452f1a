"""Typed, frozen configuration of the TD-MPC2 agent: architecture, planner, training.

Defaults follow TD-MPC2 (Hansen, Su, Wang, ICLR 2024) where the paper fixes them; the
``cpu`` size preset is ours, sized so one update and one plan cost well under 0.1 s on
two CPU cores.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SIZE_PRESETS", "ModelConfig", "PlannerConfig", "TrainConfig", "model_config_for",
           "parse_planner"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the world model. Saved inside every checkpoint."""

    obs_dim: int
    """Flat observation size of the task."""
    action_dim: int
    """Action size; actions live in [-1, 1]."""
    latent_dim: int = 64
    """Size of the latent state z (a multiple of ``simnorm_dim``)."""
    mlp_dim: int = 256
    """Hidden width of dynamics, reward, policy and Q networks."""
    enc_dim: int = 256
    """Hidden width of the encoder."""
    num_enc_layers: int = 2
    """Encoder depth counting its output layer (TD-MPC2's default is 2)."""
    num_q: int = 5
    """Q heads in the ensemble."""
    num_bins: int = 101
    """Bins of the two-hot (symlog) reward and value distributions."""
    vmin: float = -10.0
    """Lowest bin centre in symlog space."""
    vmax: float = 10.0
    """Highest bin centre in symlog space."""
    simnorm_dim: int = 8
    """Group size of the simplicial normalisation of z."""
    dropout: float = 0.01
    """Dropout after the first layer of each Q head."""
    log_std_min: float = -10.0
    """Lower bound of the policy's log standard deviation."""
    log_std_max: float = 2.0
    """Upper bound of the policy's log standard deviation."""
    termination: bool = False
    """A termination head (z -> logit that the episode ends), as official TD-MPC2 models of
    episodic tasks have: the planner stops summing rewards after a predicted end. Our
    trainer does not learn one; official checkpoints bring it."""
    hidden_widths: dict[str, list[int]] = field(default_factory=dict)
    """Per-component hidden widths after structured pruning (``{"pi": [200, 180]}``);
    a component not listed has the dense widths above. ``"Q"`` applies to all heads,
    ``"Q3"`` to one head."""

    def __post_init__(self) -> None:
        if self.obs_dim < 1 or self.action_dim < 1:
            raise ValueError(f"obs_dim and action_dim must be >= 1, got {self.obs_dim}, "
                             f"{self.action_dim}")
        if self.latent_dim % self.simnorm_dim:
            raise ValueError(f"latent_dim {self.latent_dim} must be a multiple of simnorm_dim "
                             f"{self.simnorm_dim}")
        if self.num_enc_layers < 1 or self.num_q < 2 or self.num_bins < 2:
            raise ValueError("need num_enc_layers >= 1, num_q >= 2 and num_bins >= 2")

    def widths(self, component: str) -> list[int]:
        """Hidden layer widths of one component (``encoder``, ``dynamics``, ``Q0`` ...)."""
        if component in self.hidden_widths:
            return list(self.hidden_widths[component])
        if component.startswith("Q") and "Q" in self.hidden_widths:
            return list(self.hidden_widths["Q"])
        if component == "encoder":
            return [self.enc_dim] * max(self.num_enc_layers - 1, 1)
        return [self.mlp_dim, self.mlp_dim]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PlannerConfig:
    """MPPI planning in latent space (TD-MPC2 defaults)."""

    horizon: int = 3
    """Planning horizon in agent steps."""
    iterations: int = 6
    """MPPI refinement iterations per plan; 0 acts with the policy prior's mean action
    alone (no planning: what a policy-only controller gives up or keeps)."""
    num_samples: int = 512
    """Action sequences sampled per iteration (policy samples included)."""
    num_elites: int = 64
    """Best sequences that define the next sampling distribution."""
    num_pi_trajs: int = 24
    """Sequences proposed by the learned policy."""
    min_std: float = 0.05
    """Lowest sampling standard deviation."""
    max_std: float = 2.0
    """Initial sampling standard deviation."""
    temperature: float = 0.5
    """Softmax temperature over elite values."""

    def reduced(self, iterations: int, num_samples: int) -> PlannerConfig:
        """A cheaper planner for CPU: fewer iterations and samples, elites kept at
        TD-MPC2's 1/8 of the samples (our choice; used to collect data and to act)."""
        return dataclasses.replace(self, iterations=iterations, num_samples=num_samples,
                                   num_elites=max(1, num_samples // 8))

    def __post_init__(self) -> None:
        if not 0 <= self.num_pi_trajs < self.num_samples:
            raise ValueError("num_pi_trajs must be in [0, num_samples)")
        if not 0 < self.num_elites <= self.num_samples:
            raise ValueError("num_elites must be in (0, num_samples]")
        if self.horizon < 1 or self.iterations < 0:
            raise ValueError("horizon must be >= 1 and iterations >= 0")


_PLANNER_ALIASES = {"samples": "num_samples", "elites": "num_elites", "pi_trajs": "num_pi_trajs"}
"""Short names ``parse_planner`` accepts besides the field names."""


def parse_planner(text: str, base: PlannerConfig | None = None) -> PlannerConfig:
    """A planner from ``"iterations=4,samples=256"``: ``base`` (default: TD-MPC2's) with
    those fields changed; changing ``samples`` alone keeps TD-MPC2's 1/8 elites.

    Raises:
        ValueError: not ``key=value`` pairs, an unknown key, a value of the wrong type or
            a planner that is not valid (e.g. more policy trajectories than samples).
    """
    base = base or PlannerConfig()
    kinds = {f.name: f.type for f in dataclasses.fields(PlannerConfig)}
    usage = (f"planner settings are comma-separated key=value pairs like "
             f"'iterations=4,samples=256' (keys: {', '.join([*kinds, *_PLANNER_ALIASES])})")
    changes: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in str(text).split(","))):
        key, sep, value = (part.strip() for part in item.partition("="))
        key = _PLANNER_ALIASES.get(key, key)
        if not sep or key not in kinds:
            raise ValueError(f"{usage}; got {text!r}")
        whole = kinds[key] == "int"  # field types are strings (postponed annotations)
        try:
            changes[key] = int(value) if whole else float(value)
        except ValueError:
            raise ValueError(f"planner setting {item!r} needs a "
                             f"{'whole number' if whole else 'number'}; {usage}") from None
    if not changes:
        raise ValueError(f"{usage}; got {text!r}")
    if "num_samples" in changes and "num_elites" not in changes:
        changes["num_elites"] = max(1, changes["num_samples"] // 8)
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as e:
        raise ValueError(f"planner {text!r} is not valid: {e}") from e


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and data collection (TD-MPC2 defaults unless noted)."""

    task: str = "dmc/cartpole-swingup"
    """Env spec for ``envs.make_env``."""
    steps: int = 100_000
    """Environment steps (counted before action repeat, as TD-MPC2 reports them)."""
    action_repeat: int = 2
    """TD-MPC2 uses 2 on DMC."""
    seed: int = 1
    """Seeds env resets, exploration, the planner and network initialisation."""
    size: str = "cpu"
    """A key of ``SIZE_PRESETS``."""
    batch_size: int = 256
    """Sequences per update."""
    buffer_size: int = 1_000_000
    """Replay capacity in agent steps."""
    seed_steps: int = 0
    """Random-action agent steps before learning; 0 means max(1000, 5 episodes)."""
    lr: float = 3e-4
    """Adam learning rate."""
    enc_lr_scale: float = 0.3
    """Encoder learning rate as a fraction of ``lr``."""
    grad_clip: float = 20.0
    """Gradient norm clip of the world model."""
    consistency_coef: float = 20.0
    """Weight of the latent consistency loss."""
    reward_coef: float = 0.1
    """Weight of the reward loss."""
    value_coef: float = 0.1
    """Weight of the value loss."""
    entropy_coef: float = 1e-4
    """Weight of the policy entropy bonus."""
    rho: float = 0.5
    """Temporal discount of the losses over the horizon."""
    tau: float = 0.01
    """Polyak rate of target Q networks."""
    discount_denom: float = 5.0
    """Discount heuristic: gamma = (L/denom - 1) / (L/denom) for episode length L."""
    discount_min: float = 0.95
    """Lower clip of the heuristic discount."""
    discount_max: float = 0.995
    """Upper clip of the heuristic discount."""
    eval_every: int = 10_000
    """Environment steps between evaluations."""
    eval_episodes: int = 5
    """Seeded episodes per evaluation, run in one batch."""
    save_every: int = 5_000
    """Environment steps between resume checkpoints."""
    collect_iterations: int = 4
    """MPPI iterations while collecting data and in training-time evaluations. Ours: the
    TD-MPC2 default (6 iterations, 512 samples) costs ~0.13 s per step on 2 CPU cores;
    shipped agents keep the default planner for acting."""
    collect_samples: int = 256
    """MPPI samples while collecting data (see ``collect_iterations``)."""
    widths_of: str = ""
    """A tdmpc2 agent file (a pruned one, say) whose hidden widths the model takes instead
    of the size preset's; its weights are not used. This trains the from-scratch small
    dense baseline of a pruned agent: the same architecture, fresh weights, the same budget."""

    def __post_init__(self) -> None:
        if self.size not in SIZE_PRESETS:
            raise ValueError(f"size must be one of {sorted(SIZE_PRESETS)}, got {self.size!r}")
        if self.steps < 1 or self.action_repeat < 1 or self.batch_size < 1:
            raise ValueError("steps, action_repeat and batch_size must be >= 1")


SIZE_PRESETS: dict[str, dict[str, int]] = {
    # Ours: about 0.9M parameters with 5 Q heads.
    "cpu": {"latent_dim": 64, "mlp_dim": 256, "enc_dim": 256},
    # TD-MPC2's reference sizes (parameter counts as reported for the multitask models).
    "1M": {"latent_dim": 128, "mlp_dim": 384, "enc_dim": 256},
    "5M": {"latent_dim": 512, "mlp_dim": 512, "enc_dim": 256},
    "19M": {"latent_dim": 512, "mlp_dim": 1024, "enc_dim": 1024},
}


def model_config_for(size: str, obs_dim: int, action_dim: int) -> ModelConfig:
    """The architecture of a size preset for a task's dimensions."""
    if size not in SIZE_PRESETS:
        raise ValueError(f"size must be one of {sorted(SIZE_PRESETS)}, got {size!r}")
    return ModelConfig(obs_dim=obs_dim, action_dim=action_dim, **SIZE_PRESETS[size])
