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


def test_cpu_calls_shorter_than_the_sampling_period_reuse_the_peak_of_their_shape(monkeypatch):
    """Reading the allocator costs more than 1 % of a 5 ms cell: a short call is not measured
    again, a longer one is, every time."""
    from bench.memory import SAMPLE_PERIOD
    from bench.plan import Cell
    from bench.run import worker
    from bench.run.worker import CellRunner, WorkerConfig

    measured = []

    class Counting(PeakMemory):
        def __exit__(self, *exc):
            super().__exit__(*exc)
            self.peak_mb = float(len(measured))  # the n-th measurement reads n
            measured.append(self.peak_mb)
            return False

    durations = iter([SAMPLE_PERIOD / 5] * 3 + [SAMPLE_PERIOD * 2] * 3)
    monkeypatch.setattr(worker, "PeakMemory", Counting)
    monkeypatch.setattr(worker, "time_call", lambda call, **_: (call(), next(durations)))
    cell = Cell(dataset="skimage", image="camera", noise="gaussian", level=25.0,
                noise_params=(), seed=0, mode="oracle", denoiser="gaussian_blur", params=(),
                device="cpu")
    runner = CellRunner(WorkerConfig(crop=32))
    peaks = [runner.run(cell).record.peak_memory_mb for _ in range(6)]
    # first call measured; short ones reuse it, also the first long one (its last run was
    # short); after a long run every call is measured again
    assert peaks == [0.0, 0.0, 0.0, 0.0, 1.0, 2.0]
