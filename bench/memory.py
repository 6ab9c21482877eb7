"""Peak memory of a call: resident set size on the CPU, allocated memory on CUDA."""

from __future__ import annotations

import os
import sys
import threading

#: Seconds between two readings of the resident set size.
SAMPLE_PERIOD = 0.005
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """This process's resident set size in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


class _Sampler:
    """One sampling thread per process, asleep between measured blocks.

    Starting and joining a thread for every block cost milliseconds per cell on a loaded
    machine (the join waits for the new thread to be scheduled); this thread is started once
    and woken by :meth:`begin`. Blocks must not overlap (a worker runs one call at a time).
    """

    def __init__(self):
        self._condition = threading.Condition()
        self._active = False
        self._peak = 0
        self._pid = None

    def begin(self, sample: bool = True) -> int:
        """Start a block; return the resident set size at its start.

        With ``sample`` false, the thread is not woken and only the readings at the start and
        at the end count.
        """
        base = resident_bytes()
        if not sample:
            self._peak = base
            return base
        with self._condition:
            if self._pid != os.getpid():  # first use, or a forked child without the thread
                self._pid = os.getpid()
                threading.Thread(target=self._sample, name="bench-peak-memory",
                                 daemon=True).start()
            self._active, self._peak = True, base
            self._condition.notify()
        return base

    def end(self) -> int:
        """End the block; return the largest resident set size seen in it."""
        last = resident_bytes()
        with self._condition:
            self._active = False
            return max(self._peak, last)

    def _sample(self) -> None:
        with self._condition:
            while True:
                while not self._active:
                    self._condition.wait()
                self._condition.wait(SAMPLE_PERIOD)
                if self._active:
                    self._peak = max(self._peak, resident_bytes())


_SAMPLER = _Sampler()


class PeakMemory:
    """Measures the peak memory a block of code needs above what was in use before it.

    On the CPU a background thread samples the resident set size every
    :data:`SAMPLE_PERIOD` seconds (short spikes between samples can be missed); on CUDA the
    allocator's own peak counter is used. ``peak_mb`` holds the result after the block.
    Blocks measured on the CPU must not overlap within a process.

    Parameters
    ----------
    device : str
        ``"cpu"`` or ``"cuda"``.
    sample : bool
        Wake the sampling thread (CPU). Waking it costs up to a millisecond on a loaded
        machine; for a block known to be shorter than :data:`SAMPLE_PERIOD`, where a sample
        would rarely land anyway, pass false: the readings before and after it are taken.
    """

    def __init__(self, device: str = "cpu", *, sample: bool = True):
        self.device = device
        self.sample = sample
        self.peak_mb = float("nan")

    def __enter__(self) -> PeakMemory:
        if self.device == "cuda":
            torch = sys.modules["torch"]
            torch.cuda.synchronize()
            self._base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            return self
        self._base = _SAMPLER.begin(self.sample)
        return self

    def __exit__(self, *exc) -> bool:
        if self.device == "cuda":
            torch = sys.modules["torch"]
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = _SAMPLER.end()
        self.peak_mb = max(0, peak - self._base) / 2**20
        return False
