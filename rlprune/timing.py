"""Wall-clock timing of code on a fixed number of CPU threads: the one primitive that
step latencies and the latency model's layer table are both measured with."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

__all__ = ["Timing", "time_calls", "torch_threads"]


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Runs the block with ``threads`` intra-op threads, then restores the setting.

    Raises:
        ValueError: ``threads`` < 1.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Timing:
    """Seconds of repeated calls: robust summaries (median, p90), not the mean."""

    def __init__(self, seconds: list[float]) -> None:
        self.seconds = np.asarray(seconds, dtype=np.float64)

    @property
    def median(self) -> float:
        return float(np.median(self.seconds))

    @property
    def p90(self) -> float:
        return float(np.percentile(self.seconds, 90))

    def to_dict(self) -> dict:
        return {"median_ms": 1e3 * self.median, "p90_ms": 1e3 * self.p90,
                "calls": len(self.seconds)}


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 2,
               min_seconds: float = 0.0) -> Timing:
    """Times ``fn()`` ``repeats`` times after ``warmup`` untimed calls. Calls faster than
    ``min_seconds`` are batched into loops that long (each sample: the loop's mean), so
    microsecond calls are not measured at the clock's resolution."""
    for _ in range(warmup):
        fn()
    inner = 1
    if min_seconds > 0:
        start = time.perf_counter()
        fn()
        once = max(time.perf_counter() - start, 1e-7)
        inner = max(1, int(min_seconds / once))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return Timing(samples)
