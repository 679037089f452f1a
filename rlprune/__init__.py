"""rlprune: component-aware structured pruning of RL controllers by soft coefficient search."""

from rlprune.adapters import AgentAdapter, load_agent
from rlprune.analysis.evaluate import ClosedLoopEvaluator, EvalResult
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.masking import ChannelMasks
from rlprune.pruning.physical import prune_physically
from rlprune.pruning.ranking import ChannelRanking, Coefficients, InfeasibleTarget, PruningPlan

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
