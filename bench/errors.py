"""The suite's own exceptions.

Every failure a user can cause (a bad name, a missing file, a level out of range) raises a
subclass of :class:`BenchError`; the command line turns it into one red line and the exit
code :data:`EXIT_USAGE`. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: Exit status when the sweep ran but at least one cell failed or timed out.
EXIT_FAILED_CELLS = 1
#: Exit status for bad input: unknown names, missing files, invalid levels.
EXIT_USAGE = 2


class BenchError(Exception):
    """Base class of every expected failure; its message is one line for the user."""


class UnknownNameError(BenchError, KeyError):
    """A denoiser, noise or dataset name that the registry does not know."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        message = f"unknown {kind} '{name}'{hint or '.'} Known {kind}s: {', '.join(known) or 'none'}"
        super().__init__(message)
        self.kind, self.name, self.known = kind, name, known

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class MissingExtraError(BenchError):
    """A registered object whose optional dependency is not installed."""


class InvalidParameterError(BenchError, ValueError):
    """A parameter or level outside what the object accepts."""


class DataError(BenchError):
    """A dataset folder or image file that cannot be used."""


class DeviceError(BenchError):
    """A device that was asked for but is not present."""


class ResumeError(BenchError):
    """A run directory that cannot be resumed with the given sweep."""


class ConfigError(BenchError):
    """A sweep file that cannot be read or has an unknown key."""


class WeightsError(BenchError):
    """A model weights file that is missing, truncated or does not match its network."""


class WorkerStartError(BenchError):
    """Worker processes that end or stall before they are ready for cells, again and again.

    Parameters
    ----------
    message : str
        One line for the user, with the last line the worker wrote on stderr.
    stderr : str
        The last lines of that worker's stderr (usually a traceback).
    """

    def __init__(self, message: str, stderr: str = ""):
        super().__init__(message, stderr)  # both in args: the error survives pickling (Dask)
        self.stderr = stderr

    def __str__(self) -> str:
        return self.args[0]


class RunDirError(BenchError):
    """A run directory that cannot be created or opened."""


class RunDirInUseError(RunDirError):
    """A run directory that another running sweep holds (see :mod:`bench.store.lock`)."""
