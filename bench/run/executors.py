"""Where cells run: ``serial`` (this process), ``process`` (local workers) or ``dask``.

:func:`execute` runs cells on any of the three and hands each cell's result to the same
callbacks, so the runner does not care which one ran it (the sweep and its exclusive
re-timing both go through it). ``process`` and ``dask`` put every cell under the
:mod:`bench.run.supervisor` deadline and crash isolation, and end the process groups of their
workers when the run ends; ``serial`` runs in the calling process and has neither, which
makes it the one to use under a debugger.
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from bench.errors import InvalidParameterError

EXECUTORS = ("serial", "process", "dask")


def default_jobs() -> int:
    """Worker count by default: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def execute(executor: str, groups: list[list], config, on_result: Callable, on_lost: Callable,
            *, jobs: int, timeout: float, scheduler: str | None = None, registry=None) -> None:
    """Run every cell of ``groups`` on ``executor``; hand each one's outcome to the callbacks.

    Parameters
    ----------
    executor : {"serial", "process", "dask"}
        Where the cells run (see the module docstring).
    groups : list of list of Cell
        Cells grouped by noisy image; a group runs on one worker, in order.
    config : bench.run.worker.WorkerConfig
        What every worker needs besides the cells.
    on_result : callable
        ``on_result(cell, result)`` for each finished cell, where ``result`` is a
        :class:`bench.run.worker.CellResult`, or a string when the cell failed outside the
        denoiser.
    on_lost : callable
        ``on_lost(cell, status, reason)`` for a cell whose worker timed out (``"timeout"``)
        or died (``"failed"``); never called by ``serial``.
    jobs : int
        Worker processes (``process``), or workers of the local Dask cluster (``dask``
        without ``scheduler``); ``serial`` ignores it.
    timeout : float
        Seconds one cell may take, in s (``process`` and ``dask``).
    scheduler : str, optional
        Address of a running Dask scheduler (``dask`` only); a local cluster when omitted.
    registry : bench.registry.Registry, optional
        The registry ``serial`` uses in this process; workers of the other executors build
        theirs from ``config.registry_factory``.

    Raises
    ------
    bench.errors.InvalidParameterError
        For an unknown executor, or ``dask`` without dask.distributed installed.
    bench.errors.WorkerStartError
        When worker processes keep dying before they are ready (see
        :mod:`bench.run.supervisor`); cells finished before were handed to ``on_result``.
    """
    check_executor(executor)
    if executor == "serial":
        _run_serial(groups, config, on_result, registry)
    elif executor == "process":
        _run_process(groups, config, on_result, on_lost, jobs=jobs, timeout=timeout)
    else:
        _run_dask(groups, config, on_result, on_lost, jobs=jobs, timeout=timeout,
                  scheduler=scheduler)


def _run_serial(groups, config, on_result: Callable, registry=None) -> None:
    """Run every cell here, one after the other, with the thread pools pinned and the
    allocator set up as in a worker (:func:`bench.memory.keep_freed_memory`, which stays so
    in this process)."""
    from threadpoolctl import threadpool_limits

    from bench.memory import keep_freed_memory
    from bench.run.worker import CellRunner, one_line

    keep_freed_memory()
    runner = CellRunner(config, registry)
    with threadpool_limits(config.threads):
        for group in groups:
            for cell in group:
                try:
                    result = runner.run(cell)
                except Exception as error:
                    result = one_line(error)
                on_result(cell, result)


def _run_process(groups, config, on_result: Callable, on_lost: Callable, *, jobs: int,
                 timeout: float) -> None:
    """Run the cells on ``jobs`` supervised local worker processes."""
    from bench.run.supervisor import Supervisor

    supervisor = Supervisor(config, jobs, timeout)
    try:
        supervisor.run(groups, on_result, on_lost, lane=clean_image)
    finally:
        supervisor.close()


def clean_image(group: list) -> tuple[str, str]:
    """The (dataset, image) of a group's cells: a worker keeps to one while it has groups."""
    return group[0].dataset, group[0].image


