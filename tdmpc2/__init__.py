"""A compact TD-MPC2 (Hansen et al., ICLR 2024) with named, separately traceable components."""

from tdmpc2.agent import TDMPC2Agent, heuristic_discount
from tdmpc2.checkpoint import load_agent, read_checkpoint, save_agent
from tdmpc2.config import SIZE_PRESETS, ModelConfig, PlannerConfig, TrainConfig, model_config_for
from tdmpc2.world_model import WorldModel

__all__ = [
    "SIZE_PRESETS",
    "ModelConfig",
    "PlannerConfig",
    "TDMPC2Agent",
    "TrainConfig",
    "WorldModel",
    "heuristic_discount",
    "load_agent",
    "model_config_for",
    "read_checkpoint",
    "save_agent",
]
