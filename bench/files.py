"""Atomic file writing: a reader sees the old file or the new one, never half of one.

Every file the suite rewrites in place (manifests, result tables, reports, checkpoints) is
written to ``NAME.tmp`` beside it and renamed over ``NAME`` with :func:`os.replace`, which
is atomic on POSIX and Windows when both paths are on one file system.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    Parameters
    ----------
    path : str or path-like
        The file to (re)write; its folder must exist.

    Yields
    ------
    Path
        ``path`` with ``.tmp`` appended to its name, for the caller to write. When the block
        raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_atomic(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`replacing`).

    Parameters
    ----------
    path : str or path-like
        Destination file; its folder must exist.
    text : str
        The whole new content.
    encoding : str
        Text encoding (UTF-8 by default).
    """
    with replacing(path) as tmp:
        tmp.write_text(text, encoding=encoding)
