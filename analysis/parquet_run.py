"""Reading a Parquet run directory (what ``tribunal run --engine ray`` writes) as a transcript store.

A Parquet run directory holds the tables of :mod:`graphs.tables` (``cells``, ``generations``, ``ratings``,
``aggregates``, ``critiques``, ``mitigation``, ``runs``), each a folder of Parquet part files with the columns
``tribunal export --format parquet`` writes, in any file system pyarrow can open (a local path, ``s3://…``,
``gs://…``, ``hdfs://…``)::

    RUN/meta.json                      {"format": "tribunal-parquet", "schema_version": 2, "fingerprint": {...}}
    RUN/config.yaml                    the resolved config, as a SQLite run directory holds it
    RUN/audit/                         what ``tribunal audit judges`` writes, as in a SQLite run directory
    RUN/<table>/part-<batch>.parquet   one part per table and batch of cells (a rate adds ratings parts)
    RUN/_commits/<batch>.json          written after the batch's parts: only committed parts count
    RUN/runs/part-<run id>.parquet     one row per ``tribunal run``/``rate``, rewritten when it finishes

A batch's parts count once its commit file exists, so a driver killed while it writes leaves parts that readers
ignore (and that the next run deletes). Batches apply in commit order with the store's own semantics
(:meth:`graphs.store.TranscriptStore.write_generations`): a later row of the same key replaces the earlier one (a
retried failure replaces its failed row), and a batch's ``redo`` cells drop their earlier mitigation loop first.

Every reader of SQLite run directories works unchanged on a Parquet one through :func:`materialize`: it replays
the committed batches into a SQLite file of the store's schema in a local cache folder (``$TRIBUNAL_CACHE_DIR``,
else ``$XDG_CACHE_HOME/tribunal`` or ``~/.cache/tribunal``), rebuilt only when the set of committed batches, the
run rows, the config snapshot or the judge card changes; those two files are copied beside the SQLite copy.
Standard library and pyarrow only (no other part of tribunal than :mod:`graphs.tables`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from graphs.tables import DDL, PARQUET_COMMITS_DIRNAME, PARQUET_META_FILENAME, PARQUET_TABLES, SCHEMA_VERSION

__all__ = [
    "COMMITS_DIRNAME",
    "FORMAT",
    "META_FILENAME",
    "PARQUET_TABLES",
    "arrow_schema",
    "committed_batches",
    "filesystem",
    "is_parquet_run",
    "materialize",
    "read_meta",
    "schema_version_ok",
]

FORMAT = "tribunal-parquet"
META_FILENAME = PARQUET_META_FILENAME
COMMITS_DIRNAME = PARQUET_COMMITS_DIRNAME
#: Files readers look for beside the store (the config snapshot, the judge card): copied beside the SQLite copy.
_BESIDE = ("config.yaml", "audit/judge_card.json")
_SQL_TYPES = {"TEXT": "string", "INTEGER": "int64", "REAL": "float64"}


def filesystem(run_dir: str | Path) -> tuple[Any, str]:
    """The pyarrow file system of ``run_dir`` and the path in it (a URI such as ``s3://bucket/run``, or a local
    path)."""
    from pyarrow import fs

    text = str(run_dir)
    if "://" in text:
        return fs.FileSystem.from_uri(text)
    return fs.LocalFileSystem(), str(Path(text).resolve())


def _read_text(fsys: Any, path: str) -> str | None:
    try:
        with fsys.open_input_stream(path) as stream:
            return stream.read().decode("utf-8")
    except (FileNotFoundError, OSError):
        return None


def read_meta(run_dir: str | Path) -> dict[str, Any] | None:
    """The ``meta.json`` of a Parquet run directory, or ``None`` when ``run_dir`` is not one.

    Raises:
        ValueError: the file exists but is not a Parquet run's meta (the message names the file).
    """
    fsys, root = filesystem(run_dir)
    text = _read_text(fsys, f"{root}/{META_FILENAME}")
    if text is None:
        return None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{run_dir}/{META_FILENAME}: not a Parquet run's meta: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{run_dir}/{META_FILENAME}: format: not {FORMAT!r}")
    return meta


def is_parquet_run(run_dir: str | Path) -> bool:
    """``run_dir`` is a Parquet run directory (it has a ``meta.json`` of that format); needs pyarrow only then."""
    text = str(run_dir)
    if "://" not in text and not (Path(text) / META_FILENAME).is_file():
        return False
    try:
        return read_meta(run_dir) is not None
    except ImportError:
        raise ValueError(f"{run_dir}: a Parquet run directory; reading it needs pyarrow: pip install pyarrow") from None


def arrow_schema(table: str) -> Any:
    """The Arrow schema of a table: the store's columns in order, TEXT → string, INTEGER → int64, REAL → float64."""
    import pyarrow as pa

    db = sqlite3.connect(":memory:")
    try:
        db.executescript(DDL)
        columns = [(row[1], row[2]) for row in db.execute(f"PRAGMA table_info({table})")]
    finally:
        db.close()
    if not columns:
        raise ValueError(f"unknown table {table!r}")
    return pa.schema([(name, getattr(pa, _SQL_TYPES[kind])()) for name, kind in columns])


def committed_batches(run_dir: str | Path) -> list[dict[str, Any]]:
    """The committed batches, in commit order: each ``{"batch": ID, "tables": [...], "redo": [...], ...}``."""
    from pyarrow import fs

    fsys, root = filesystem(run_dir)
    infos = fsys.get_file_info(fs.FileSelector(f"{root}/{COMMITS_DIRNAME}", allow_not_found=True))
    batches = []
    for info in sorted(infos, key=lambda i: i.base_name):
        if info.type != fs.FileType.File or not info.base_name.endswith(".json"):
            continue
        text = _read_text(fsys, info.path)
        try:
            batches.append(json.loads(text or ""))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{info.path}: batches: not a commit record: {exc}") from None
    return batches


