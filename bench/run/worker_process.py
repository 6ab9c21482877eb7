"""The worker process of :mod:`bench.run.supervisor`: ``python -m bench.run.worker_process FD``.

A fresh interpreter, never a copy or a re-import of the caller's ``__main__``: a sweep started
from a script without an ``if __name__ == "__main__":`` guard, from ``python -`` or from a
notebook runs the same as from ``bench run``. ``FD`` is this end of a socket pair; the
conversation on it, as pickled :mod:`multiprocessing.connection` messages:

1. the parent sends its ``sys.path`` (a list of str), which is put before this interpreter's
   own, so that plugin modules the parent could import are found here too;
2. the parent sends the :class:`bench.run.worker.WorkerConfig`; the worker pins its thread
   pools, builds its :class:`bench.run.worker.CellRunner` and answers :data:`READY`;
3. then, for each list of cells it receives, ``(index, result)`` per cell as it finishes;
   ``None`` (or the parent's end closing) ends the worker.

The parent starts this process in a process group of its own and ends the whole group when
it replaces or stops the worker; the worker does the same itself when its parent goes away
(see :func:`watch_parent`). Until step 2, only the standard library is imported: the thread
variables (:data:`THREAD_VARIABLES`, set by the parent in this process's environment) must be
in place before numpy, OpenCV or torch load.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection

#: What a worker sends once it is ready for cells.
READY = "ready"
#: Environment variables that size native thread pools (BLAS/OpenMP, numexpr, Accelerate).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
#: Seconds between two checks that the parent process is still there.
PARENT_CHECK_INTERVAL = 1.0


def end_own_group() -> None:
    """Kill this process and every process of its group, if this process leads the group.

    A worker started by the supervisor leads its own group (``process_group=0``); one started
    any other way is never the leader of someone else's group, so nothing else is touched.
    """
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(1)


def watch_parent(interval: float = PARENT_CHECK_INTERVAL) -> threading.Thread:
    """Start a daemon thread that ends this process group once the parent process is gone.

    When the parent is killed (``kill -9`` of ``bench run``, a lost Dask worker), a worker
    busy with a long or hung cell, and the helpers its denoiser started, would otherwise run
    on as orphans. The thread notices the change of parent within ``interval`` seconds.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        end_own_group()

    thread = threading.Thread(target=watch, name="bench-parent-watch", daemon=True)
    thread.start()
    return thread


def serve(conn: Connection) -> None:
    """Run the conversation described in the module docstring on ``conn``."""
    parent_path = conn.recv()
    sys.path[:] = list(parent_path) + [entry for entry in sys.path if entry not in parent_path]
    config = conn.recv()  # the first import of numpy happens here, through bench.run.worker
    from bench.memory import keep_freed_memory
    from bench.run.worker import CellRunner, one_line, pin_threads

    pin_threads(config.threads)
    keep_freed_memory()
    runner = CellRunner(config)
    conn.send(READY)
    while True:
        group = conn.recv()
        if group is None:
            return
        for index, cell in enumerate(group):
            try:
                result = runner.run(cell)
            except Exception as error:  # outside the denoiser: noise or data plugin bugs
                result = one_line(error)
            conn.send((index, result))


def main(argv: list[str]) -> None:
    """Entry point: ``argv`` is ``[FD]``, the inherited end of the socket pair."""
    conn = Connection(int(argv[0]))
    watch_parent()
    try:
        serve(conn)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        end_own_group()  # the parent closed its end or died: nothing of ours may stay
    finally:
        conn.close()


if __name__ == "__main__":
    main(sys.argv[1:])
