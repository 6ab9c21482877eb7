"""One progress bar for the runner and for training: rich on stderr, silent when disabled."""

from __future__ import annotations

from collections.abc import Callable


def describe_cell(cell) -> str:
    """A sweep cell as the bar shows it: ``"DENOISER on IMAGE"``."""
    return f"{cell.denoiser} on {cell.image}"


class ProgressBar:
    """A bar with a title, items done of total, elapsed and remaining time and one info field.

    Used as a context manager that yields the bar. Calling the bar with an item advances it
    by one and shows ``describe(item)``; :meth:`update` sets the position and info directly.
    When ``enabled`` is false nothing is shown and both do nothing.

    Parameters
    ----------
    enabled : bool
        Show the bar (the caller decides, e.g. from ``--quiet`` or ``isatty``).
    total : int
        Items (cells, steps) of the whole bar.
    done : int
        Items done by an earlier session, named in the title (``"sweep (3 done before)"``).
    title : str
        The bar's label.
    completed : int
        Position of the bar at the start (a resumed training run starts at its step).
    describe : callable
        ``describe(item) -> str`` for the info field when the bar is called with an item.
    """

    def __init__(self, enabled: bool, total: int, done: int = 0, title: str = "sweep", *,
                 completed: int = 0, describe: Callable[[object], str] = describe_cell):
        self.enabled, self.total, self.done, self.title = enabled, total, done, title
        self.completed, self.describe = completed, describe
        self._progress = self._task = None

    def __enter__(self) -> ProgressBar:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            console=Console(stderr=True), transient=False,
        )
        self._progress.__enter__()
        note = f"{self.title} ({self.done} done before)" if self.done else self.title
        self._task = self._progress.add_task(note, total=self.total, completed=self.completed,
                                             info="")
        return self

    def __call__(self, item) -> None:
        """Advance by one item and show ``describe(item)``."""
        if self._progress is not None:
            self._progress.update(self._task, advance=1, info=self.describe(item))

    def update(self, completed: int, info: str) -> None:
        """Move the bar to ``completed`` items and show ``info``."""
        if self._progress is not None:
            self._progress.update(self._task, completed=completed, info=info)

    def __exit__(self, *exc) -> bool:
        if self._progress is not None:
            self._progress.__exit__(*exc)
        return False