def _run_parts(fsys: Any, root: str) -> list[Any]:
    from pyarrow import fs

    infos = fsys.get_file_info(fs.FileSelector(f"{root}/runs", allow_not_found=True))
    return sorted((i for i in infos if i.base_name.endswith(".parquet")), key=lambda i: i.base_name)


def _cache_folder(root: str, cache_dir: str | Path | None) -> Path:
    if cache_dir is None:
        explicit = os.environ.get("TRIBUNAL_CACHE_DIR")
        xdg = os.environ.get("XDG_CACHE_HOME")
        cache_dir = Path(explicit) if explicit else (Path(xdg) if xdg else Path.home() / ".cache") / "tribunal"
    return Path(cache_dir) / "parquet-runs" / hashlib.sha256(root.encode()).hexdigest()[:20]


def materialize(run_dir: str | Path, cache_dir: str | Path | None = None) -> Path:
    """A SQLite transcript store (schema of :mod:`graphs.tables`) holding the Parquet run's committed rows.

    Cached under ``cache_dir`` (see the module docstring) and rebuilt when the run's committed batches or its
    ``runs`` rows change; built into a temporary file and renamed, so that readers never see half a store.

    Returns:
        The store's path (open it with :func:`graphs.tables.connect_readonly`).

    Raises:
        ValueError: ``run_dir`` is not a Parquet run directory, or one of its files cannot be read (the message
            names the file).
    """
    from pyarrow import fs

    meta = read_meta(run_dir)
    if meta is None:
        raise ValueError(f"{run_dir}: not a Parquet run directory (no {META_FILENAME})")
    fsys, root = filesystem(run_dir)
    batches = committed_batches(run_dir)
    runs = _run_parts(fsys, root)
    beside = [i for i in fsys.get_file_info([f"{root}/{name}" for name in _BESIDE]) if i.type == fs.FileType.File]
    signature = json.dumps(
        {
            "meta": meta,
            "batches": [b.get("batch") for b in batches],
            "runs": [(i.base_name, i.size, i.mtime_ns) for i in runs],
            "beside": [(i.path, i.size, i.mtime_ns) for i in beside],
        },
        sort_keys=True,
    )
    folder = _cache_folder(root, cache_dir)
    store, stamp = folder / "transcripts.sqlite", folder / "signature.json"
    if store.is_file() and stamp.is_file() and stamp.read_text(encoding="utf-8") == signature:
        return store
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".sqlite.tmp")
    os.close(fd)
    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.executescript(DDL)
            db.execute("BEGIN")
            db.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(meta.get("schema_version")),))
            if meta.get("fingerprint") is not None:
                db.execute("INSERT INTO meta(key, value) VALUES ('fingerprint', ?)", (json.dumps(meta["fingerprint"]),))
            for batch in batches:
                _apply(db, fsys, root, batch)
            for info in runs:
                _insert(db, "runs", _read_part(fsys, info.path), "INSERT OR REPLACE")
            db.execute("COMMIT")
        finally:
            db.close()
        os.replace(tmp, store)
        for info in beside:  # readers find the config snapshot and the judge card beside the store
            copy = folder / info.path[len(root) + 1 :]
            copy.parent.mkdir(parents=True, exist_ok=True)
            fs.copy_files(info.path, str(copy), source_filesystem=fsys, destination_filesystem=fs.LocalFileSystem())
        tmp_stamp = stamp.with_suffix(".tmp")
        tmp_stamp.write_text(signature, encoding="utf-8")
        os.replace(tmp_stamp, stamp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return store


def _read_part(fsys: Any, path: str) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, filesystem=fsys)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable Parquet part: {exc}") from None


def _insert(db: sqlite3.Connection, table: str, part: Any, verb: str) -> None:
    columns = part.column_names
    values = [part.column(name).to_pylist() for name in columns]
    marks = ", ".join("?" for _ in columns)
    names = ", ".join(f'"{name}"' for name in columns)
    db.executemany(f"{verb} INTO {table} ({names}) VALUES ({marks})", zip(*values, strict=True))


_LOOP = "SELECT generation_key FROM generations WHERE cell_key = ? AND round > 0"


def _apply(db: sqlite3.Connection, fsys: Any, root: str, batch: dict[str, Any]) -> None:
    """One committed batch, with the store's semantics: ``redo`` cells lose their earlier loop, then the rows
    enter (cells kept as first written, every other row replacing an earlier one of the same key)."""
    redone = [(key,) for key in batch.get("redo", [])]
    if redone:
        db.executemany(f"DELETE FROM ratings WHERE generation_key IN ({_LOOP})", redone)
        db.executemany(f"DELETE FROM aggregates WHERE generation_key IN ({_LOOP})", redone)
        db.executemany(
            "DELETE FROM critiques WHERE generation_key IN (SELECT generation_key FROM generations WHERE cell_key = ?)",
            redone,
        )
        db.executemany("DELETE FROM generations WHERE cell_key = ? AND round > 0", redone)
        db.executemany("DELETE FROM mitigation WHERE cell_key = ?", redone)
    listed = set(batch.get("tables", []))
    for table in PARQUET_TABLES:
        if table in listed and table != "runs":
            part = _read_part(fsys, f"{root}/{table}/part-{batch['batch']}.parquet")
            _insert(db, table, part, "INSERT OR IGNORE" if table == "cells" else "INSERT OR REPLACE")


def schema_version_ok(meta: dict[str, Any]) -> bool:
    """The Parquet run was written with this tribunal's store schema."""
    return int(meta.get("schema_version", 0)) == SCHEMA_VERSION
