"""Denoisers that start helper processes, for checks that a sweep leaves nothing running.

Build the registry with ``registry_factory="forking_denoisers:make_registry"`` (tests/plugins
is on ``sys.path`` under pytest; workers receive the parent's path). Each helper's PID
is written as an empty file named after it into ``$BENCH_HELPER_DIR`` when that is set, so a
test can tell that helpers were started at all.
"""

import multiprocessing
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.interfaces import Denoiser

#: Seconds the ``sleep`` helper would live if nobody ended it.
HELPER_SECONDS = 600


def _note(pid: int) -> None:
    folder = os.environ.get("BENCH_HELPER_DIR")
    if folder:
        (Path(folder) / str(pid)).touch()


def start_sleep() -> subprocess.Popen:
    """Start ``sleep 600`` as a child of this process and note its PID."""
    helper = subprocess.Popen(["sleep", str(HELPER_SECONDS)])
    _note(helper.pid)
    return helper


@dataclass
class StartsSleep(Denoiser):
    """Starts ``sleep 600`` on its first call and leaves it running; returns its input."""

    name = "starts_sleep"

    def __post_init__(self):
        self.helper = None

    def _denoise(self, noisy, sigma):
        if self.helper is None:
            self.helper = start_sleep()
        return noisy


@dataclass
class StartsPool(Denoiser):
    """Uses a ``multiprocessing`` pool of two forked processes that it never closes."""

    name = "starts_pool"

    def __post_init__(self):
        self.pool = None

    def _denoise(self, noisy, sigma):
        if self.pool is None:
            self.pool = multiprocessing.get_context("fork").Pool(2)
            for pid in self.pool.map(_pid, range(4)):
                _note(pid)
        return noisy


def _pid(_) -> int:
    time.sleep(0.05)  # so that both pool processes take a task
    return os.getpid()


@dataclass
class SleepsAndHangs(Denoiser):
    """Starts ``sleep 600``, then hangs until its worker is stopped for the timeout."""

    name = "sleeps_and_hangs"

    def _denoise(self, noisy, sigma):
        start_sleep()
        time.sleep(3600)
        return noisy


@dataclass
class SleepsAndExits(Denoiser):
    """Starts ``sleep 600``, then ends its worker process abruptly (exit status 3)."""

    name = "sleeps_and_exits"

    def _denoise(self, noisy, sigma):
        start_sleep()
        os._exit(3)


TARGETS = {"starts_sleep": "StartsSleep", "starts_pool": "StartsPool",
           "sleeps_and_hangs": "SleepsAndHangs", "sleeps_and_exits": "SleepsAndExits"}


def make_registry():
    """The built-ins plus the forking denoisers, attributed to a fake plugin."""
    from bench.catalog import register_builtins
    from bench.registry import Registry

    registry = Registry()
    register_builtins(registry)
    with registry.registering_as("forking-denoisers", "0"):
        for name, cls in TARGETS.items():
            registry.add("denoiser", name, f"forking_denoisers:{cls}", "starts helper processes")
    return registry


def fails_in_workers():
    """:func:`make_registry` in the first process that calls it; an error in every other one.

    The runner builds its registry before it starts workers, so the sweep is planned and
    every worker then fails at start-up, as with a plugin that cannot load there.
    """
    if os.environ.setdefault("FORKING_DENOISERS_PARENT", str(os.getpid())) != str(os.getpid()):
        raise ImportError("forking_denoisers: this registry cannot be built in a worker")
    return make_registry()


def fails_after_first_worker():
    """Like :func:`fails_in_workers`, but the first worker process starts normally.

    Workers are counted with files in ``$BENCH_HELPER_DIR/starts``.
    """
    if os.environ.setdefault("FORKING_DENOISERS_PARENT", str(os.getpid())) != str(os.getpid()):
        starts = Path(os.environ["BENCH_HELPER_DIR"]) / "starts"
        starts.mkdir(exist_ok=True)
        (starts / str(os.getpid())).touch()
        if len(list(starts.iterdir())) > 1:
            raise ImportError("forking_denoisers: only the first worker may start")
    return make_registry()
