"""CPU threads for training, and a warning when the steps slow down.

Measured on a 2-core machine (``benchmarks/bench_threads.py``, issue 14): a demo-model step took
149 ms with torch's default 2 threads on an otherwise idle machine, but 522 ms with one other
busy process, 2.3x the 224 ms of a single thread: threads that wait for a busy core stall the
whole step. So the run config's ``threads: auto`` (the default) takes the cores that the load
average says are free, at least 1 and at most torch's own count (or ``OMP_NUM_THREADS`` when
set); ``threads: N`` fixes it. Load changes while a run goes on: :class:`StepPace` warns once
when the median step time over a window grows past ``factor`` x the early median.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections import deque
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)


def choose_threads(setting: int | str) -> int:
    """The torch thread count for run config ``threads`` (``"auto"`` or a count >= 1)."""
    if setting != "auto":
        return int(setting)
    most = torch.get_num_threads()
    if os.environ.get("OMP_NUM_THREADS") or not hasattr(os, "getloadavg"):
        return most
    busy = os.getloadavg()[0]
    return max(1, min(most, round((os.cpu_count() or most) - busy)))


class StepPace:
    """Call :meth:`tick` after every step; it returns a warning (once) when the median of the
    last ``window`` step times exceeds ``factor`` x the median of the first ``window`` steps
    (after ``skip`` warm-up steps), else None."""

    def __init__(
        self,
        window: int = 20,
        factor: float = 2.0,
        skip: int = 5,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.window, self.factor, self.skip, self.clock = window, factor, skip, clock
        self.early: list[float] = []
        self.recent: deque[float] = deque(maxlen=window)
        self.last = clock()
        self.steps = 0
        self.warned = False

    def tick(self) -> str | None:
        now = self.clock()
        seconds, self.last = now - self.last, now
        self.steps += 1
        if self.steps <= self.skip or self.warned:
            return None
        if len(self.early) < self.window:
            self.early.append(seconds)
            return None
        self.recent.append(seconds)
        if len(self.recent) < self.window:
            return None
        before, now_median = statistics.median(self.early), statistics.median(self.recent)
        if now_median <= self.factor * before:
            return None
        self.warned = True
        return (
            f"training steps slowed from {before * 1e3:.0f} ms to {now_median * 1e3:.0f} ms "
            f"(median of {self.window}); if another process competes for the CPU, fewer torch "
            f"threads can be faster: now {torch.get_num_threads()}, try threads=1 "
            "(see docs/reliability.md)"
        )
