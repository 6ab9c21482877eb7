"""Long-lived worker processes watched by the parent.

Process pools cannot stop one hung task or survive a worker that dies; this thin supervisor
can. Each worker runs cells one at a time and reports each as it finishes; the parent gives
every cell a deadline, kills and replaces a worker that overruns it (the cell is recorded as
``timeout``) or that dies (recorded as ``failed`` with the exit code or signal), and hands the
rest of that worker's cells to another worker. No other cell is affected.

Workers are fresh interpreters, ``python -m bench.run.worker_process`` (see that module for
the conversation), never copies or re-imports of the caller's ``__main__``: a script without
an ``if __name__ == "__main__":`` guard, ``python -`` and notebooks work. Each starts in a
process group of its own, and the whole group is killed when its worker is replaced or
stopped, so helper processes a denoiser starts (``subprocess``, a ``multiprocessing`` pool)
end with it. A helper that leaves the group on purpose (``setsid``, ``start_new_session``) is
out of reach and may outlive the sweep. The worker's stderr is copied to this process's
stderr, and its last lines kept for the error of a worker that cannot start.

Start-up failures: a worker that exits, or does not answer within the start-up limit, before
it is ready has not run any cell, so its cells go back to the queue and nothing is recorded.
When :data:`STARTUP_ATTEMPTS` workers in a row do so (any worker becoming ready resets the
count), the sweep cannot run and :meth:`Supervisor.run` raises
:class:`bench.errors.WorkerStartError` with the last line the worker wrote on stderr.

This module imports only the standard library: the parent needs nothing heavy to supervise.
"""

from __future__ import annotations

import codecs
import os
import signal
import site
import socket
import subprocess
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from multiprocessing.connection import Connection, wait

from bench.errors import WorkerStartError
from bench.run.worker_process import READY, THREAD_VARIABLES

#: Seconds given to a worker to exit after being asked to.
STOP_GRACE = 5.0
#: Seconds a new worker may take to start (interpreter, imports, registry) before a cell's
#: deadline starts counting; on a loaded machine this alone can exceed a short cell timeout.
STARTUP_LIMIT = 120.0
#: Workers in a row that may fail to start before the sweep is stopped with an error.
STARTUP_ATTEMPTS = 3
#: Lines of a worker's stderr kept for the error of a failed start.
STDERR_LINES = 20
#: Seconds between checks of workers that cannot be watched through a pidfd (not Linux).
POLL_INTERVAL = 0.25
#: Groups a worker may hold at once: the next one waits in its socket, so that it does not
#: idle for a round trip between groups (a group can be a single cell of a few milliseconds).
IN_FLIGHT = 2
#: Seconds under which a worker's last group must have finished for it to be given the next
#: one ahead; slower groups go one at a time, so that no group waits behind a long one while
#: another worker is idle.
AHEAD_BELOW = 0.5


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


def child_environment(threads: int) -> dict[str, str]:
    """The environment of a worker: this one, with its thread pools pinned to ``threads``.

    The directory holding the ``bench`` package joins ``PYTHONPATH`` only when this process
    found it through a ``sys.path`` entry that a new interpreter would not have (added at run
    time, as a notebook might): the worker must import ``bench.run.worker_process`` before it
    receives this process's ``sys.path``.
    """
    env = dict(os.environ)
    env.update({name: str(threads) for name in THREAD_VARIABLES})
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    on_path = {os.path.abspath(entry or os.curdir) for entry in sys.path}
    own = set(getattr(site, "getsitepackages", list)()) | {site.getusersitepackages()}
    if root in on_path and root not in own and root != os.getcwd():
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), root]))
    return env


