"""Peak memory of a call (allocated memory on the CPU and on CUDA), and the CPU allocator's
set-up for measuring calls.

On the CPU the measure is what the C allocator has handed out (glibc's ``mallinfo2``: every
``malloc`` of numpy, OpenCV, torch and the rest), or the resident set size where that is not
available (not glibc). The allocator's own cache of freed memory is not counted, so the
measure does not depend on :func:`keep_freed_memory`.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

#: Seconds between two readings of the memory in use.
SAMPLE_PERIOD = 0.005
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: glibc's mallopt parameters (malloc.h) and the values :func:`keep_freed_memory` sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TRIM_THRESHOLD = 2**30  # keep up to 1 GiB of free memory at the top of the heap
_MMAP_THRESHOLD = 32 * 2**20  # glibc's largest: blocks below it come from the heap


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _glibc():
    """The C library when it is glibc with ``mallinfo2`` (2.33 and later), else None."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = _MallInfo2
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        return libc
    except (AttributeError, OSError, TypeError):
        return None


_LIBC = _glibc()


def keep_freed_memory() -> bool:
    """Tell the C allocator to keep freed memory for reuse instead of returning it at once.

    By default glibc serves blocks of more than 128 KiB (a 180x180 float64 image) with fresh
    ``mmap`` calls and returns freed heap memory to the system, so each call's temporaries
    fault their pages in again: in a sweep of small images this doubled the time of the
    metrics and of many denoisers. Workers call this once, before any cell; every method
    runs under the same allocator. Returns whether the allocator could be set (glibc only).
    """
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
                and _LIBC.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


def allocated_bytes() -> int:
    """Bytes the C allocator has handed out and not taken back (the resident set size where
    the allocator cannot tell)."""
    if _LIBC is None:
        return resident_bytes()
    info = _LIBC.mallinfo2()
    return info.uordblks + info.hblkhd


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

    def begin(self) -> int:
        """Start a block; return the memory in use at its start."""
        base = allocated_bytes()
        with self._condition:
            if self._pid != os.getpid():  # first use, or a forked child without the thread
                self._pid = os.getpid()
                threading.Thread(target=self._sample, name="bench-peak-memory",
                                 daemon=True).start()
            self._active, self._peak = True, base
            self._condition.notify()
        return base

    def end(self) -> int:
        """End the block; return the most memory in use seen in it."""
        last = allocated_bytes()
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
                    self._peak = max(self._peak, allocated_bytes())


_SAMPLER = _Sampler()


class PeakMemory:
    """Measures the peak memory a block of code needs above what was in use before it.

    On the CPU a background thread samples the memory in use (:func:`allocated_bytes`) every
    :data:`SAMPLE_PERIOD` seconds (short spikes between samples can be missed); on CUDA the
    allocator's own peak counter is used. ``peak_mb`` holds the result after the block.
    Blocks measured on the CPU must not overlap within a process.

    Parameters
    ----------
    device : str
        ``"cpu"`` or ``"cuda"``.
    """

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.peak_mb = float("nan")

    def __enter__(self) -> PeakMemory:
        if self.device == "cuda":
            torch = sys.modules["torch"]
            torch.cuda.synchronize()
            self._base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            return self
        self._base = _SAMPLER.begin()
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
