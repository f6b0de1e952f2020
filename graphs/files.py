"""Writing files so that a reader never sees half of one: write a temporary file beside it, then rename it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Have ``write`` fill a temporary file beside ``path``, then put it at ``path`` in one step.

    The temporary file is in the same folder (``.<name>-….tmp``) and renamed over ``path`` (``os.replace``,
    atomic on POSIX and Windows); on any failure it is removed and ``path`` is left as it was.

    Args:
        path: the file to write; its folder must exist.
        write: writes the whole content to the path it is given (a Parquet writer, say).
    """
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8 (newlines as given) with :func:`atomic_write`."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8", newline=""))


__all__ = ["atomic_write", "atomic_write_text"]