class _Worker:
    """One worker process, its connection, its stderr and the cells it was given."""

    def __init__(self, config):
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.run.worker_process", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                env=child_environment(config.threads), process_group=0)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        try:
            self.pidfd = os.pidfd_open(self.process.pid)  # readable once the process ends
        except (AttributeError, OSError):
            self.pidfd = None
        os.set_blocking(self.process.stderr.fileno(), False)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._tail: deque[str] = deque(maxlen=STDERR_LINES)
        self._partial = ""
        self.groups: deque[list] = deque()  # assigned, in order; results follow this order
        self.next = 0  # index of the next result in groups[0]
        self.group_start = 0.0  # when groups[0] became the running group
        self.last_group_seconds = float("inf")
        self.ready = False
        self.deadline = float("inf")
        self.lane = None  # the key of the last group assigned (see _Pending)
        self._send(list(sys.path))
        self._send(config)

    def _send(self, message) -> None:
        """Send ``message``; a worker that is already gone is noticed by :meth:`status`."""
        try:
            self.conn.send(message)
        except (BrokenPipeError, ConnectionResetError):
            pass

    @property
    def busy(self) -> bool:
        return bool(self.groups)

    @property
    def group(self) -> list:
        """The group whose cells the worker is running now."""
        return self.groups[0]

    @property
    def capacity(self) -> int:
        """How many groups the worker may hold now (see :data:`AHEAD_BELOW`)."""
        return IN_FLIGHT if self.last_group_seconds < AHEAD_BELOW else 1

    def assign(self, group: list, timeout: float) -> None:
        if not self.groups:  # otherwise the deadline of the running cell stands
            self.next = 0
            self.group_start = time.monotonic()
            self.deadline = self.group_start + (timeout if self.ready
                                                else max(timeout, STARTUP_LIMIT))
        self.groups.append(group)
        self._send(group)

    def finish_group(self) -> None:
        """The running group has reported all its cells: the next one (if any) is running."""
        self.groups.popleft()
        self.next = 0
        now = time.monotonic()
        self.last_group_seconds, self.group_start = now - self.group_start, now

    def take_back(self) -> list[list]:
        """Unassign every group; return the cells not reported yet, as groups in order."""
        rest = [self.groups[0][self.next:], *list(self.groups)[1:]] if self.groups else []
        self.groups.clear()
        self.next = 0
        return [group for group in rest if group]

    def watched(self) -> list:
        """What :func:`multiprocessing.connection.wait` should watch for this worker."""
        objects = [self.conn] if self.busy else []
        if self.busy and self.pidfd is not None:
            objects.append(self.pidfd)
        if self.process.stderr is not None:
            objects.append(self.process.stderr)
        return objects

    def status(self) -> int | None:
        """The exit status (negative: the signal), or None while the worker runs.

        The process is not reaped, so its process group id stays ours until :meth:`end`.
        """
        if self.process.returncode is not None:
            return self.process.returncode
        try:
            info = os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped behind our back
            return self.process.poll()
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def pump(self) -> None:
        """Copy what the worker wrote on stderr to ours, keeping its last lines."""
        while self.process.stderr is not None:
            try:
                data = os.read(self.process.stderr.fileno(), 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:  # end of file: the worker and everything it started are gone
                self.process.stderr.close()
                self.process.stderr = None
                return
            text = self._decoder.decode(data)
            try:
                sys.stderr.write(text)
                sys.stderr.flush()
            except (AttributeError, OSError, ValueError):  # no stderr here, or a closed one
                pass
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
            self._tail.extend(lines)

    def stderr_tail(self) -> list[str]:
        """The last non-blank lines the worker wrote on stderr."""
        return [line.rstrip() for line in [*self._tail, self._partial] if line.strip()]

    def wait_exit(self, seconds: float) -> None:
        """Wait up to ``seconds`` for the worker to exit (without reaping it)."""
        if self.pidfd is not None:
            wait([self.pidfd], timeout=seconds)
            return
        end = time.monotonic() + seconds
        while self.status() is None and time.monotonic() < end:
            time.sleep(0.01)

    def end(self, grace: float = 0.0) -> None:
        """Give the worker ``grace`` seconds to exit, then kill its process group; clean up."""
        if grace > 0:
            self.wait_exit(grace)
        try:  # the leader is not reaped yet, so the group id cannot name anyone else's group
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:  # stuck in the kernel; the signal is pending
            pass
        self.pump()
        if self.process.stderr is not None:
            self.process.stderr.close()
            self.process.stderr = None
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        self.conn.close()

    def ask_to_stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass


class _Pending:
    """The groups waiting for a worker, in lanes by a key (the clean image of their cells).

    A worker is given the next group of its own lane while there is one, else the first lane
    no other worker is on: each worker then reads and decodes each image it runs once, where
    taking the groups strictly in order had every worker read almost every image. Without a
    key there is one lane, in order.
    """

    def __init__(self, groups: list[list], lane: Callable | None):
        self._lane = lane or (lambda group: None)
        self._lanes: OrderedDict[object, deque] = OrderedDict()
        for group in groups:
            self._lanes.setdefault(self._lane(group), deque()).append(group)

    def __bool__(self) -> bool:
        return bool(self._lanes)

    def take(self, own, others: set):
        """The next group for a worker on lane ``own`` while workers are on ``others``;
        returns (its lane, the group)."""
        if own not in self._lanes:
            own = next((key for key in self._lanes if key not in others), next(iter(self._lanes)))
        lane = self._lanes[own]
        group = lane.popleft()
        if not lane:
            del self._lanes[own]
        return own, group

    def put_back(self, groups: list[list]) -> None:
        """Return unfinished ``groups`` (in order) to the front of their lanes and the queue."""
        for group in reversed(groups):
            key = self._lane(group)
            self._lanes.setdefault(key, deque()).appendleft(group)
            self._lanes.move_to_end(key, last=False)


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
        self._workers: list[_Worker] = []
        self._failed_starts = 0
        self._closed = False

    def run(self, groups: list[list], on_result: Callable, on_lost: Callable,
            lane: Callable | None = None) -> None:
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
        lane : callable, optional
            ``lane(group)``, a hashable key: a worker keeps to the groups of one key while
            there are any (the clean image, which it then reads once). None: in order.

        Raises
        ------
        bench.errors.WorkerStartError
            When :data:`STARTUP_ATTEMPTS` workers in a row end before they are ready.
        """
        pending = _Pending(groups, lane)
        try:
            while len(self._workers) < min(self.jobs, len(groups)):
                self._workers.append(self._start())
            while pending or any(w.busy for w in self._workers):
                self._assign(pending)
                busy = [w for w in self._workers if w.busy]
                wait_for = max(0.0, min(w.deadline for w in busy) - time.monotonic())
                if any(w.pidfd is None for w in busy):
                    wait_for = min(wait_for, POLL_INTERVAL)
                wait([item for w in self._workers for item in w.watched()], timeout=wait_for)
                for worker in self._workers:
                    worker.pump()
                for worker in busy:
                    self._collect(worker, on_result)
                    if worker.busy:
                        self._check(worker, pending, on_lost)
        except BaseException:
            self._end_workers(kill=True)
            raise

    def _assign(self, pending: _Pending) -> None:
        """Give idle workers a group each, then the next groups ahead to fast workers."""
        for position, worker in enumerate(self._workers):
            if not worker.busy and pending:
                if worker.status() is not None:  # died while idle: replace it
                    worker.end()
                    worker = self._workers[position] = self._start()
                self._give(worker, pending)
        for worker in self._workers:
            while pending and len(worker.groups) < worker.capacity:
                self._give(worker, pending)

    def _give(self, worker: _Worker, pending: _Pending) -> None:
        others = {other.lane for other in self._workers if other is not worker and other.busy}
        worker.lane, group = pending.take(worker.lane, others)
        worker.assign(group, self.timeout)

    def _start(self) -> _Worker:
        if self._closed:
            raise RuntimeError("this supervisor was closed")
        return _Worker(self.config)

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
                self._failed_starts = 0
                continue
            index, result = message
            on_result(worker.group[index], result)
            worker.next = index + 1
            worker.deadline = time.monotonic() + self.timeout
            if worker.next == len(worker.group):
                worker.finish_group()

    def _check(self, worker: _Worker, pending: _Pending, on_lost: Callable) -> None:
        status = worker.status()
        if status is None and time.monotonic() <= worker.deadline:
            return
        if not worker.ready:
            self._failed_start(worker, status, pending)
            return
        cell = worker.group[worker.next]
        worker.next += 1
        rest = worker.take_back()
        if status is not None:
            on_lost(cell, "failed", "WorkerDied: the worker process died "
                                    f"({describe_exit(status)}) while running this cell")
        else:
            on_lost(cell, "timeout", f"Timeout: no result after {self.timeout:g} s; worker killed")
        worker.end()
        pending.put_back(rest)
        self._workers[self._workers.index(worker)] = self._start()

    def _failed_start(self, worker: _Worker, status: int | None, pending: _Pending) -> None:
        """A worker that ended or stalled before READY: requeue its cells; give up at the limit."""
        pending.put_back(worker.take_back())
        worker.end()
        self._failed_starts += 1
        if self._failed_starts >= STARTUP_ATTEMPTS:
            how = (f"ended ({describe_exit(status)})" if status is not None else
                   f"did not start within {max(self.timeout, STARTUP_LIMIT):g} s")
            tail = worker.stderr_tail()
            last = (f"the last one wrote on stderr: {tail[-1]}" if tail
                    else "the last one wrote nothing on stderr")
            raise WorkerStartError(
                f"worker processes cannot start: {self._failed_starts} in a row {how} before "
                f"they were ready; {last}", "\n".join(tail))
        self._workers[self._workers.index(worker)] = self._start()

    def _end_workers(self, *, kill: bool) -> None:
        workers, self._workers = self._workers, []
        if not kill:
            for worker in workers:
                worker.ask_to_stop()
        for worker in workers:
            worker.end(0.0 if kill else STOP_GRACE)

    def close(self, *, kill: bool = False) -> None:
        """Stop every worker and end its process group (at once when ``kill``).

        A closed supervisor starts no new worker.
        """
        self._closed = True
        self._end_workers(kill=kill)