#: Seconds of work a Dask task is sized to hold. Dask's own cost per task (about 6 ms of CPU
#: on the 2-core machine, half of it in the scheduler and client) is then about 1 % of it,
#: while results still reach the run directory, and the last groups still spread over the
#: workers, within about a second.
DASK_TASK_SECONDS = 0.5
#: Seconds given to reach a Dask scheduler named by its address.
DASK_CONNECT_SECONDS = 20
#: Tasks kept submitted per Dask worker thread: one running and one waiting, so that a worker
#: does not idle for a round trip to this process between two tasks.
DASK_IN_FLIGHT = 2

#: The supervisors of a Dask worker process, one per (run, thread) with one worker process
#: each, kept between the tasks of a run so that models stay loaded; closed when it ends.
_DASK_SUPERVISORS: dict = {}


class _DaskTaskReport(NamedTuple):
    """What a Dask task hands back (see :func:`_dask_task`)."""

    #: ``(cell, result)`` per finished cell, ``result`` being what ``on_result`` takes, or a
    #: ``(status, reason)`` tuple for ``on_lost``.
    results: list
    #: How many of the task's groups ran, from the first; the others go back to the queue.
    ran: int
    #: Wall time of those groups on the worker, in s.
    seconds: float
    #: Whether the task started its supervisor's worker process (its time is then no
    #: measure of the groups).
    started: bool


def _dask_task(groups, config, timeout, run: str, stop_after: float) -> _DaskTaskReport:
    """Runs on a Dask worker: ``groups`` in order under a local supervisor.

    The first group runs alone; then as many of the others at once as the rest of
    ``stop_after`` seconds holds at the pace of the first (one call keeps the supervisor's
    worker fed between groups), and so on until the time is up: a task whose groups are
    slower than its size assumed ends soon all the same, and hands back the groups it did
    not start. Each cell keeps the supervisor's own deadline.
    """
    import threading
    import time

    from bench.run.supervisor import Supervisor

    key = (run, threading.get_ident())
    supervisor = _DASK_SUPERVISORS.get(key)
    started = supervisor is None
    if started:
        supervisor = _DASK_SUPERVISORS[key] = Supervisor(config, 1, timeout)
    results: list = []
    begin, ran = time.monotonic(), 0
    while ran < len(groups):
        elapsed = time.monotonic() - begin
        if ran and elapsed >= stop_after:
            break
        count = max(1, int((stop_after - elapsed) * ran / max(elapsed, 1e-9))) if ran else 1
        supervisor.run(groups[ran:ran + count],
                       lambda cell, result: results.append((cell, result)),
                       lambda cell, status, reason: results.append((cell, (status, reason))))
        ran = min(len(groups), ran + count)
    return _DaskTaskReport(results, ran, time.monotonic() - begin, started)


