"""Bulk reads of a transcript store's numbers and codes with no Python object per value.

The ``sqlite3`` module builds one Python object per value it returns (and a tuple per row), which at 1.4 million
generations and 4.5 million ratings is most of the time :func:`analysis.io.load_run` takes. So
:func:`read_coded` asks SQLite for text instead, one string per column and chunk of rows:

* string columns (``categorical``) with few values (raters, outcomes) come back as small integer codes: their
  distinct values are read first and the main query returns a ``CASE`` code per row, several codes packed into
  one integer by bit shifts; those with many values (persona ids: a ``CASE`` of a hundred ``WHEN`` s per row, and
  a ``DISTINCT`` pass over a wide table, cost more than they save) come back as one separated string per chunk
  that numpy codes (``split``);
* integer columns (rowids, counts, flags) are written by SQLite as decimal text (``group_concat``), exact, and
  parsed by numpy (``numpy.fromstring``), ``NULL`` as ``nan``;
* real columns (``real``, the scores) must come back bit for bit, which decimal text from SQLite does not
  promise, so they are never printed: when a column has at most :data:`MAX_REAL_VALUES` distinct values (a
  rating scale), those values are read once as Python floats, put in a temporary table, and each row returns
  the code of its value (an exact ``=`` join); otherwise the column is read the ordinary way, one float per row.

Rows are read in chunks of the driving table's ``rowid`` range and keep its scan order (the order a plain
``SELECT`` returns them in), so every statistic sums them in the order it always did.
"""

from __future__ import annotations

import sqlite3
import warnings

import numpy as np
import pandas as pd

__all__ = ["MAX_REAL_VALUES", "read_coded"]

#: A real column with more distinct values than this is read one float per row.
MAX_REAL_VALUES = 4096
#: Rows of the driving table per chunk (by rowid).
CHUNK_ROWS = 250_000
#: How a ``split`` column's ``NULL`` travels (``char(30)``, the ASCII record separator; no store's text is that).
_NULL = "\x1e"


def _case(expr: str, n_values: int) -> str:
    if n_values == 0:
        return "-1"
    return f"CASE {expr} " + " ".join(f"WHEN ? THEN {i}" for i in range(n_values)) + " ELSE -1 END"


def _parse(text: str | None, n: int, dtype: type, what: str) -> np.ndarray:
    if n == 0:
        return np.empty(0, dtype=dtype)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # a short parse is caught below
            values = np.fromstring(text or "", dtype=dtype, sep=",")
    except ValueError:  # numpy ≥ 2.3 raises where it used to warn and stop
        values = np.empty(0, dtype=dtype)
    if len(values) != n:
        raise ValueError(f"{what}: a value that is not a number among {n} rows (text where numbers belong)")
    return values


