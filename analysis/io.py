"""Reading a run directory's transcript store into DataFrames, and the standard analysis frame.

:func:`load_run` opens ``<run_dir>/transcripts.sqlite`` read-only (``mode=ro``: an analysis never writes to a
run, and may run while ``tribunal run`` is still appending; ``immutable`` in a directory that cannot be written)
and returns a :class:`RunTables` of DataFrames. To keep 1.4 million generations to seconds and a few hundred MB:

* content keys (64-character hashes) are replaced by SQLite's integer ``rowid`` (``cell_id``,
  ``generation_id``, ``parent_id``), resolved by joins inside SQLite; ask for the keys with ``keys=True``;
* long text (generation text, messages, rationales) is not read unless ``text=True``;
* the cells, generations and ratings are read by :func:`analysis.coded_read.read_coded`, which has SQLite write
  each column of a chunk as one string of numbers (codes for the strings, exact codes for the scores) instead of
  one Python object per value; repeated strings (models, personas, raters, outcomes) become ``category`` columns.

:func:`analysis_frame` builds the frame most analyses start from: one row per round-0 generation with its cell's
columns and one score column per (rater, dimension), ``NaN`` where that rater did not score it, together with
the coverage counts that every figure reports next to itself.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from analysis.coded_read import read_coded
from analysis.frames import integer_codes, str_categorical
from graphs.tables import AUDIT_DIRNAME, CARD_FILENAME, STORE_FILENAME, connect_readonly

__all__ = ["AnalysisFrame", "RunTables", "analysis_frame", "load_run", "parse_run_config", "ratings_long", "store_path"]

_CHUNK = 500_000

_CELL_COLUMNS = (
    "model",
    "persona_id",
    "persona_kind",
    "persona_category",
    "persona_gender",
    "target_id",
    "target_category",
    "template_id",
    "template_style",
    "language",
    "repeat",
    "is_baseline",
    "seed",
)
_CELL_CATEGORIES = tuple(c for c in _CELL_COLUMNS if c not in ("repeat", "is_baseline", "seed"))
_REQUIRED_TABLES = ("cells", "generations", "ratings")
_RATER_IDENTITY = (
    "rater_name",
    "rater_model",
    "framing_attribute",
    "framing_value",
    "rubric",
    "rubric_version",
    "scale",
)


@dataclass
class RunTables:
    """The transcript tables of one run directory as DataFrames (see :mod:`graphs.tables`)."""

    path: Path
    cells: pd.DataFrame
    generations: pd.DataFrame
    ratings: pd.DataFrame
    critiques: pd.DataFrame
    mitigation: pd.DataFrame
    meta: dict[str, str] = field(default_factory=dict)
    #: The experiment config of the latest ``runs`` row (parsed JSON), or ``None`` when there is none.
    config: dict[str, Any] | None = None

    @property
    def has_ratings(self) -> bool:
        return not self.ratings.empty


def store_path(run_dir: str | Path) -> Path:
    """The transcript store of ``run_dir``; raises a one-line error when it is not a tribunal run directory.

    A Parquet run directory (``tribunal run --engine ray``) is read through a local SQLite copy of its committed
    rows (:func:`analysis.parquet_run.materialize`), so that every reader reads both kinds alike.
    """
    from analysis.parquet_run import is_parquet_run, materialize

    if is_parquet_run(run_dir):
        return materialize(run_dir)
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    if run_dir.is_file():
        if run_dir.name == STORE_FILENAME:
            return run_dir
        raise ValueError(f"not a tribunal run directory (a file, expected a folder with {STORE_FILENAME}): {run_dir}")
    path = run_dir / STORE_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"not a tribunal run directory (no {STORE_FILENAME}): {run_dir}")
    return path


def _connect(path: Path) -> sqlite3.Connection:
    try:
        conn = connect_readonly(path)  # also in a read-only directory (graphs.tables.connect_readonly)
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"not a tribunal transcript store ({exc}): {path}") from exc
    missing = [t for t in _REQUIRED_TABLES if t not in names]
    if missing:
        conn.close()
        raise ValueError(f"not a tribunal transcript store (no table {', '.join(missing)}): {path}")
    return conn


def _read(conn: sqlite3.Connection, sql: str, categories: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a query in chunks, turning the ``categories`` columns into ``category`` dtype chunk by chunk."""
    parts = []
    for chunk in pd.read_sql_query(sql, conn, chunksize=_CHUNK):
        for c in categories:
            if c in chunk.columns:
                chunk[c] = chunk[c].astype("category")
        parts.append(chunk)
    if not parts:
        cursor = conn.execute(f"SELECT * FROM ({sql}) LIMIT 0")
        return pd.DataFrame(columns=[d[0] for d in cursor.description])
    if len(parts) == 1:
        return parts[0]
    for c in categories:
        if c in parts[0].columns:
            merged = union_categoricals([p[c] for p in parts])
            for p in parts:
                p[c] = pd.Categorical(p[c], categories=merged.categories)
    return pd.concat(parts, ignore_index=True)


