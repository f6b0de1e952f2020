"""Writing a Parquet run directory: the Ray engine's run directory (its layout: :mod:`analysis.parquet_run`).

Rows are made by the transcript store itself: a batch's records are written into an in-memory
:class:`~graphs.store.TranscriptStore` (:func:`batch_tables`) and its tables read back as Arrow tables, so a
Parquet run holds exactly the rows and columns a SQLite run holds and ``tribunal export`` writes. The driver
writes each batch's parts and then its commit file (:meth:`ParquetRunDirectory.commit`); what the directory
holds, what is complete and what to retry is read back through :func:`analysis.parquet_run.materialize` with the
store's own queries, so that both engines resume the same way.

One driver writes a run directory at a time: on a local path it holds the same lock as the local engine
(:class:`graphs.rundir.RunDirectoryLock`); on object storage nothing can lock, so do not start two drivers on one
directory.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphs.records import SCHEMA_VERSION, STORE_FILENAME, allowed, changed_fields
from graphs.rundir import ConfigChanged, RunDirectoryLock
from graphs.store import RunDirectoryError, StoreError, TranscriptStore
from graphs.tables import PARQUET_COMMITS_DIRNAME, PARQUET_META_FILENAME, PARQUET_TABLES

__all__ = ["ParquetRunDirectory", "batch_tables", "from_ipc", "is_parquet_run", "to_ipc"]

#: The tables a batch of cells writes (``runs`` is written per run, not per batch).
BATCH_TABLES = tuple(t for t in PARQUET_TABLES if t != "runs")
#: The layout's names; the rest of :mod:`analysis.parquet_run` is imported when used (``import analysis`` is not
#: light, and an actor or the local engine that never touches a Parquet directory should not pay for it)
COMMITS_DIRNAME, META_FILENAME = PARQUET_COMMITS_DIRNAME, PARQUET_META_FILENAME


def _layout() -> Any:
    from analysis import parquet_run

    return parquet_run


def memory_store() -> TranscriptStore:
    """An empty in-memory transcript store (the actor's rows are made in one, then read out)."""
    return TranscriptStore(Path(":memory:"))


def batch_tables(store: TranscriptStore, tables: Sequence[str] = BATCH_TABLES) -> dict[str, Any]:
    """The rows of ``store``'s tables as Arrow tables with the store's columns (empty tables left out)."""
    import pyarrow as pa

    out = {}
    for table in tables:
        schema = _layout().arrow_schema(table)
        rows = store.query(f"SELECT * FROM {table}")  # table names come from PARQUET_TABLES only
        if rows:
            columns = {name: [row[i] for row in rows] for i, name in enumerate(schema.names)}
            out[table] = pa.table(columns, schema=schema)
    return out


def to_ipc(table: Any) -> bytes:
    """An Arrow table as Arrow IPC stream bytes (how an actor hands its tables to the driver)."""
    import pyarrow as pa

    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def from_ipc(data: bytes) -> Any:
    import pyarrow as pa

    return pa.ipc.open_stream(data).read_all()


class ParquetRunDirectory:
    """A Parquet run directory opened for writing by one driver.

    Args:
        run_dir: a local path or a URI pyarrow can write (``s3://bucket/run``).
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = str(run_dir)
        self.fs, self.root = _layout().filesystem(run_dir)
        self.local = "://" not in self.run_dir
        self._lock: RunDirectoryLock | None = None
        self.run_id = 0
        self._seq = 0

    # ------------------------------------------------------------------------------------------- open
    def open(self, fingerprint: dict[str, str] | None, allow: Sequence[str] = ()) -> list[str]:
        """Lock the directory, check it holds this experiment, drop parts of uncommitted batches.

        ``fingerprint`` ``None`` (``tribunal rate``): an existing Parquet run directory, whatever config made it.

        Returns:
            The fingerprint fields that changed and that ``allow`` covers.

        Raises:
            RunDirectoryError: another process writes it, the local engine or another tribunal made it.
            ConfigChanged: another config made it and ``allow`` does not cover the change.
        """
        if self.local:
            if (Path(self.root) / STORE_FILENAME).exists():
                raise RunDirectoryError(
                    f"{self.run_dir}: a run directory of the local engine ({STORE_FILENAME}); run --engine ray "
                    "into a new directory"
                )
            self._lock = RunDirectoryLock(Path(self.root)).acquire()
        try:
            self.fs.create_dir(self.root, recursive=True)
            layout = _layout()
            meta = layout.read_meta(self.run_dir)
            covered: list[str] = []
            if fingerprint is None and meta is None:
                raise StoreError(
                    f"{self.run_dir}: not a tribunal run directory (no {STORE_FILENAME} or {META_FILENAME})"
                )
            if fingerprint is not None and meta is not None:
                if meta is not None and not layout.schema_version_ok(meta):
                    raise RunDirectoryError(
                        f"{self.run_dir}: made by another tribunal (store schema {meta.get('schema_version')}; this "
                        f"version writes {SCHEMA_VERSION}): run into a new directory"
                    )
                stored = meta.get("fingerprint") or {}
                covered, refused = allowed(changed_fields(stored, fingerprint), allow)
                if refused:
                    raise ConfigChanged(Path(self.run_dir), refused)
            if fingerprint is not None and (meta is None or meta.get("fingerprint") != fingerprint):
                document = {"format": layout.FORMAT, "schema_version": SCHEMA_VERSION, "fingerprint": fingerprint}
                self.write_text(META_FILENAME, json.dumps(document, sort_keys=True, indent=1) + "\n")
            self._drop_uncommitted()
            self.run_id = 1 + max((int(n.split("-")[1].split(".")[0]) for n in self._names("runs")), default=0)
        except BaseException:
            self.close()
            raise
        return covered

    def close(self) -> None:
        self._discard()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _names(self, folder: str) -> list[str]:
        from pyarrow import fs

        selector = fs.FileSelector(f"{self.root}/{folder}", allow_not_found=True)
        return sorted(i.base_name for i in self.fs.get_file_info(selector) if i.type == fs.FileType.File)

    def _drop_uncommitted(self) -> None:
        """Delete the parts of batches a killed driver wrote but never committed (readers ignore them anyway)."""
        committed = {name.removesuffix(".json") for name in self._names(COMMITS_DIRNAME)}
        for table in BATCH_TABLES:
            for name in self._names(table):
                batch = name.removeprefix("part-").removesuffix(".parquet")
                if batch not in committed:
                    self.fs.delete_file(f"{self.root}/{table}/{name}")

    # ------------------------------------------------------------------------------------------ write
    def write_text(self, name: str, text: str) -> None:
        """Write a file of the run directory whole (a temporary name, then renamed into place)."""
        self._write(name, lambda stream: stream.write(text.encode("utf-8")))

    def _write(self, name: str, write: Any) -> None:
        path, tmp = f"{self.root}/{name}", f"{self.root}/{name}.tmp-{uuid.uuid4().hex[:8]}"
        parent = path.rsplit("/", 1)[0]
        try:
            self.fs.create_dir(parent, recursive=True)
            with self.fs.open_output_stream(tmp) as stream:
                write(stream)
            self.fs.move(tmp, path)
        except OSError as exc:
            raise StoreError(
                f"{path}: cannot write the run directory: {exc}; run the same command again to resume"
            ) from None

    def _write_parquet(self, name: str, table: Any) -> None:
        import pyarrow.parquet as pq

        self._write(name, lambda stream: pq.write_table(table, stream))

    def next_batch(self) -> str:
        """A new batch id: the run's number and the batch's, so that commit order is name order."""
        self._seq += 1
        return f"{self.run_id:05d}-{self._seq:07d}"

    def commit(
        self,
        batch: str,
        tables: dict[str, Any],
        *,
        redo: Sequence[str] = (),
        kind: str = "run",
        span: Sequence[float] | None = None,
    ) -> None:
        """Write a batch's parts, then its commit file: the batch counts from then on, whole. ``span``: when
        the batch started and finished on its actor (Unix seconds), kept in the commit record."""
        for table, rows in tables.items():
            self._write_parquet(f"{table}/part-{batch}.parquet", rows)
        record = {"batch": batch, "kind": kind, "tables": sorted(tables), "redo": list(redo)}
        if span is not None:
            record["span"] = list(span)
        self.write_text(f"{COMMITS_DIRNAME}/{batch}.json", json.dumps(record) + "\n")

    def write_run_row(self, table: Any) -> None:
        """This run's ``runs`` row (rewritten when the run finishes)."""
        self._write_parquet(f"runs/part-{self.run_id:05d}.parquet", table)

    # ------------------------------------------------------------------------------------------- read
    def store(self) -> TranscriptStore:
        """The committed rows as a read-only transcript store (:func:`analysis.parquet_run.materialize`)."""
        return TranscriptStore(_layout().materialize(self.run_dir), readonly=True)

    def committed(self) -> list[dict[str, Any]]:
        return _layout().committed_batches(self.run_dir)

    # ------------------------------------------------------------------------------------------- rate
    def working_store(self) -> TranscriptStore:
        """A writable copy of the committed rows, for ``tribunal rate`` (:meth:`commit_rated` writes back what
        it added)."""
        fd, tmp = tempfile.mkstemp(suffix=".sqlite", prefix="tribunal-rate-")
        os.close(fd)
        shutil.copyfile(_layout().materialize(self.run_dir), tmp)
        store = TranscriptStore(Path(tmp))
        self._unflagged = {
            row[0] for row in store.query("SELECT generation_key FROM generations WHERE refusal IS NULL")
        }
        self._since = time.time()
        self._working: TranscriptStore | None = store
        return store

    def commit_rated(self, store: TranscriptStore) -> None:
        """Write what ``tribunal rate`` added to the working store as a committed batch: its new ratings, the
        generations whose refusal flag it filled (a later row of a key replaces the earlier one), and its
        ``runs`` row."""
        import pyarrow as pa

        tables: dict[str, Any] = {}
        for table, where, params in (
            ("ratings", "WHERE created_at >= ?", (self._since,)),
            ("generations", "WHERE refusal IS NOT NULL", ()),
        ):
            schema = _layout().arrow_schema(table)
            rows = store.query(f"SELECT * FROM {table} {where}", params)
            if table == "generations":
                rows = [r for r in rows if r["generation_key"] in self._unflagged]
            if rows:
                tables[table] = pa.table({n: [r[i] for r in rows] for i, n in enumerate(schema.names)}, schema=schema)
        if tables:
            self.commit(self.next_batch(), tables, kind="rate")
        runs = _layout().arrow_schema("runs")
        last = store.query("SELECT * FROM runs ORDER BY run_id DESC LIMIT 1")
        if last:
            columns = {n: [last[0][i]] for i, n in enumerate(runs.names)}
            columns["run_id"] = [self.run_id]
            self.write_run_row(pa.table(columns, schema=runs))
        self._discard()

    def _discard(self) -> None:
        """Close and delete the working copy (after :meth:`commit_rated`, or when the rate stopped)."""
        store, self._working = getattr(self, "_working", None), None
        if store is None:
            return
        store.close()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{store.path}{suffix}")


def is_parquet_run(run_dir: str | Path) -> bool:
    """``run_dir`` is a Parquet run directory (see :func:`analysis.parquet_run.is_parquet_run`); a local path
    without its ``meta.json`` is answered without importing :mod:`analysis`."""
    if "://" not in str(run_dir) and not (Path(run_dir) / META_FILENAME).is_file():
        return False
    return bool(_layout().is_parquet_run(run_dir))
