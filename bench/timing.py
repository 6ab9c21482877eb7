"""Timing of denoise calls: repeats, median, device synchronisation (the untimed warm-up
calls are made by :class:`bench.run.worker.CellRunner`)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def time_call(
    call: Callable[[], T], *, repeats: int = 1, synchronize: Callable[[], None] | None = None
) -> tuple[T, float]:
    """Run ``call`` ``repeats`` times and return its last result and the median seconds.

    Parameters
    ----------
    call : callable
        The work to time, taking no argument.
    repeats : int
        Number of timed calls (at least 1).
    synchronize : callable, optional
        Called before starting and before stopping the clock, so that queued device work
        (CUDA kernels) is counted in the call that queued it.

    Returns
    -------
    result, seconds
        The value of the last call and the median wall time of the calls in seconds.
    """
    sync = synchronize or (lambda: None)
    durations = []
    result = None
    for _ in range(max(1, repeats)):
        sync()
        start = time.perf_counter()
        result = call()
        sync()
        durations.append(time.perf_counter() - start)
    return result, statistics.median(durations)


def megapixels_per_second(height: int, width: int, seconds: float) -> float:
    """Throughput of one image of ``height`` x ``width`` pixels (channels not counted)."""
    return height * width / 1e6 / seconds if seconds > 0 else float("inf")
