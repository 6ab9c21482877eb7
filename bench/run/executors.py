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
from collections.abc import Callable

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


#: The supervisors of a Dask worker process, one per (run, thread) with one worker process
#: each, kept between the tasks of a run so that models stay loaded; closed when it ends.
_DASK_SUPERVISORS: dict = {}


def _dask_task(group, config, timeout, run: str):
    """Runs on a Dask worker: the group's cells under a local supervisor; returns their results."""
    import threading

    from bench.run.supervisor import Supervisor

    key = (run, threading.get_ident())
    supervisor = _DASK_SUPERVISORS.get(key)
    if supervisor is None:
        supervisor = _DASK_SUPERVISORS[key] = Supervisor(config, 1, timeout)
    results = []
    supervisor.run([group], lambda cell, result: results.append((cell, result)),
                   lambda cell, status, reason: results.append((cell, (status, reason))))
    return results


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

    Each task is one group of cells (one noisy image); on the worker it runs under a
    supervised child process, so a hung or crashing cell is stopped there and recorded. The
    child is a new interpreter started with :mod:`subprocess`, which Dask's daemonic worker
    processes are allowed to start. Before the client closes, every Dask worker closes its
    supervisors (:func:`_close_dask_supervisors`), which ends their processes and the
    process groups of the helpers they started.
    """
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InvalidParameterError(
            "--executor dask needs dask.distributed: pip install 'denoise-bench[dask]'") from None
    from bench.errors import WorkerStartError

    if scheduler:
        client, cluster = Client(scheduler, timeout="20s"), None
    else:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    run, completed, futures = uuid.uuid4().hex, False, {}
    try:
        futures = {client.submit(_dask_task, group, config, timeout, run, pure=False): group
                   for group in groups}
        for future in as_completed(futures):
            group = futures[future]
            try:
                results = future.result()
            except WorkerStartError:
                raise
            except Exception as error:  # the Dask worker itself was lost
                from bench.run.worker import one_line

                for cell in group:
                    on_lost(cell, "failed", f"DaskTaskFailed: {one_line(error)}")
                continue
            for cell, result in results:
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

