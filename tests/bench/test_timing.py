import time

import numpy as np

from bench.memory import PeakMemory
from bench.timing import megapixels_per_second, time_call


def test_time_call_returns_last_result_and_median_and_synchronises():
    calls, syncs = [], []
    result, seconds = time_call(lambda: calls.append(1) or len(calls), repeats=3,
                                synchronize=lambda: syncs.append(1))
    assert result == 3 and len(calls) == 3
    assert len(syncs) == 6  # before starting and before stopping the clock, each call


def test_megapixels_per_second():
    assert megapixels_per_second(1000, 1000, 2.0) == 0.5


def test_peak_memory_sees_a_temporary_allocation():
    import gc

    # Garbage of earlier tests freed inside the block would hide the allocation: the measure
    # is the peak above the resident set at the start.
    gc.collect()
    with PeakMemory("cpu") as memory:
        block = np.ones(80 * 2**20 // 8)  # 80 MiB, touched
        time.sleep(0.05)  # held for ten sampling periods
        del block
    assert 60 <= memory.peak_mb <= 200


def test_peak_memory_is_small_for_a_small_call():
    with PeakMemory("cpu") as memory:
        sum(range(1000))
    assert memory.peak_mb < 20
