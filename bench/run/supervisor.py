"""Long-lived worker processes watched by the parent.

Process pools cannot stop one hung task or survive a worker that dies; this thin supervisor
can. Each worker runs cells one at a time and reports each as it finishes; the parent gives
every cell a deadline, kills and replaces a worker that overruns it (the cell is recorded as
``timeout``) or that dies (recorded as ``failed`` with the exit code or signal), and hands the
rest of that worker's cells to another worker. No other cell is affected.

This module imports only the standard library at the top: worker processes are started with
the ``spawn`` method and must pin their thread pools before numpy, OpenCV or torch load.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import wait

#: Seconds given to a worker to exit after being asked to.
STOP_GRACE = 5.0
#: Seconds a new worker may take to start (interpreter, imports, registry) before a cell's
#: deadline starts counting; on a loaded machine this alone can exceed a short cell timeout.
STARTUP_LIMIT = 120.0
#: What a worker sends once it is ready for cells.
READY = "ready"


def _worker_main(conn, config) -> None:
    from bench.run.worker import CellRunner, pin_threads

    pin_threads(config.threads)
    runner = CellRunner(config)
    conn.send(READY)
    while True:
        try:
            group = conn.recv()
        except (EOFError, OSError):
            return
        if group is None:
            return
        for index, cell in enumerate(group):
            try:
                result = runner.run(cell)
            except Exception as error:  # outside the denoiser: noise or data plugin bugs
                from bench.run.worker import one_line

                result = one_line(error)
            conn.send((index, result))


def describe_exit(exitcode: int | None) -> str:
    """``exit code N`` or ``signal NAME`` for a finished process."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


class _Worker:
    def __init__(self, context, config):
        parent, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, config), daemon=True)
        self.process.start()
        child.close()
        self.conn = parent
        self.group: list | None = None
        self.next = 0
        self.ready = False
        self.deadline = float("inf")

    @property
    def busy(self) -> bool:
        return self.group is not None

    def assign(self, group: list, timeout: float) -> None:
        self.group, self.next = group, 0
        self.deadline = time.monotonic() + (timeout if self.ready else max(timeout, STARTUP_LIMIT))
        self.conn.send(group)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(STOP_GRACE)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(STOP_GRACE)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(STOP_GRACE)
        self.conn.close()


class Supervisor:
    """Runs groups of cells on ``jobs`` worker processes with a per-cell deadline.

    Parameters
    ----------
    config : bench.run.worker.WorkerConfig
        Passed to every worker.
    jobs : int
        Number of worker processes.
    timeout : float
        Seconds one cell may take (its denoiser's set-up and warm-up included) before its
        worker is killed and the cell recorded as ``timeout``. A new worker's own start-up
        (up to :data:`STARTUP_LIMIT`) does not count.
    """

    def __init__(self, config, jobs: int, timeout: float):
        self.config, self.jobs, self.timeout = config, max(1, jobs), timeout
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []

    def run(self, groups: list[list], on_result: Callable, on_lost: Callable) -> None:
        """Run every cell of ``groups``.

        Parameters
        ----------
        groups : list of list of Cell
            Cells grouped by noisy image; a group goes to one worker.
        on_result : callable
            ``on_result(cell, result)`` for each finished cell, where ``result`` is a
            :class:`bench.run.worker.CellResult`, or a string when the cell failed outside the
            denoiser.
        on_lost : callable
            ``on_lost(cell, status, reason)`` for a cell whose worker timed out or died.
        """
        pending = deque(groups)
        while len(self._workers) < min(self.jobs, len(pending)):
            self._workers.append(_Worker(self._context, self.config))
        try:
            while pending or any(w.busy for w in self._workers):
                for position, worker in enumerate(self._workers):
                    if not worker.busy and pending:
                        if not worker.process.is_alive():  # died while idle: replace it
                            worker.kill()
                            worker = self._workers[position] = _Worker(self._context, self.config)
                        worker.assign(pending.popleft(), self.timeout)
                busy = [w for w in self._workers if w.busy]
                now = time.monotonic()
                wait_for = max(0.0, min(w.deadline for w in busy) - now)
                wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=wait_for)
                for worker in busy:
                    self._collect(worker, on_result)
                    if worker.busy:
                        self._check(worker, pending, on_lost)
        except BaseException:
            self.close(kill=True)
            raise

    def _collect(self, worker: _Worker, on_result: Callable) -> None:
        while worker.busy:
            try:
                if not worker.conn.poll():
                    return
                message = worker.conn.recv()
            except (EOFError, OSError):
                return
            if message == READY:  # the first cell's deadline starts now
                worker.ready = True
                worker.deadline = time.monotonic() + self.timeout
                continue
            index, result = message
            on_result(worker.group[index], result)
            worker.next = index + 1
            worker.deadline = time.monotonic() + self.timeout
            if worker.next == len(worker.group):
                worker.group = None

    def _check(self, worker: _Worker, pending: deque, on_lost: Callable) -> None:
        dead = not worker.process.is_alive()
        overdue = time.monotonic() > worker.deadline
        if not (dead or overdue):
            return
        cell, rest = worker.group[worker.next], worker.group[worker.next + 1:]
        if dead:
            worker.process.join()
            on_lost(cell, "failed",
                    f"WorkerDied: the worker process died ({describe_exit(worker.process.exitcode)}) "
                    "while running this cell")
        elif not worker.ready:
            on_lost(cell, "timeout", f"Timeout: the worker process did not start within "
                                     f"{max(self.timeout, STARTUP_LIMIT):g} s; worker killed")
        else:
            on_lost(cell, "timeout", f"Timeout: no result after {self.timeout:g} s; worker killed")
        worker.kill()
        if rest:
            pending.appendleft(rest)
        self._workers[self._workers.index(worker)] = _Worker(self._context, self.config)

    def close(self, *, kill: bool = False) -> None:
        """Stop every worker (kill them at once when ``kill``)."""
        for worker in self._workers:
            worker.kill() if kill else worker.stop()
        self._workers = []
