"""Repeated timing with medians: the only clock the benchmarks use.

A shared 2-core machine is noisy, so no figure is a single run: a workload is timed in several
repetitions, each one long enough (``min_time``) for the clock's resolution and per-call jitter
not to matter, and the median repetition is reported.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds per call, one sample per repetition (each the mean over ``calls`` calls)."""

    samples: tuple[float, ...]
    calls: int

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """Relative spread (max - min) / median of the repetitions: how noisy the figure is."""
        if self.median == 0:
            return 0.0
        return (max(self.samples) - min(self.samples)) / self.median


def measure(
    fn: Callable[[], object],
    *,
    repeat: int,
    min_time: float = 0.02,
    max_calls: int = 2000,
    warm: bool = True,
    calls: int | None = None,
) -> Timing:
    """Time ``fn`` in ``repeat`` repetitions of enough calls to last ``min_time`` seconds each.

    ``warm=False`` skips the warm-up call, for slow calls whose caller has just run ``fn`` once
    (to check its answer), which warmed connections and caches already. ``calls`` fixes the
    calls per repetition and skips the calibrating call: one call of the seed's algorithm at a
    million learners takes most of a minute.
    """
    if warm:
        fn()
    if calls is None:
        start = time.perf_counter()
        fn()
        one = max(time.perf_counter() - start, 1e-9)
        calls = max(1, min(max_calls, math.ceil(min_time / one)))
    samples: list[float] = []
    for _ in range(repeat):
        # Collect now so a collection triggered by earlier garbage does not land in this sample.
        gc.collect()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return Timing(tuple(samples), calls)


def time_once(fn: Callable[[], object]) -> float:
    """Seconds of one call of ``fn`` (for runs that are themselves long: ingest, loads)."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
