"""The transcript store: one SQLite database (WAL mode) per run directory.

Writes happen in short transactions, one per chunk, so a run killed at any moment leaves whole chunks or
nothing; keys are content-addressed, so re-running finds what is done. See :mod:`graphs.records` for the
records and tables. The store depends on nothing else in :mod:`graphs`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agents.types import CallFailure, Completion, GenerationRequest
from graphs.records import (
    DDL,
    SCHEMA_VERSION,
    STORE_FILENAME,
    Aggregate,
    Cell,
    Critique,
    Rating,
    Rewrite,
    Stop,
    generation_key,
    rating_key,
)
from raters.types import RETRYABLE_OUTCOMES


class StoreError(RuntimeError):
    """The run directory cannot be used as a transcript store."""


class TranscriptStore:
    """A run directory's SQLite store."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            else:
                self._db = sqlite3.connect(path, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("PRAGMA busy_timeout=10000")
                self._db.executescript(DDL)
                self._db.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open the transcript store: {exc}") from None
        self._db.row_factory = sqlite3.Row

    @classmethod
    def open(cls, run_dir: Path, *, create: bool = True) -> TranscriptStore:
        path = Path(run_dir) / STORE_FILENAME
        if not create and not path.exists():
            raise StoreError(f"{run_dir}: not a tribunal run directory (no {STORE_FILENAME})")
        if create:
            try:
                Path(run_dir).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{run_dir}: cannot create the run directory: {exc.strerror}") from None
        return cls(path, readonly=not create)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a database error (a full disk, say) becomes a one-line :class:`StoreError`."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._write_error(exc) from None
        try:
            yield self._db
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise self._write_error(exc) from None
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise

    def _write_error(self, exc: sqlite3.Error) -> StoreError:
        return StoreError(
            f"{self.path}: cannot write the transcript store: {exc}; free space and run the same command again "
            "to resume"
        )

    # ------------------------------------------------------------------------------------------- runs
    def begin_run(self, command: str, config: dict[str, Any]) -> int:
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs(command, started_at, config) VALUES (?, ?, ?)",
                (command, time.time(), json.dumps(config, ensure_ascii=False)),
            )
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE run_id = ?",
                (time.time(), status, json.dumps(summary), run_id),
            )

    # ------------------------------------------------------------------------------------------ cells
    def add_cells(self, cells: Iterable[Cell]) -> None:
        now = time.time()
        rows = [
            (
                c.key, c.model, c.persona_id, c.persona_kind, c.persona_category, c.persona_gender, c.target_id,
                c.target_category, c.template_id, c.template_style, c.language, c.repeat, int(c.is_baseline), c.seed,
                json.dumps([m.model_dump() for m in c.messages], ensure_ascii=False), now,
            )
            for c in cells
        ]  # fmt: skip
        with self.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def completed_cells(self) -> set[str]:
        """Cells whose original generation is final: a reply, or a content-filter verdict.

        Cells whose call failed (timeouts, server errors, …) are not complete: the next run tries them again and
        replaces the failed row.
        """
        rows = self._db.execute(
            "SELECT cell_key FROM generations WHERE round = 0 AND outcome IN ('ok', 'content_filter')"
        )
        return {row[0] for row in rows}

    # ------------------------------------------------------------------------------------ generations
    def write_generations(
        self,
        cells: Sequence[Cell],
        requests: Sequence[GenerationRequest],
        results: Sequence[Completion | CallFailure],
        backends: dict[str, str],
        round_: int = 0,
        *,
        ratings: Sequence[Rating] = (),
        refusals: dict[str, bool] | None = None,
        rewrites: Sequence[Rewrite] = (),
        critiques: Sequence[Critique] = (),
        stops: Sequence[Stop] = (),
        aggregates: Sequence[Aggregate] = (),
    ) -> None:
        """Store one chunk's generations and their ratings in one transaction.

        A retried failure replaces its failed row. ``refusals`` (generation key → flag, from the panel's refusal
        detector) fills ``generations.refusal``; generations without a flag keep it NULL.
        """
        now = time.time()
        refusals = refusals or {}
        versions = [
            Rewrite(cell, round_, None, cell.model, request, result)
            for cell, request, result in zip(cells, requests, results, strict=True)
        ]
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO generations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_generation_row(v, backends, refusals, now) for v in [*versions, *rewrites]],
            )
            self._insert_ratings(db, ratings, now)
            db.executemany(
                "INSERT OR REPLACE INTO critiques VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(c.key, c.generation_key, c.round, c.critic, c.text, c.outcome, now) for c in critiques],
            )
            db.executemany(
                "INSERT OR REPLACE INTO aggregates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        a.item_key, a.dimension, a.method, a.score, a.outcome, a.n_raters, a.n_scored,
                        json.dumps(list(a.raters_scored)), now,
                    )
                    for a in aggregates
                ],
            )  # fmt: skip
            db.executemany(
                "INSERT OR REPLACE INTO mitigation VALUES (?, ?, ?, ?)",
                [(s.cell_key, s.rounds, s.reason, now) for s in stops],
            )

    # ------------------------------------------------------------------------------------------ cache
    def cache_get(self, keys: Sequence[str]) -> dict[str, str]:
        """Stored responses for these call keys (the content-addressed response cache)."""
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            batch = list(keys[start : start + 500])
            marks = ", ".join("?" for _ in batch)
            for key, response in self._db.execute(
                f"SELECT call_key, response FROM cache WHERE call_key IN ({marks})", batch
            ):
                found[key] = response
        return found

    def cache_put(self, entries: Sequence[tuple[str, str]]) -> None:
        """Remember completed calls at once, in their own transaction, so a crash never pays for them twice."""
        if not entries:
            return
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO cache VALUES (?, ?, ?)", [(key, response, now) for key, response in entries]
            )

    # ---------------------------------------------------------------------------------------- ratings
    def write_ratings(self, ratings: Sequence[Rating], refusals: dict[str, bool] | None = None) -> None:
        """Store ratings in one transaction; a rating of the same key (a retried timeout, say) is replaced.

        ``refusals`` fills ``generations.refusal`` where it is still NULL: a stored flag is never changed.
        """
        with self.transaction() as db:
            self._insert_ratings(db, ratings, time.time())
            if refusals:
                db.executemany(
                    "UPDATE generations SET refusal = ? WHERE generation_key = ? AND refusal IS NULL",
                    [(_flag(flag), key) for key, flag in refusals.items()],
                )

    @staticmethod
    def _insert_ratings(db: sqlite3.Connection, ratings: Sequence[Rating], now: float) -> None:
        names: dict[int, str] = {}  # a chunk's ratings share a few rater identities: render each once
        rows = []
        for r in ratings:
            rater = names.get(id(r.rater))
            if rater is None:
                rater = names[id(r.rater)] = str(r.rater)
            framing = r.rater.framing
            rows.append(
                (
                    rating_key(r.item_key, rater, r.dimension), r.item_key, rater, r.rater.name, r.rater.model,
                    framing.attribute if framing else None, framing.value if framing else None,
                    r.rater.rubric, r.rater.rubric_version, r.dimension, r.score, r.raw, r.scale, r.outcome.value,
                    r.rationale, r.attempts, r.latency_s, r.prompt_tokens, r.completion_tokens, now,
                )
            )  # fmt: skip
        db.executemany(
            "INSERT OR REPLACE INTO ratings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )

    def final_rating_keys(self) -> set[str]:
        """Keys of stored ratings that are final; timeouts and server errors are asked again."""
        retry = tuple(o.value for o in RETRYABLE_OUTCOMES)
        marks = ", ".join("?" for _ in retry)
        return {
            row[0] for row in self._db.execute(f"SELECT rating_key FROM ratings WHERE outcome NOT IN ({marks})", retry)
        }

    def judgeable_generations(self) -> list[sqlite3.Row]:
        """Every generation with a reply to judge: key, text, messages, language (round order, then key)."""
        return self.query(
            "SELECT g.generation_key, g.text, g.messages, c.language FROM generations g JOIN cells c USING (cell_key) "
            "WHERE g.outcome = 'ok' AND g.text IS NOT NULL ORDER BY g.round, g.generation_key"
        )

    # -------------------------------------------------------------------------------------- reporting
    def count(self, table: str, where: str = "", params: Sequence[Any] = ()) -> int:
        return int(self._db.execute(f"SELECT COUNT(*) FROM {table} {where}", params).fetchone()[0])

    def outcome_counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT outcome, COUNT(*) FROM generations WHERE round = 0 GROUP BY outcome")
        return {r[0]: int(r[1]) for r in rows}

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return list(self._db.execute(sql, params))


def _generation_row(rewrite: Rewrite, backends: dict[str, str], refusals: dict[str, bool], now: float) -> tuple:
    """A ``generations`` row for one version of a cell's reply (round 0: the original, no parent)."""
    result, request = rewrite.result, rewrite.request
    is_completion = isinstance(result, Completion)
    key = generation_key(rewrite.cell.key, rewrite.round)
    return (
        key,
        rewrite.cell.key,
        rewrite.round,
        rewrite.parent_key,
        rewrite.model,
        backends.get(rewrite.model, "unknown"),
        json.dumps([m.model_dump() for m in request.messages], ensure_ascii=False),
        json.dumps(request.sampling.model_dump(mode="json")),
        result.text if is_completion else None,
        result.outcome,
        result.finish_reason if is_completion else None,
        None if is_completion else result.message,
        result.usage.prompt_tokens if is_completion else None,
        result.usage.completion_tokens if is_completion else None,
        result.latency_s,
        result.attempts,
        _flag(refusals.get(key)),
        now,
    )


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)
