"""The run directory: one experiment, written by one process at a time.

:func:`open_run_directory` takes the directory's lock (:class:`RunDirectoryLock`), opens its store, refuses a
store of another schema version, and compares the config's fingerprint (:func:`graphs.records.config_fingerprint`)
with the one the directory was made with. A resume under another config is refused with the fields that changed
(:class:`ConfigChanged`), unless the caller allows those fields to change or asks for a fresh sibling directory
(``RUN-2``, ``RUN-3``, …; the first that is new or was made by this very config). Readers (``analyze``, ``report``,
``export``) take no lock and read while a run writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graphs.records import LOCK_FILENAME, STORE_FILENAME, allowed, changed_fields
from graphs.store import RunDirectoryError, StoreError, TranscriptStore

__all__ = ["ConfigChanged", "RunDirectory", "RunDirectoryLock", "make_run_directory", "open_run_directory"]


def make_run_directory(run_dir: Path) -> None:
    """Create the run directory (and its parents), or raise a one-line :class:`StoreError`."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{run_dir}: cannot create the run directory: {exc.strerror}") from None


class RunDirectoryLock:
    """An exclusive lock on a run directory, held by the one process that writes it.

    ``flock`` on ``RUN_DIR/.tribunal.lock``, which holds the holder's pid: the kernel releases it when the process
    exits, however it exits (a crash or ``kill -9`` included), so a stale lock never blocks the next run. The lock
    belongs to the open file, so a second writer in the same process is refused too.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILENAME
        self._fd: int | None = None

    def acquire(self) -> RunDirectoryLock:
        """Take the lock (creating the directory), or raise :class:`RunDirectoryError` naming the holder's pid."""
        make_run_directory(self.run_dir)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"{self.run_dir}: cannot lock the run directory: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunDirectoryError(
                f"{self.run_dir}: another tribunal process (pid {holder}) is writing this run directory; wait for "
                "it to finish or stop it, then run again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunDirectoryLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class ConfigChanged(RunDirectoryError):
    """The run directory was made by another config; ``fields`` are the fingerprint fields that differ."""

    def __init__(self, run_dir: Path, fields: Sequence[str]) -> None:
        self.run_dir = run_dir
        self.fields = list(fields)
        super().__init__(
            f"{run_dir}: made by another config (changed: {shown_fields(self.fields)}); run with --new-run-dir to "
            "write a fresh directory beside it, or --allow-config-change FIELD for a change you know is safe"
        )


def shown_fields(fields: Sequence[str], most: int = 8) -> str:
    """Field names for a one-line message: the first ``most``, then how many more."""
    more = f" and {len(fields) - most} more" if len(fields) > most else ""
    return ", ".join(fields[:most]) + more


@dataclass
class RunDirectory:
    """A locked, checked run directory and its open store.

    Attributes:
        path: the directory written.
        store: its transcript store.
        allowed_changes: fingerprint fields that differ from the directory's and that the caller allowed.
        moved_from: the directory asked for, when another config had made it and ``path`` is a sibling.
        refused_changes: the fields that sent the run to the sibling.
        created: the directory did not exist before.
    """

    path: Path
    store: TranscriptStore
    lock: RunDirectoryLock
    allowed_changes: list[str] = field(default_factory=list)
    moved_from: Path | None = None
    refused_changes: list[str] = field(default_factory=list)
    created: bool = False

    def close(self, *, remove: bool = False) -> None:
        """Close the store and release the lock; ``remove`` deletes a directory this run created (bad input
        leaves nothing behind)."""
        try:
            self.store.close()
            if remove and self.created:
                shutil.rmtree(self.path, ignore_errors=True)
        finally:
            self.lock.release()


def open_run_directory(
    run_dir: Path, fingerprint: dict[str, str], *, new_run_dir: bool = False, allow: Sequence[str] = ()
) -> RunDirectory:
    """Lock and open the run directory made by this config (or a fresh sibling, with ``new_run_dir``).

    A directory with no fingerprint yet (new) takes this one; with ``allow``, the directory takes the new
    fingerprint after the allowed changes.

    Raises:
        RunDirectoryError: another process holds the lock, or an older tribunal made the store.
        ConfigChanged: another config made the directory, and neither ``new_run_dir`` nor ``allow`` covers it.
    """
    candidate, index, refused = Path(run_dir), 1, None
    while True:
        created = not candidate.exists()
        if candidate != run_dir and not created and not _is_run_directory(candidate):
            index += 1  # a sibling that is something else: leave it alone
            candidate = Path(run_dir).with_name(f"{Path(run_dir).name}-{index}")
            continue
        lock = RunDirectoryLock(candidate).acquire()
        try:
            store = TranscriptStore.open(candidate)
        except BaseException:
            lock.release()
            raise
        opened = RunDirectory(candidate, store, lock, created=created)
        try:
            store.require_current_schema()
            stored = store.fingerprint()
            changed = changed_fields(stored, fingerprint) if stored is not None else []
            covered, refused_now = allowed(changed, allow) if candidate == run_dir else ([], changed)
            if not refused_now:
                if stored != fingerprint:
                    store.set_fingerprint(fingerprint)
                if refused is None:
                    opened.allowed_changes = covered
                else:
                    opened.moved_from, opened.refused_changes = Path(run_dir), refused
                return opened
        except BaseException:
            opened.close()
            raise
        opened.close()
        if not new_run_dir:
            raise ConfigChanged(Path(run_dir), refused_now)
        refused = refused if refused is not None else refused_now
        index += 1
        candidate = Path(run_dir).with_name(f"{Path(run_dir).name}-{index}")


def _is_run_directory(path: Path) -> bool:
    """A run directory (it has a store), or an empty folder that may become one."""
    return path.is_dir() and ((path / STORE_FILENAME).exists() or not any(path.iterdir()))
