"""One sweep at a time per run directory: an exclusive ``flock`` on a file inside it.

Two sweeps writing the same ``cells.jsonl`` would interleave records and run cells twice.
:class:`RunDirLock` takes ``fcntl.flock(LOCK_EX | LOCK_NB)`` on :data:`LOCK_FILE` in the run
directory for as long as a sweep writes there; a second sweep is refused at once with the
holder's PID and host. The kernel drops the lock when its holder's file descriptor closes,
however the holder ends (``kill -9`` included), so a stale lock file never blocks a resume:
only the PID and host written in it stay, and they serve the error message only.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path

from bench.errors import RunDirError, RunDirInUseError

#: Name of the lock file inside the run directory.
LOCK_FILE = ".lock"


def make_run_dir(run_dir: str | os.PathLike) -> Path:
    """Create ``run_dir`` (and its parents) if missing; return it as a Path.

    Raises
    ------
    bench.errors.RunDirError
        When the path, or one of its parents, is an existing file, or cannot be created.
    """
    path = Path(run_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunDirError(f"run directory '{path}' names an existing file; "
                          "use another --out") from None
    except NotADirectoryError:
        raise RunDirError(f"run directory '{path}': a parent of it is a file, not a folder; "
                          "use another --out") from None
    except OSError as error:
        raise RunDirError(f"cannot create run directory '{path}': {error.strerror}") from None
    return path


class RunDirLock:
    """An exclusive lock on a run directory, held from :meth:`acquire` to :meth:`release`.

    Use it as a context manager (``with RunDirLock(run_dir): ...``) or call the two methods.
    The run directory is created if missing.

    Parameters
    ----------
    run_dir : str or Path
        The run directory to lock.

    Notes
    -----
    The lock is an advisory ``flock(2)`` on an open file description: a second lock in the
    same process, on a file descriptor of its own, conflicts with the first, and a child
    started with ``os.fork`` shares the holder's (the descriptor is not inherited across
    ``exec``). ``flock`` is unreliable on NFS and other network file systems (depending on
    the client it is local to one machine, or emulated with byte-range locks), so two
    machines sharing a run directory over NFS may not see each other's lock.
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or fail at once.

        Raises
        ------
        bench.errors.RunDirInUseError
            When another process (or another :class:`RunDirLock`) holds it; the message
            names the holder's PID and host.
        bench.errors.RunDirError
            When the run directory cannot be created, or the lock file cannot be opened.
        """
        if self._fd is not None:
            raise RuntimeError(f"this lock on '{self.run_dir}' is already held")
        make_run_dir(self.run_dir)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise RunDirError(f"cannot open the lock file '{self.path}': "
                              f"{error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _read_holder(fd)
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirInUseError(f"run directory '{self.run_dir}' is in use by {holder}; "
                                       "wait for it or use another --out") from None
            raise RunDirError(f"cannot lock run directory '{self.run_dir}': "
                              f"{error.strerror}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (nothing happens when it is not held). The lock file stays."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # the holder is gone; a reader must not name it
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> RunDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    """``PID N on HOST`` from the lock file, or a vaguer phrase while it is being written."""
    try:
        pid, host = os.pread(fd, 512, 0).decode("utf-8", "replace").split()
        return f"PID {int(pid)} on {host}"
    except (OSError, ValueError):
        return "another process"
