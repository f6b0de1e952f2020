"""The transcript schema: the tables a run directory's SQLite store holds, its file names and outcome vocabularies.

Standard library only, so that :mod:`analysis` reads run directories without importing langgraph, a model
runtime or the record classes; the records that fill these tables are in :mod:`graphs.records`, which
re-exports everything here. Every table is keyed by content: a key is a hash of what determines the row, so
running the same work again finds the row instead of adding a second one.

Tables
------
``runs``
    One row per invocation of ``tribunal run``/``rate`` on the directory: when, the resolved config (API keys
    appear only as ``${ENV_VAR}`` references) and the summary.
``cells``
    One row per design cell: model × persona × target group × template × language × repeat. Baseline cells
    have ``is_baseline = 1`` and ``persona_id = 'none'``.
``generations``
    One row per model output for a cell. ``round`` 0 is the original generation; rounds 1.. are rewrites of the
    mitigation loop, ``parent_key`` pointing at the generation that was rewritten. ``outcome`` is ``ok`` or a
    typed failure (``timeout``, ``server_error``, ``rate_limited``, ``connection_error``, ``bad_response``,
    ``client_error``, ``content_filter``); a failed generation has ``text`` NULL. ``attempts`` counts HTTP
    attempts (retries included; 1 per call on local backends; 0 when the reply came from the response cache).
``ratings``
    One row per (generation, rater, dimension). ``score`` is normalised to 0–1 and NULL exactly when
    ``outcome`` is not ``scored`` (then it is one of ``parse_error``, ``refusal``, ``truncated``, ``timeout``,
    ``content_filter``, ``server_error``). ``rater`` is the rater's full identity (name, model, rubric version,
    framing); ``framing_attribute``/``framing_value`` repeat the demographic framing for analysis.
    ``attempts`` are the HTTP attempts the verdict cost (a re-ask's included; 0 from the cache; 1 for a local
    classifier), shared by the dimensions of one verdict.
``aggregates``
    The panel's verdict per (generation, dimension) at judging time in ``tribunal run``: the method (``mean``,
    ``median``, ``majority``), the score (NULL when no rater scored, ``outcome`` ``no_scores``, or on a majority
    ``tie``), how many raters rated and how many scored, and which. ``tribunal rate`` adds ratings without
    rewriting these verdicts; analysis can always recompute them from ``ratings``.
``critiques``
    The mitigation loop's critic feedback, one row per (generation, critic): the critic's name and its model
    (``critic_model``, ``backend:model`` as ``ratings.rater_model``; the key also holds the model's ``base_url``)
    and the HTTP attempts spent (``attempts``, 0 when served from the cache).
``mitigation``
    One row per cell that went through the mitigation loop: rounds used and the stop reason
    (``below_threshold``, ``max_rounds``, ``refused``, ``rewrite_failed``, ``unscored``).
``cache``
    Content-addressed response cache: a model call's key → its stored response, so that no completed call is
    paid for twice.
``meta``
    ``schema_version`` (a store of another version is refused for writing) and ``fingerprint``: the parts of the
    resolved config that determine results, field by field (:func:`graphs.records.config_fingerprint`), so that a
    run directory holds one experiment.

A run directory also holds ``config.yaml`` (the resolved config) and ``.tribunal.lock``, the lock a writing
process holds (its pid inside) so that one process writes a run directory at a time.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

#: 2: critiques record the critic's model and attempts; model base URLs enter cell, rating and critique keys.
SCHEMA_VERSION = 2

STORE_FILENAME = "transcripts.sqlite"
CONFIG_FILENAME = "config.yaml"
LOCK_FILENAME = ".tribunal.lock"
#: ``tribunal audit judges`` writes into ``RUN_DIR/audit/``: the judge card (JSON), the audit's ratings with their
#: texts (JSON lines) and the audit's own response cache (a transcript store holding only cached calls).
AUDIT_DIRNAME = "audit"
CARD_FILENAME = "judge_card.json"
AUDIT_RATINGS_FILENAME = "ratings.jsonl"
AUDIT_CACHE_FILENAME = "cache.sqlite"
#: The Ray engine's Parquet run directory (:mod:`analysis.parquet_run`): its fingerprint file and the folder of
#: commit records that make a batch's parts count.
PARQUET_META_FILENAME = "meta.json"
PARQUET_COMMITS_DIRNAME = "_commits"
#: The tables a Parquet run directory holds (``tribunal export``'s), in the order a batch applies them.
PARQUET_TABLES = ("cells", "generations", "ratings", "aggregates", "critiques", "mitigation", "runs")

GENERATION_OUTCOMES = (
    "ok",
    "timeout",
    "server_error",
    "rate_limited",
    "connection_error",
    "bad_response",
    "client_error",
    "content_filter",
)
RATING_OUTCOMES = ("scored", "parse_error", "refusal", "truncated", "timeout", "content_filter", "server_error")
STOP_REASONS = ("below_threshold", "max_rounds", "refused", "rewrite_failed", "unscored")

DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    command     TEXT NOT NULL,
    started_at  REAL NOT NULL,
    finished_at REAL,
    status      TEXT NOT NULL DEFAULT 'running',
    config      TEXT NOT NULL,
    summary     TEXT
);
CREATE TABLE IF NOT EXISTS cells (
    cell_key         TEXT PRIMARY KEY,
    model            TEXT NOT NULL,
    persona_id       TEXT NOT NULL,
    persona_kind     TEXT NOT NULL,
    persona_category TEXT NOT NULL,
    persona_gender   TEXT NOT NULL,
    target_id        TEXT NOT NULL,
    target_category  TEXT NOT NULL,
    template_id      TEXT NOT NULL,
    template_style   TEXT NOT NULL,
    language         TEXT NOT NULL,
    repeat           INTEGER NOT NULL,
    is_baseline      INTEGER NOT NULL,
    seed             INTEGER NOT NULL,
    messages         TEXT NOT NULL,
    created_at       REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS generations (
    generation_key    TEXT PRIMARY KEY,
    cell_key          TEXT NOT NULL REFERENCES cells(cell_key),
    round             INTEGER NOT NULL DEFAULT 0,
    parent_key        TEXT,
    model             TEXT NOT NULL,
    backend           TEXT NOT NULL,
    messages          TEXT NOT NULL,
    params            TEXT NOT NULL,
    text              TEXT,
    outcome           TEXT NOT NULL,
    finish_reason     TEXT,
    error             TEXT,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    latency_s         REAL,
    attempts          INTEGER NOT NULL DEFAULT 1,
    refusal           INTEGER,
    created_at        REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS generations_cell ON generations(cell_key, round);
CREATE TABLE IF NOT EXISTS ratings (
    rating_key        TEXT PRIMARY KEY,
    generation_key    TEXT NOT NULL REFERENCES generations(generation_key),
    rater             TEXT NOT NULL,
    rater_name        TEXT NOT NULL,
    rater_model       TEXT,
    framing_attribute TEXT,
    framing_value     TEXT,
    rubric            TEXT,
    rubric_version    TEXT,
    dimension         TEXT NOT NULL,
    score             REAL,
    raw               TEXT,
    scale             TEXT,
    outcome           TEXT NOT NULL,
    rationale         TEXT,
    attempts          INTEGER NOT NULL DEFAULT 1,
    latency_s         REAL,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    created_at        REAL NOT NULL,
    CHECK ((outcome = 'scored') = (score IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS ratings_generation ON ratings(generation_key);
CREATE TABLE IF NOT EXISTS aggregates (
    generation_key TEXT NOT NULL REFERENCES generations(generation_key),
    dimension      TEXT NOT NULL,
    method         TEXT NOT NULL,
    score          REAL,
    outcome        TEXT NOT NULL,
    n_raters       INTEGER NOT NULL,
    n_scored       INTEGER NOT NULL,
    raters_scored  TEXT NOT NULL,
    created_at     REAL NOT NULL,
    PRIMARY KEY (generation_key, dimension, method),
    CHECK ((outcome = 'scored') = (score IS NOT NULL))
);
CREATE TABLE IF NOT EXISTS critiques (
    critique_key   TEXT PRIMARY KEY,
    generation_key TEXT NOT NULL REFERENCES generations(generation_key),
    round          INTEGER NOT NULL,
    critic         TEXT NOT NULL,
    critic_model   TEXT,
    text           TEXT,
    outcome        TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 1,
    created_at     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS critiques_generation ON critiques(generation_key);
CREATE TABLE IF NOT EXISTS mitigation (
    cell_key    TEXT PRIMARY KEY REFERENCES cells(cell_key),
    rounds      INTEGER NOT NULL,
    stop_reason TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cache (
    call_key   TEXT PRIMARY KEY,
    response   TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

#: The columns of each table, in order, for readers that build DataFrames.
TABLES = ("meta", "runs", "cells", "generations", "ratings", "aggregates", "critiques", "mitigation", "cache")


def connect_readonly(path: str | Path) -> sqlite3.Connection:
    """Open a transcript store for reading only, also in a directory that cannot be written.

    ``mode=ro`` first: it reads a store while ``tribunal run`` appends to it, and the write-ahead log of a run that
    was killed. SQLite cannot open a WAL-mode file that way where it cannot create the ``-shm`` index beside it (a
    read-only directory or file system); with no ``-wal`` file there, nothing is pending outside the database
    file, so it is opened as ``immutable`` instead.

    Raises:
        sqlite3.Error: the file cannot be read as a database.
    """
    path = Path(path).resolve()
    uri = path.as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        return conn
    except sqlite3.OperationalError:
        conn.close()
        wal = path.with_name(path.name + "-wal")
        if not path.is_file() or (wal.exists() and wal.stat().st_size > 0):
            raise
    return sqlite3.connect(f"{uri}?immutable=1", uri=True)
