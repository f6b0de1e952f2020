"""Writing files so that a reader never sees half of one: write a temporary file beside it, then rename it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8 (newlines as given), replacing any file there in one step.

    The text goes to a temporary file in the same folder (``.<name>-….tmp``), which is renamed over ``path``
    (``os.replace``, atomic on POSIX and Windows); on any failure the temporary file is removed and ``path`` is
    left as it was.

    Args:
        path: the file to write; its folder must exist.
        text: the whole content.
    """
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


__all__ = ["atomic_write_text"]
