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
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


class PeakMemory:
    """Measures the peak memory a block of code needs above what was in use before it.

    On the CPU a background thread samples the resident set size every
    :data:`SAMPLE_PERIOD` seconds (short spikes between samples can be missed); on CUDA the
    allocator's own peak counter is used. ``peak_mb`` holds the result after the block.

    Parameters
    ----------
    device : str
        ``"cpu"`` or ``"cuda"``.
    """

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.peak_mb = float("nan")
        self._stop = threading.Event()
        self._peak = 0

    def __enter__(self) -> PeakMemory:
        if self.device == "cuda":
            torch = sys.modules["torch"]
            torch.cuda.synchronize()
            self._base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            return self
        self._base = self._peak = resident_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_PERIOD):
            self._peak = max(self._peak, resident_bytes())

    def __exit__(self, *exc) -> bool:
        if self.device == "cuda":
            torch = sys.modules["torch"]
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, resident_bytes())
        self.peak_mb = max(0, peak - self._base) / 2**20
        return False
