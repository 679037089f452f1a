"""Coefficient search: baselines now; grid, gradient and CMA-ES searches build on them."""

from rlprune.search.baselines import BASELINES, baseline_plan, importance_scores

__all__ = ["BASELINES", "baseline_plan", "importance_scores"]