def read_coded(
    conn: sqlite3.Connection,
    columns: list[tuple[str, str]],
    categorical: dict[str, str],
    driver: tuple[str, str],
    from_sql: str,
    distinct_from: str,
    integer: tuple[str, ...] = (),
    real: tuple[str, ...] = (),
    split: tuple[str, ...] = (),
    carry: tuple[str, ...] = (),
) -> tuple[pd.DataFrame, list[tuple]]:
    """Read a query whose string columns come back as ``category`` columns and the rest as numbers.

    Args:
        conn: An open store.
        columns: ``(name, SQL expression)`` of the numeric columns.
        categorical: name → SQL expression over ``distinct_from`` of the string columns.
        driver: ``(table, alias)`` of the table ``from_sql`` scans first, whose rowid ranges make the chunks.
        from_sql: The ``FROM`` clause (joins included; the driver first).
        distinct_from: The ``FROM`` clause of the distinct values of ``categorical``.
        integer: Numeric columns returned as ``int64`` when they have no missing value (``float`` otherwise).
        real: Numeric columns returned bit for bit (floats: scores, latencies); the others must hold integers.
        split: ``categorical`` columns with many values (persona ids): read as text and coded by numpy, with no
            pass for their distinct values and no ``CASE`` of them (``NULL`` is sent as ``char(30)``; a chunk
            whose values hold the separator ``char(31)`` is read again one string per row).
        carry: Aggregates over ``distinct_from`` read per combination of the distinct values (``min(r.rowid)``).

    Returns:
        The frame (columns in the order of ``columns`` then ``categorical``) and the rows of the distinct-values
        query: the ``categorical`` values then ``carry``, one row per combination that occurs.
    """
    cat_names = [c for c in categorical if c not in split]
    values: dict[str, list] = {}
    combos: list[tuple] = []
    if cat_names:
        exprs = [categorical[c] for c in cat_names]
        group = ", ".join(str(i + 1) for i in range(len(exprs)))
        combos = conn.execute(f"SELECT {', '.join([*exprs, *carry])} FROM {distinct_from} GROUP BY {group}").fetchall()
        for i, c in enumerate(cat_names):
            values[c] = sorted({row[i] for row in combos if row[i] is not None}, key=str)
    texts_of = [c for c in categorical if c in split]
    table, alias = driver
    joins, coded_real, plain_real = [], {}, []
    for name, expr in columns:
        if name not in real:
            continue
        sql = f"SELECT DISTINCT {expr} FROM {table} {alias} WHERE {expr} IS NOT NULL LIMIT {MAX_REAL_VALUES + 1}"
        distinct = [v for (v,) in conn.execute(sql)]
        if len(distinct) > MAX_REAL_VALUES or not all(isinstance(v, float | int) for v in distinct):
            plain_real.append(name)
            continue
        temp = f"tribunal_values_{len(coded_real)}"
        conn.execute(f"DROP TABLE IF EXISTS temp.{temp}")
        conn.execute(f"CREATE TEMP TABLE {temp} (v REAL PRIMARY KEY, code INTEGER NOT NULL)")
        conn.executemany(f"INSERT INTO temp.{temp} VALUES (?, ?)", [(float(v), i) for i, v in enumerate(distinct)])
        joins.append(f"LEFT JOIN temp.{temp} AS {temp} ON {temp}.v = {expr}")
        coded_real[name] = (f"{temp}.code", np.array([float(v) for v in distinct] + [np.nan]))
    # the codes of the string columns, packed into as few integers as 62 bits allow
    packs: list[list[tuple[str, int, int]]] = [[]]
    used_bits = 0
    for c in cat_names:
        bits = max(1, int(len(values[c]) + 1).bit_length())
        if used_bits + bits > 62:
            packs.append([])
            used_bits = 0
        packs[-1].append((c, used_bits, bits))
        used_bits += bits
    packs = [p for p in packs if p]
    params: list = []
    select = ["count(*)"]
    for pack in packs:
        terms = []
        for c, shift, _ in pack:
            terms.append(f"((({_case(categorical[c], len(values[c]))}) + 1) << {shift})")  # | and << bind alike
            params.extend(values[c])
        select.append(f"group_concat({' | '.join(terms)})")
    select.extend(f"group_concat(ifnull({categorical[c]}, char(30)), char(31))" for c in texts_of)
    numeric = [(n, e) for n, e in columns if n not in plain_real]
    for name, expr in numeric:
        code = coded_real.get(name)
        select.append(f"group_concat(ifnull({code[0] if code else expr}, -1))" if code else
                      f"group_concat(ifnull({expr}, 'nan'))")  # fmt: skip
    where = f"WHERE {alias}.rowid >= ? AND {alias}.rowid < ?"
    sql = f"SELECT {', '.join(select)} FROM {from_sql} {' '.join(joins)} {where}"
    plain_sql = f"SELECT {', '.join(e for n, e in columns if n in plain_real)} FROM {from_sql} {where}"
    lo, hi = conn.execute(f"SELECT min(rowid), max(rowid) FROM {table}").fetchone()
    chunks: list[dict[str, np.ndarray]] = []
    what = f"{table} in {conn.execute('PRAGMA database_list').fetchone()[2]}"
    for start in range(int(lo or 0), int(hi or -1) + 1, CHUNK_ROWS):
        row = conn.execute(sql, [*params, start, start + CHUNK_ROWS]).fetchone()
        n, texts = int(row[0]), row[1:]
        part: dict[str, np.ndarray] = {}
        for pack, text in zip(packs, texts[: len(packs)], strict=True):
            packed = _parse(text, n, np.int64, what)
            for c, shift, bits in pack:
                part[c] = ((packed >> shift) & ((1 << bits) - 1)) - 1
        for c, text in zip(texts_of, texts[len(packs) : len(packs) + len(texts_of)], strict=True):
            strings = text.split("\x1f") if n else []
            if len(strings) != n:  # a value holds the separator: this chunk's strings one per row
                one = f"SELECT {categorical[c]} FROM {from_sql} {where}"
                strings = [_NULL if v is None else v for (v,) in conn.execute(one, [start, start + CHUNK_ROWS])]
            part[c] = pd.factorize(np.array(strings, dtype=object))  # (codes, uniques): one category set below
        for (name, _), text in zip(numeric, texts[len(packs) + len(texts_of) :], strict=True):
            dtype = np.int64 if name in coded_real else float
            part[name] = _parse(text, n, dtype, f"{what}, column {name}")
        if plain_real:
            rows = conn.execute(plain_sql, [start, start + CHUNK_ROWS]).fetchall()
            arr = np.array(rows, dtype=float).reshape(len(rows), len(plain_real))
            if len(arr) != n:
                raise ValueError(f"{what}: changed while it was read (rows {len(arr)} != {n})")
            part.update({name: arr[:, i] for i, name in enumerate(plain_real)})
        chunks.append(part)
    names = [name for name, _ in columns] + list(categorical)
    out: dict[str, object] = {}
    for c in texts_of:
        uniques = [p[c][1] for p in chunks]
        cats = pd.Index(sorted({v for u in uniques for v in u if v != _NULL}, key=str), dtype=object)
        maps = [cats.get_indexer(u) for u in uniques]  # the NULL marker: -1
        codes = np.concatenate([m[p[c][0]] for m, p in zip(maps, chunks, strict=True)]) if chunks else np.empty(0)
        out[c] = pd.Categorical.from_codes(codes.astype(np.int64), categories=cats)
    for name in names:
        if name in out:
            continue
        col = np.concatenate([p[name] for p in chunks]) if chunks else np.empty(0)
        if name in values:
            codes = col.astype(np.int64)
            out[name] = pd.Categorical.from_codes(codes, categories=pd.Index(values[name], dtype=object))
        elif name in coded_real:
            out[name] = coded_real[name][1][col.astype(np.int64)]  # code -1: the trailing NaN
        elif name in integer and not np.isnan(col).any():
            out[name] = col.astype(np.int64)
        else:
            out[name] = col.astype(float)
    for temp in range(len(coded_real)):
        conn.execute(f"DROP TABLE IF EXISTS temp.tribunal_values_{temp}")
    return pd.DataFrame(out, columns=names), combos