def _attach(frame: pd.DataFrame, conn: sqlite3.Connection, id_col: str, sql: str) -> pd.DataFrame:
    """Add string columns (keys, text) read by ``sql`` (whose first column is the rowid) to ``frame``."""
    extra = _read(conn, sql).rename(columns=lambda c: id_col if c == "rowid" else c)
    return frame.merge(extra, on=id_col, how="left")


def load_run(run_dir: str | Path, *, text: bool = False, keys: bool = False, usage: bool = False) -> RunTables:
    """Load a run directory's transcript store.

    Args:
        run_dir: The run directory (or its ``transcripts.sqlite`` file).
        text: Also read generation and critique text (large; only the report's examples need it).
        keys: Also read the content keys (``cell_key``, ``generation_key``, ``rating_key``).
        usage: Also read the generations' usage columns (tokens, latency, attempts, backend, finish reason).

    Returns:
        :class:`RunTables` with ``cells`` (``cell_id`` + design columns), ``generations`` (``generation_id``,
        ``cell_id``, ``round``, ``parent_id``, ``model``, ``outcome``, ``refusal``), ``ratings``
        (``generation_id``, ``rater`` and its identity columns, ``dimension``, ``score``, ``outcome``),
        ``critiques``,
        ``mitigation`` (``cell_id``, ``rounds``, ``stop_reason``) and ``config`` (the latest run's experiment
        config, or ``None``). Empty tables have their columns.

    Raises:
        FileNotFoundError: the directory or its store does not exist.
        ValueError: the file is not a tribunal transcript store.
    """
    path = store_path(run_dir)
    conn = _connect(path)
    try:
        cells, _ = read_coded(
            conn,
            [("cell_id", "c.rowid"), ("repeat", "c.repeat"), ("is_baseline", "c.is_baseline"), ("seed", "c.seed")],
            {c: f"c.{c}" for c in _CELL_CATEGORIES},
            ("cells", "c"),
            "cells c",
            "cells c",
            integer=("cell_id", "repeat", "is_baseline", "seed"),
            split=_CELL_CATEGORIES,
        )
        cells = cells[["cell_id", *_CELL_COLUMNS]]
        if keys:
            cells = _attach(cells, conn, "cell_id", "SELECT rowid, cell_key FROM cells")
        usage_cols = [
            ("prompt_tokens", "g.prompt_tokens"),
            ("completion_tokens", "g.completion_tokens"),
            ("latency_s", "g.latency_s"),
            ("attempts", "g.attempts"),
        ]
        generations, _ = read_coded(
            conn,
            [
                ("generation_id", "g.rowid"),
                ("cell_id", "c.rowid"),
                ("round", "g.round"),
                ("parent_id", "p.rowid"),
                ("refusal", "g.refusal"),
                *(usage_cols if usage else []),
            ],
            {
                "model": "g.model",
                "outcome": "g.outcome",
                **({"backend": "g.backend", "finish_reason": "g.finish_reason"} if usage else {}),
            },
            ("generations", "g"),
            "generations g LEFT JOIN cells c ON c.cell_key = g.cell_key "
            "LEFT JOIN generations p ON p.generation_key = g.parent_key",
            "generations g",
            integer=("generation_id", "cell_id", "round", "attempts"),
            real=("latency_s",),
            split=("model", "outcome", "backend", "finish_reason"),
        )
        if keys:
            generations = _attach(generations, conn, "generation_id", "SELECT rowid, generation_key FROM generations")
        if text:
            generations = _attach(generations, conn, "generation_id", "SELECT rowid, text FROM generations")
        # A rater's identity columns are functions of ``rater`` (its full identity): read them once per rater,
        # with the distinct raters, dimensions and outcomes (one scan).
        ratings, combos = read_coded(
            conn,
            [("generation_id", "g.rowid"), ("score", "r.score")],
            {"rater": "r.rater", "dimension": "r.dimension", "outcome": "r.outcome"},
            ("ratings", "r"),
            "ratings r CROSS JOIN generations g ON g.generation_key = r.generation_key",  # CROSS: r drives
            "ratings r",
            integer=("generation_id",),
            real=("score",),
            carry=("min(r.rowid)",),
        )
        first: dict[str, int] = {}  # each rater's first rating
        for rater, _, _, rowid in combos:
            if rater is not None:
                first[rater] = min(rowid, first.get(rater, rowid))
        marks = ", ".join("?" * len(first))
        identity = pd.DataFrame.from_records(
            conn.execute(
                f"SELECT rater, {', '.join(_RATER_IDENTITY)} FROM ratings WHERE rowid IN ({marks})",
                list(first.values()),
            ).fetchall(),  # fmt: skip
            columns=["rater", *_RATER_IDENTITY],
        ).set_index("rater")
        raters = ratings["rater"].cat.categories
        for col in _RATER_IDENTITY:
            mapped = identity[col].reindex(raters).to_numpy(dtype=object)
            values = pd.Index(pd.unique(mapped[pd.notna(mapped)]), dtype=object)
            codes = values.get_indexer(mapped)
            ratings[col] = pd.Categorical.from_codes(
                np.where(ratings["rater"].cat.codes.to_numpy() >= 0, codes[ratings["rater"].cat.codes], -1),
                categories=values,
            )
        ratings = ratings[["generation_id", "rater", *_RATER_IDENTITY, "dimension", "score", "outcome"]]
        if keys:
            ratings = ratings.merge(
                _read(
                    conn,
                    "SELECT g.rowid AS generation_id, r.rater, r.dimension, r.rating_key FROM ratings r "
                    "JOIN generations g ON g.generation_key = r.generation_key",
                ),
                on=["generation_id", "rater", "dimension"],
                how="left",
            )
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "critiques" in names:
            txt = ", k.text" if text else ""
            critiques = _read(
                conn,
                f"SELECT g.rowid AS generation_id, k.round, k.critic, k.outcome{txt} FROM critiques k "
                "JOIN generations g ON g.generation_key = k.generation_key",
                ("critic", "outcome"),
            )
        else:
            critiques = pd.DataFrame(columns=["generation_id", "round", "critic", "outcome"])
        if "mitigation" in names:
            mitigation = _read(
                conn,
                "SELECT c.rowid AS cell_id, m.rounds, m.stop_reason FROM mitigation m "
                "JOIN cells c ON c.cell_key = m.cell_key",
                ("stop_reason",),
            )
        else:
            mitigation = pd.DataFrame(columns=["cell_id", "rounds", "stop_reason"])
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall()) if "meta" in names else {}
        config = None
        if "runs" in names:
            row = conn.execute("SELECT config FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
            config = parse_run_config(row[0] if row else None)
    finally:
        conn.close()
    return RunTables(path, cells, generations, ratings, critiques, mitigation, meta, config)


def load_audit_card(run_dir: str | Path) -> dict[str, Any] | None:
    """The judge card that ``tribunal audit judges`` stored in a run directory (its JSON document), or ``None``.

    Args:
        run_dir: The run directory, or its ``transcripts.sqlite`` file.

    Raises:
        ValueError: the card file exists but is not a judge card (the message names the file).
    """
    run_dir = Path(run_dir)
    if run_dir.name == STORE_FILENAME:
        run_dir = run_dir.parent
    path = run_dir / AUDIT_DIRNAME / CARD_FILENAME
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a judge card: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("card"), list):
        raise ValueError(f"{path}: card: not a judge card (no list of judges)")
    return document


