"""Exporting a run's tables for other tools (pandas, DuckDB, R, spreadsheets).

One file per table under ``RUN/export/`` (or a folder you name): Parquet (needs ``pyarrow``: ``pip install
'tribunal[parquet]'``) or JSON Lines. Each file is written to a temporary name and renamed into place, so an
interrupted export never leaves a truncated file behind. JSON columns (messages, parameters) are exported as
their JSON text.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from graphs.engines.parquet_run import is_parquet_run
from graphs.files import atomic_write
from graphs.tables import STORE_FILENAME, connect_readonly

EXPORTED_TABLES = ("cells", "generations", "ratings", "aggregates", "critiques", "mitigation", "runs")
FORMATS = ("parquet", "jsonl")


class ExportError(RuntimeError):
    """The run cannot be exported as asked."""


def _rows(db: sqlite3.Connection, table: str) -> tuple[list[str], list[tuple]]:
    cursor = db.execute(f"SELECT * FROM {table}")  # table names come from EXPORTED_TABLES only
    columns = [d[0] for d in cursor.description]
    return columns, cursor.fetchall()


def export_run(
    run_dir: str | Path,
    fmt: str = "parquet",
    out_dir: str | Path | None = None,
    tables: Sequence[str] = EXPORTED_TABLES,
) -> list[Path]:
    """Write each table of a run to ``out_dir`` (default ``RUN/export``) and return the written paths.

    Raises:
        ExportError: unknown format or table, missing pyarrow for Parquet, or not a run directory.
    """
    run_dir = Path(run_dir)
    store = run_dir / STORE_FILENAME
    if is_parquet_run(run_dir):  # the Ray engine's run directory, read through its local SQLite copy
        from analysis.parquet_run import materialize

        try:
            store = materialize(run_dir)
        except ValueError as exc:
            raise ExportError(str(exc)) from None
    elif not store.exists():
        raise ExportError(f"{run_dir}: not a tribunal run directory (no {STORE_FILENAME})")
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    unknown = [t for t in tables if t not in EXPORTED_TABLES]
    if unknown:
        raise ExportError(f"unknown table(s) {', '.join(unknown)}; tables: {', '.join(EXPORTED_TABLES)}")
    if fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ExportError("parquet export needs pyarrow: pip install 'tribunal[parquet]'") from None
    target = Path(out_dir) if out_dir else run_dir / "export"
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{target}: cannot create the export folder: {exc.strerror}") from None

    written = []
    with contextlib.closing(connect_readonly(store)) as db:
        for table in tables:
            columns, rows = _rows(db, table)
            path = target / f"{table}.{fmt}"
            if fmt == "parquet":
                arrays = {name: [row[i] for row in rows] for i, name in enumerate(columns)}
                arrow_table = pa.table(arrays) if rows else pa.table({name: pa.array([]) for name in columns})
                atomic_write(path, lambda tmp, t=arrow_table: pq.write_table(t, tmp))
            else:

                def write_jsonl(tmp: Path, columns=columns, rows=rows) -> None:
                    with tmp.open("w", encoding="utf-8") as stream:
                        for row in rows:
                            stream.write(json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False))
                            stream.write("\n")

                atomic_write(path, write_jsonl)
            written.append(path)
    return written
