"""The transcript store: one SQLite database (WAL mode while a run writes) per run directory.

Writes happen in short transactions, one per chunk, so a run killed at any moment leaves whole chunks or
nothing; keys are content-addressed, so re-running finds what is done. Replies enter the response cache as they
arrive, each in its own transaction apart from the chunk, so that a kill repeats only the calls in flight. One
process writes a run directory at a time (:mod:`graphs.rundir` holds the lock); readers never lock, and a store
closed by its writer is left in rollback-journal mode, so that it can be read where nothing can be written
(:func:`graphs.tables.connect_readonly`). See :mod:`graphs.records` for the records and tables. The store
depends on nothing else in :mod:`graphs`.
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

from agents.types import CallFailure, Completion, GenerationRequest, Message, Sampling, plain_sampling
from graphs.records import (
    DDL,
    RETRIED_CALL_OUTCOMES,
    SCHEMA_VERSION,
    STORE_FILENAME,
    Aggregate,
    Cell,
    Critique,
    Rating,
    Rewrite,
    Stop,
    connect_readonly,
    rating_key,
)
from raters.types import RETRYABLE_OUTCOMES


class StoreError(RuntimeError):
    """The run directory cannot be used as a transcript store."""


class RunDirectoryError(StoreError):
    """The run directory refuses this run: another process writes it, another config or an older tribunal made
    it. Nothing was written; the message says what to do."""


class TranscriptStore:
    """A run directory's SQLite store."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        try:
            if readonly:
                self._db = connect_readonly(path)
            else:
                self._db = sqlite3.connect(path, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("PRAGMA busy_timeout=10000")
                fresh = not self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
                self._db.executescript(DDL)
                if fresh:
                    version = (str(SCHEMA_VERSION),)
                    self._db.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", version)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open the transcript store: {exc}") from None
        self._db.row_factory = sqlite3.Row
        self.readonly = readonly

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
        """Close; the file is left in rollback-journal mode when no reader has it open, so that it opens
        read-only anywhere."""
        if not self.readonly:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA busy_timeout=0")
                self._db.execute("PRAGMA journal_mode=DELETE")
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

    # ------------------------------------------------------------------------------------------- meta
    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def require_current_schema(self) -> None:
        """Refuse to write a store of another schema version; an older one that holds no cells is upgraded.

        Raises:
            RunDirectoryError: the store was written by another version of tribunal.
        """
        stored = int(self.meta("schema_version") or SCHEMA_VERSION)
        if stored == SCHEMA_VERSION:
            return
        run_dir = self.path.parent
        if stored < SCHEMA_VERSION and not self.count("cells"):
            with self.transaction() as db:
                columns = {row[1] for row in db.execute("PRAGMA table_info(critiques)")}
                if "critic_model" not in columns:
                    db.execute("ALTER TABLE critiques ADD COLUMN critic_model TEXT")
                if "attempts" not in columns:
                    db.execute("ALTER TABLE critiques ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1")
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
            return
        which = "an older" if stored < SCHEMA_VERSION else "a newer"
        raise RunDirectoryError(
            f"{run_dir}: made by {which} tribunal (store schema {stored}; this version writes schema {SCHEMA_VERSION}, "
            "whose keys differ): run into a new directory; analyze, report and export still read this one"
        )

    def fingerprint(self) -> dict[str, str] | None:
        """The config fingerprint the run directory was made with (``None``: none recorded yet)."""
        stored = self.meta("fingerprint")
        return None if stored is None else dict(json.loads(stored))

    def set_fingerprint(self, fingerprint: dict[str, str]) -> None:
        self.set_meta("fingerprint", json.dumps(fingerprint, sort_keys=True))

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
                messages_json(c.messages), now,
            )
            for c in cells
        ]  # fmt: skip
        with self.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def completed_cells(self) -> set[str]:
        """Cells whose original generation is final (a reply, or a content-filter verdict) and whose mitigation
        loop, if it ran, did not stop on a failed call.

        Cells whose call failed (timeouts, server errors, …) are not complete: the next run tries them again and
        replaces the failed row. Nor are cells whose loop stopped at ``rewrite_failed`` because the critic's or the
        rewriter's call failed (:meth:`mitigation_to_retry`); an empty critique or a filtered rewrite is the
        model's answer, and final.
        """
        rows = self._db.execute(
            "SELECT cell_key FROM generations WHERE round = 0 AND outcome IN ('ok', 'content_filter')"
        )
        return {row[0] for row in rows} - self.mitigation_to_retry()

    def mitigation_to_retry(self) -> set[str]:
        """Cells whose mitigation loop stopped at ``rewrite_failed`` on a failed critique or rewrite call."""
        marks = ", ".join("?" for _ in RETRIED_CALL_OUTCOMES)
        rows = self._db.execute(
            "SELECT m.cell_key FROM mitigation m WHERE m.stop_reason = 'rewrite_failed' AND ("
            " EXISTS (SELECT 1 FROM generations g JOIN critiques k ON k.generation_key = g.generation_key"
            f"  WHERE g.cell_key = m.cell_key AND k.outcome IN ({marks}))"
            " OR EXISTS (SELECT 1 FROM generations g WHERE g.cell_key = m.cell_key AND g.round > 0"
            f"  AND g.outcome IN ({marks})))",
            (*RETRIED_CALL_OUTCOMES, *RETRIED_CALL_OUTCOMES),
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
        redo: Iterable[str] = (),
    ) -> None:
        """Store one chunk's generations and their ratings in one transaction.

        A retried failure replaces its failed row. ``refusals`` (generation key → flag, from the panel's refusal
        detector) fills ``generations.refusal``; generations without a flag keep it NULL. ``redo`` names cells
        whose mitigation loop ran again: their earlier loop rows (rewrites, their ratings and verdicts, critiques,
        the stop) are removed first, so that the store holds one loop per cell.
        """
        now = time.time()
        refusals = refusals or {}
        versions = [
            Rewrite(cell, round_, None, cell.model, request, result)
            for cell, request, result in zip(cells, requests, results, strict=True)
        ]
        with self.transaction() as db:
            redone = [(key,) for key in redo]
            if redone:
                loop = "SELECT generation_key FROM generations WHERE cell_key = ? AND round > 0"
                db.executemany(f"DELETE FROM ratings WHERE generation_key IN ({loop})", redone)
                db.executemany(f"DELETE FROM aggregates WHERE generation_key IN ({loop})", redone)
                db.executemany(
                    "DELETE FROM critiques WHERE generation_key IN "
                    "(SELECT generation_key FROM generations WHERE cell_key = ?)",
                    redone,
                )
                db.executemany("DELETE FROM generations WHERE cell_key = ? AND round > 0", redone)
                db.executemany("DELETE FROM mitigation WHERE cell_key = ?", redone)
            db.executemany(
                "INSERT OR REPLACE INTO generations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_generation_row(v, backends, refusals, now) for v in [*versions, *rewrites]],
            )
            self._insert_ratings(db, ratings, now)
            db.executemany(
                "INSERT OR REPLACE INTO critiques(critique_key, generation_key, round, critic, critic_model, text, "
                "outcome, attempts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (c.key, c.generation_key, c.round, c.critic, c.critic_model, c.text, c.outcome, c.attempts, now)
                    for c in critiques
                ],
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
        """Remember completed calls at once, in their own transaction, so that a crash never pays for them twice.

        A server backend's replies come one by one, as they arrive (:mod:`agents.cached`); a commit costs tens of
        microseconds in WAL mode, well under a call's own cost.
        """
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
            framing = r.framing or r.rater.framing  # a `framing: profile` verdict records the item's profile
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
        """Every generation with a reply to judge: key, text, messages, language, and the cell's model and target
        (round order, then key)."""
        return self.query(
            "SELECT g.generation_key, g.text, g.messages, c.language, c.model, c.target_id FROM generations g "
            "JOIN cells c USING (cell_key) WHERE g.outcome = 'ok' AND g.text IS NOT NULL ORDER BY g.round, "
            "g.generation_key"
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
    key = rewrite.key
    return (
        key,
        rewrite.cell.key,
        rewrite.round,
        rewrite.parent_key,
        rewrite.model,
        backends.get(rewrite.model, "given" if rewrite.cell.given is not None else "unknown"),
        messages_json(request.messages),
        params_json(request.sampling),
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


#: ``json.dumps``'s own string encoders (C): ``ensure_ascii=False`` (messages) and the default (params)
_quote, _quote_ascii = json.encoder.encode_basestring, json.encoder.encode_basestring_ascii


def messages_json(messages: Sequence[Message]) -> str:
    """``json.dumps([m.model_dump() for m in messages], ensure_ascii=False)``, written directly where role and
    content are plain strings."""
    parts = []
    for message in messages:
        role, content = message.role, message.content
        if type(role) is str and type(content) is str:
            parts.append(f'{{"role": {_quote(role)}, "content": {_quote(content)}}}')
        else:
            parts.append(json.dumps(message.model_dump(), ensure_ascii=False))
    return f"[{', '.join(parts)}]"


def params_json(sampling: Sampling) -> str:
    """``json.dumps(sampling.model_dump(mode="json"))``, written directly where every value has its plain type."""
    if plain_sampling(sampling):
        temperature, top_p, max_tokens, seed, stop = (
            sampling.temperature, sampling.top_p, sampling.max_tokens, sampling.seed, sampling.stop
        )  # fmt: skip
        return (
            f'{{"temperature": {temperature!r}, "top_p": {top_p!r}, "max_tokens": {max_tokens}, '
            f'"seed": {"null" if seed is None else seed}, "stop": [{", ".join(map(_quote_ascii, stop))}]}}'
        )
    return json.dumps(sampling.model_dump(mode="json"))


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)
