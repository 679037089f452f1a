"""rlprune: component-aware structured pruning of RL controllers by soft coefficient search."""

from rlprune.adapters import AgentAdapter, load_agent
from rlprune.evaluate import ClosedLoopEvaluator, EvalResult
from rlprune.grouping import ComponentGrouper
from rlprune.masking import ChannelMasks
from rlprune.prune import prune_physically
from rlprune.ranking import ChannelRanking, Coefficients, InfeasibleTarget, PruningPlan

__version__ = "0.1.0"

__all__ = [
    "AgentAdapter",
    "ChannelMasks",
    "ChannelRanking",
    "ClosedLoopEvaluator",
    "Coefficients",
    "ComponentGrouper",
    "EvalResult",
    "InfeasibleTarget",
    "PruningPlan",
    "__version__",
    "load_agent",
    "prune_physically",
]
