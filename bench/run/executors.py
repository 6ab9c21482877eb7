"""Where cells run: ``serial`` (this process), ``process`` (local workers) or ``dask``.

All three hand each cell's result to the same callbacks, so the runner does not care which
one ran it. ``process`` and ``dask`` put every cell under the :mod:`bench.run.supervisor`
deadline and crash isolation; ``serial`` runs in the calling process and has neither, which
makes it the one to use under a debugger.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from bench.errors import InvalidParameterError

EXECUTORS = ("serial", "process", "dask")


def default_jobs() -> int:
    """Worker count by default: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run_serial(groups, config, on_result: Callable, registry=None) -> None:
    """Run every cell here, one after the other, with the thread pools pinned."""
    from threadpoolctl import threadpool_limits

    from bench.run.worker import CellRunner, one_line

    runner = CellRunner(config, registry)
    with threadpool_limits(config.threads):
        for group in groups:
            for cell in group:
                try:
                    result = runner.run(cell)
                except Exception as error:
                    result = one_line(error)
                on_result(cell, result)


def run_process(groups, config, on_result: Callable, on_lost: Callable, *, jobs: int,
                timeout: float) -> None:
    """Run the cells on ``jobs`` supervised local worker processes."""
    from bench.run.supervisor import Supervisor

    supervisor = Supervisor(config, jobs, timeout)
    try:
        supervisor.run(groups, on_result, on_lost)
    finally:
        supervisor.close()


#: One supervisor (with one worker process) per Dask worker process, kept between tasks so
#: that models stay loaded.
_DASK_SUPERVISORS: dict = {}


def _dask_task(group, config, timeout):
    """Runs on a Dask worker: the group's cells under a local supervisor; returns their results."""
    from bench.run.supervisor import Supervisor

    supervisor = _DASK_SUPERVISORS.get(config)
    if supervisor is None:
        supervisor = _DASK_SUPERVISORS[config] = Supervisor(config, 1, timeout)
    results = []
    supervisor.run([group], lambda cell, result: results.append((cell, result)),
                   lambda cell, status, reason: results.append((cell, (status, reason))))
    return results


def run_dask(groups, config, on_result: Callable, on_lost: Callable, *, jobs: int,
             timeout: float, scheduler: str | None = None) -> None:
    """Run the cells on a Dask cluster: a new local one, or the one at ``scheduler``.

    Each task is one group of cells (one noisy image); on the worker it runs under a
    supervised child process, so a hung or crashing cell is stopped there and recorded. Dask
    workers must therefore be allowed children: start them with
    ``DASK_DISTRIBUTED__WORKER__DAEMON=False`` (the local cluster made here does this).
    """
    try:
        import dask
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InvalidParameterError(
            "--executor dask needs dask.distributed: pip install 'denoise-bench[dask]'") from None

    with dask.config.set({"distributed.worker.daemon": False}):
        if scheduler:
            client, cluster = Client(scheduler, timeout="20s"), None
        else:
            cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
    try:
        futures = {client.submit(_dask_task, group, config, timeout, pure=False): group
                   for group in groups}
        for future in as_completed(futures):
            group = futures[future]
            try:
                results = future.result()
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
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def check_executor(name: str) -> None:
    """Raise :class:`InvalidParameterError` for an unknown executor name."""
    if name not in EXECUTORS:
        raise InvalidParameterError(f"unknown executor '{name}'; use one of {', '.join(EXECUTORS)}")


def execute(executor: str, groups, config, on_result: Callable, on_lost: Callable, *,
            jobs: int, timeout: float, scheduler: str | None = None, registry=None) -> None:
    """Run ``groups`` of cells on ``executor`` ("serial", "process" or "dask")."""
    check_executor(executor)
    if executor == "serial":
        run_serial(groups, config, on_result, registry)
    elif executor == "process":
        run_process(groups, config, on_result, on_lost, jobs=jobs, timeout=timeout)
    else:
        run_dask(groups, config, on_result, on_lost, jobs=jobs, timeout=timeout,
                 scheduler=scheduler)
