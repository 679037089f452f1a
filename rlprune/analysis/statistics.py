"""Robust summaries of episode returns: the interquartile mean with a bootstrap 95%
confidence interval (the rliable convention, Agarwal et al. 2021), and paired differences.

With one task, rliable's stratified bootstrap resamples episodes within that task, which
is the plain percentile bootstrap here. Seeded: the same returns give the same interval.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as scipy_stats

__all__ = ["bootstrap_ci", "iqm", "paired_difference", "robust_summary"]


def iqm(values: np.ndarray) -> float:
    """Mean of the middle 50% (the 25% lowest and highest cut, as rliable does)."""
    return float(scipy_stats.trim_mean(np.asarray(values, dtype=np.float64), 0.25))


def bootstrap_ci(values: np.ndarray, statistic=iqm, reps: int = 2000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of ``statistic`` over resampled episodes."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return (float("-inf"), float("inf"))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(reps, len(values)))
    estimates = np.array([statistic(values[row]) for row in draws])
    low, high = np.percentile(estimates, [2.5, 97.5])
    return float(low), float(high)


def robust_summary(values: np.ndarray, seed: int = 0) -> dict:
    """``iqm`` and its bootstrap 95% interval ``iqm_ci95`` ([low, high])."""
    return {"iqm": iqm(values), "iqm_ci95": list(bootstrap_ci(values, seed=seed))}


def paired_difference(after: np.ndarray, before: np.ndarray) -> dict:
    """Mean of ``after - before`` over the same episodes and its Student-t 95% half-width
    (pairing removes the episodes' shared difficulty from the noise)."""
    diff = np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)
    n = len(diff)
    half = float(scipy_stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / np.sqrt(n)) \
        if n > 1 else float("inf")
    return {"mean": float(diff.mean()), "ci95": half, "episodes": n}