def parse_run_config(text: str | None) -> dict[str, Any] | None:
    """A run's stored config JSON as a dict; ``None`` when absent or not a JSON object."""
    if not text:
        return None
    try:
        config = json.loads(text)
    except (TypeError, ValueError):
        return None
    return config if isinstance(config, dict) else None


@dataclass
class AnalysisFrame:
    """One row per generation with cell columns and score columns, plus what the scores cover.

    Attributes:
        frame: ``generation_id, cell_id, round, outcome, refusal, <cell columns>, <score columns>``.
        score_columns: One row per score column: ``column, rater, rater_name, dimension, framing_attribute,
            framing_value, n_scored``.
        coverage: Tidy counts ``rater, dimension, outcome, n`` over the frame's generations, where
            ``outcome`` is a rating outcome (``scored``, ``parse_error``, …) or ``not_rated``.
    """

    frame: pd.DataFrame
    score_columns: pd.DataFrame
    coverage: pd.DataFrame

    def columns_for(self, dimension: str) -> list[str]:
        """The score columns of one dimension."""
        sc = self.score_columns
        return sc.loc[sc["dimension"] == dimension, "column"].tolist()


def _cell_frame(tables: RunTables, round_: int | None) -> pd.DataFrame:
    gens = tables.generations
    if round_ is not None:
        gens = gens[gens["round"] == round_]
    gens = gens[["generation_id", "cell_id", "round", "outcome", "refusal"]].reset_index(drop=True)
    cells = tables.cells.drop(columns=[c for c in ("cell_key",) if c in tables.cells.columns])
    # cell_id is the store's rowid, unique: a positional take instead of a merge (seconds at 1.4M rows).
    pos = pd.Index(cells["cell_id"]).get_indexer(gens["cell_id"])
    attrs = cells.drop(columns="cell_id").take(np.where(pos >= 0, pos, 0)).reset_index(drop=True)
    if (pos < 0).any():
        attrs = attrs.mask(pd.Series(pos < 0), axis=0)
    frame = pd.concat([gens, attrs], axis=1)
    # The baseline's persona category is 'none' for the regressions' reference level.
    if "is_baseline" in frame.columns and "persona_category" in frame.columns:
        base = frame["is_baseline"].fillna(0).astype(bool).to_numpy()
        if base.any():
            cat = frame["persona_category"].astype(object).to_numpy().copy()
            cat[base] = "none"
            frame["persona_category"] = pd.Categorical(cat)
    return frame.reset_index(drop=True)