class _DaskQueue:
    """The groups no Dask task holds yet, and how many the next task takes.

    Groups wait in the order given, those of one clean image (:func:`clean_image`) together,
    so that a task's groups share few images and its worker reads each once. A task takes
    the next ones: as many as :data:`DASK_TASK_SECONDS` hold at the seconds per group of the
    last task measured (one group until a task has been measured), and at most an equal share
    of what is left among the tasks that may be in flight, so that few images on many
    workers, and the end of any sweep, leave no worker idle while another has a queue. Slow
    groups thus go one per task, as if unbatched.
    """

    def __init__(self, groups: list[list]):
        images: dict[tuple[str, str], list[list]] = {}
        for group in groups:
            images.setdefault(clean_image(group), []).append(group)
        self._groups = deque(group for same in images.values() for group in same)
        self._per_group = 0.0  # seconds; 0: nothing measured yet

    def __bool__(self) -> bool:
        return bool(self._groups)

    def size(self, tasks: int) -> int:
        """Groups for the next task while ``tasks`` tasks may be in flight."""
        if self._per_group <= 0:
            return 1
        share = -(-len(self._groups) // max(1, tasks))
        return max(1, min(share, int(DASK_TASK_SECONDS / self._per_group)))

    def take(self, tasks: int) -> list[list]:
        """The next task's groups (see :meth:`size`)."""
        return [self._groups.popleft() for _ in range(self.size(tasks))]

    def put_back(self, groups: list[list]) -> None:
        """Return groups a task did not start to the front, in order."""
        self._groups.extendleft(reversed(groups))

    def measured(self, groups: int, seconds: float) -> None:
        """A task ran ``groups`` groups in ``seconds`` s on its worker."""
        if groups and seconds > 0:
            self._per_group = seconds / groups


def _close_dask_supervisors(run: str, kill: bool = False) -> int:
    """Runs on each Dask worker at the end of ``run``: close its supervisors; return how many.

    Only that run's: other sweeps may share the cluster.
    """
    keys = [key for key in list(_DASK_SUPERVISORS) if key[0] == run]
    supervisors = [_DASK_SUPERVISORS.pop(key) for key in keys]
    for supervisor in supervisors:
        supervisor.close(kill=kill)
    return len(supervisors)


def _run_dask(groups, config, on_result: Callable, on_lost: Callable, *, jobs: int,
              timeout: float, scheduler: str | None = None) -> None:
    """Run the cells on a Dask cluster: a new local one, or the one at ``scheduler``.

    Each task is a batch of groups, sized by :class:`_DaskQueue` to about
    :data:`DASK_TASK_SECONDS` of work (a single group when groups are slower), with
    :data:`DASK_IN_FLIGHT` tasks submitted per worker thread of the cluster (one task at a
    time on one Dask worker when ``config.timing`` is ``"exclusive"``); a task whose
    groups run slower than measured stops starting them after twice that time and hands the
    rest back to the queue. On the worker the groups run under a supervised child process,
    so a hung or crashing cell is stopped there and recorded, and only that cell. The child
    is a new interpreter started with :mod:`subprocess`, which Dask's daemonic worker
    processes are allowed to start. A task that fails on Dask's side (its Dask worker lost,
    after Dask's own retries) records every cell it held as failed. Before the client closes,
    every Dask worker closes its supervisors (:func:`_close_dask_supervisors`), which ends
    their processes and the process groups of the helpers they started.
    """
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InvalidParameterError(
            "--executor dask needs dask.distributed: pip install 'denoise-bench[dask]'") from None
    from bench.errors import DeviceError, WorkerStartError
    from bench.run.worker import one_line

    if scheduler:
        try:
            client, cluster = Client(scheduler, timeout=DASK_CONNECT_SECONDS), None
        except OSError as error:  # unreachable, refused, or not a scheduler
            raise DeviceError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
    else:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    run, completed, futures = uuid.uuid4().hex, False, {}
    queue, finished = _DaskQueue(groups), as_completed()
    # Timings recorded as exclusive must be taken so on any cluster, a shared one included:
    # one task at a time, on one Dask worker.
    exclusive = config.timing == "exclusive"

    def submit() -> None:
        threads = client.nthreads()  # read each time: workers may join or leave during a run
        if exclusive:
            tasks, where = 1, [min(threads)] if threads else None
        else:
            tasks, where = DASK_IN_FLIGHT * max(1, sum(threads.values())), None
        while queue and len(futures) < tasks:
            batch = queue.take(tasks)
            future = client.submit(_dask_task, batch, config, timeout, run,
                                   2 * DASK_TASK_SECONDS, pure=False, workers=where)
            futures[future] = batch
            finished.add(future)

    try:
        submit()
        for future in finished:
            batch = futures.pop(future)
            try:
                report = future.result()
            except WorkerStartError:
                raise
            except Exception as error:  # the Dask worker itself was lost
                submit()
                for group in batch:
                    for cell in group:
                        on_lost(cell, "failed", f"DaskTaskFailed: {one_line(error)}")
                continue
            queue.put_back(batch[report.ran:])
            if not report.started:
                queue.measured(report.ran, report.seconds)
            submit()  # before recording, so that the workers are kept fed meanwhile
            for cell, result in report.results:
                if isinstance(result, tuple):
                    on_lost(cell, *result)
                else:
                    on_result(cell, result)
        completed = True
    finally:
        try:
            if not completed:
                client.cancel(list(futures))
            client.run(_close_dask_supervisors, run, not completed)
        except Exception:  # a cluster already gone has nothing left to close
            pass
        client.close()
        if cluster is not None:
            cluster.close()


def check_executor(name: str) -> None:
    """Raise :class:`InvalidParameterError` for an unknown executor name."""
    if name not in EXECUTORS:
        raise InvalidParameterError(f"unknown executor '{name}'; use one of {', '.join(EXECUTORS)}")