def ratings_long(
    tables: RunTables, round_: int | None = 0, scored_only: bool = True, cell_columns: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """Ratings joined with their generation's cell columns (long format, one row per rating).

    ``cell_columns`` limits the generation and cell columns joined to those named (all by default): each one
    is a take of millions of rows at scale.
    """
    frame = _cell_frame(tables, round_)
    ratings = tables.ratings
    if scored_only:
        ratings = ratings[ratings["score"].notna()]
    pos = pd.Index(frame["generation_id"]).get_indexer(ratings["generation_id"])
    keep = pos >= 0
    ratings = ratings[keep].reset_index(drop=True)
    cols = [c for c in frame.columns if c not in ("outcome", "generation_id")]
    if cell_columns is not None:
        cols = [c for c in cols if c in cell_columns]
    return pd.concat([ratings, frame[cols].take(pos[keep]).reset_index(drop=True)], axis=1)


def analysis_frame(tables: RunTables, round_: int = 0) -> AnalysisFrame:
    """The standard analysis frame: generations of one round (default the originals) × (rater, dimension).

    Score columns are named ``"<dimension>:<rater>"``; a cell is ``NaN`` when that rater did not score that
    generation (no rating, or an unscored outcome). With no ratings at all, there are no score columns and the
    coverage table is empty.
    """
    frame = _cell_frame(tables, round_)
    ratings = tables.ratings
    ratings = ratings[ratings["generation_id"].isin(frame["generation_id"])]
    sc_cols = ["column", "rater", "rater_name", "dimension", "framing_attribute", "framing_value", "n_scored"]
    if ratings.empty:
        return AnalysisFrame(
            frame, pd.DataFrame(columns=sc_cols), pd.DataFrame(columns=["rater", "dimension", "outcome", "n"])
        )
    rater_col = str_categorical(ratings["rater"])
    dim_col = str_categorical(ratings["dimension"])
    rater_codes, rater_cats = integer_codes(rater_col, sort=True)
    dim_codes, dim_cats = integer_codes(dim_col, sort=True)
    pair_codes, uniq = pd.factorize(rater_codes * len(dim_cats) + dim_codes, sort=True)
    pairs = [(rater_cats[u // len(dim_cats)], dim_cats[u % len(dim_cats)]) for u in uniq]
    row = pd.Index(frame["generation_id"]).get_indexer(ratings["generation_id"])
    n, k = len(frame), len(pairs)
    score = ratings["score"].to_numpy(dtype=float)
    ok = ~np.isnan(score)
    flat = row.astype(np.int64) * k + pair_codes
    sums = np.bincount(flat[ok], weights=score[ok], minlength=n * k)
    counts = np.bincount(flat[ok], minlength=n * k)
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = (sums / counts).reshape(n, k)
    names = [f"{dim}:{rater}" for rater, dim in pairs]
    frame = pd.concat([frame, pd.DataFrame(matrix, columns=names)], axis=1)

    first = pd.DataFrame({"code": pair_codes}).drop_duplicates("code").index.to_numpy()
    ident = ratings.iloc[first].assign(code=pair_codes[first]).sort_values("code")
    score_columns = pd.DataFrame(
        {
            "column": names,
            "rater": [r for r, _ in pairs],
            "rater_name": ident["rater_name"].astype(str).to_numpy(),
            "dimension": [d for _, d in pairs],
            "framing_attribute": ident["framing_attribute"].astype(object).to_numpy(),
            "framing_value": ident["framing_value"].astype(object).to_numpy(),
            "n_scored": (counts.reshape(n, k) > 0).sum(axis=0),
        }
    )
    outcome_counts = (
        ratings.assign(rater=rater_col, dimension=dim_col, outcome=str_categorical(ratings["outcome"]))
        .groupby(["rater", "dimension", "outcome"], observed=True)
        .size()
        .rename("n")
        .reset_index()
    )
    rated = (np.bincount(row.astype(np.int64) * k + pair_codes, minlength=n * k).reshape(n, k) > 0).sum(axis=0)
    not_rated = pd.DataFrame(
        {"rater": [r for r, _ in pairs], "dimension": [d for _, d in pairs], "outcome": "not_rated", "n": n - rated}
    )
    coverage = pd.concat([outcome_counts, not_rated[not_rated["n"] > 0]], ignore_index=True)
    coverage = coverage.sort_values(["dimension", "rater", "outcome"], ignore_index=True)
    return AnalysisFrame(frame, score_columns, coverage)
