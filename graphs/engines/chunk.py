"""One chunk of cells through the compiled experiment graph: the step both engines share.

:func:`run_chunk` invokes the graph on a chunk and returns everything the chunk produced as
:class:`ChunkRecords`; :func:`write_chunk` stores those records in a transcript store in one transaction. The
local engine (:func:`graphs.runner.run_experiment`) writes them to the run directory's SQLite store; the Ray
engine (:mod:`graphs.engines.ray_engine`) writes them to a per-batch in-memory store in the actor and returns its
rows as Arrow tables, so that both engines write the same rows with the same columns. :class:`RunTally` counts
what the chunks did into the run's :class:`~graphs.records.RunSummary` the same way for both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agents.types import CallFailure, Completion, GenerationRequest
from graphs.judging import Relay
from graphs.mitigation import Mitigation
from graphs.records import Aggregate, Cell, Critique, Rating, Rewrite, RunSummary, Stop
from graphs.store import TranscriptStore
from raters.panel import Panel

__all__ = ["ChunkRecords", "RunTally", "failed_status", "graph_config", "run_chunk", "write_chunk"]


@dataclass
class ChunkRecords:
    """Everything one chunk produced: one request and one reply (or typed failure) per cell, in order, the
    panel's ratings and verdicts of every round, and the mitigation loop's records."""

    cells: list[Cell]
    requests: list[GenerationRequest]
    results: list[Completion | CallFailure]
    ratings: list[Rating] = field(default_factory=list)
    refusals: dict[str, bool] = field(default_factory=dict)
    rewrites: list[Rewrite] = field(default_factory=list)
    critiques: list[Critique] = field(default_factory=list)
    stops: list[Stop] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)


def graph_config(mitigation: Mitigation | None) -> dict[str, Any]:
    """The graph's invocation config: every mitigation round is four graph steps (critique, rewrite, judge,
    decide)."""
    return {"recursion_limit": 16 + 4 * (mitigation.config.max_rounds if mitigation else 0)}


async def run_chunk(graph: Any, chunk: list[Cell], panel: Panel, config: dict[str, Any]) -> ChunkRecords:
    """Run ``chunk`` through the compiled experiment ``graph`` (see :func:`graphs.experiment.build_experiment_graph`).

    Args:
        graph: the compiled experiment graph.
        chunk: the cells, one graph invocation for all of them.
        panel: the graph's panel (its refusal detector fills the refusal flags).
        config: the invocation config (:func:`graph_config`).

    Returns:
        The chunk's records, ready for :func:`write_chunk`.

    The chunk carries a :class:`~graphs.judging.Relay`, so that each reply's per-request judges start as soon as
    the reply returns; whatever it still runs when the chunk ends (cancelled, or a node raised) is cancelled.
    """
    relay = Relay(panel)
    try:
        state = await graph.ainvoke({"cells": chunk, "relay": relay} if relay else {"cells": chunk}, config=config)
    finally:
        relay.cancel()
    ratings: list[Rating] = state.get("ratings", [])
    return ChunkRecords(
        cells=list(chunk),
        requests=state["requests"],
        results=state["results"],
        ratings=ratings,
        refusals=panel.refusal_flags(ratings),
        rewrites=state.get("rewrites", []),
        critiques=state.get("critiques", []),
        stops=state.get("stops", []),
        aggregates=state.get("aggregates", []),
    )


def write_chunk(store: TranscriptStore, records: ChunkRecords, kinds: dict[str, str], redo: Iterable[str] = ()) -> None:
    """Store a chunk's records in one transaction (``redo``: cells whose earlier mitigation loop is replaced;
    see :meth:`graphs.store.TranscriptStore.write_generations`)."""
    store.write_generations(
        records.cells,
        records.requests,
        records.results,
        kinds,
        ratings=records.ratings,
        refusals=records.refusals,
        rewrites=records.rewrites,
        critiques=records.critiques,
        stops=records.stops,
        aggregates=records.aggregates,
        redo=list(redo),
    )


@dataclass
class RunTally:
    """What the chunks of a run did, counted into its summary in the same way by both engines."""

    outcomes: Counter[str] = field(default_factory=Counter)
    ratings: Counter[str] = field(default_factory=Counter)
    stop_reasons: Counter[str] = field(default_factory=Counter)
    cells: int = 0
    rating_count: int = 0
    rewrites: int = 0
    critiques: int = 0
    retried: int = 0

    def add(self, records: ChunkRecords, retried: int = 0) -> None:
        """Count one chunk (``retried``: how many of its cells ran their mitigation loop again)."""
        self.stop_reasons.update(stop.reason for stop in records.stops)
        self.rewrites += len(records.rewrites)
        self.critiques += len(records.critiques)
        self.retried += retried
        self.ratings.update(r.outcome.value for r in records.ratings)
        self.outcomes.update(result.outcome for result in records.results)
        self.cells += len(records.cells)
        self.rating_count += len(records.ratings)

    def merge(self, counts: dict[str, Any]) -> None:
        """Add the counts of another tally (:meth:`as_dict`; a Ray actor's batch, say)."""
        for name in ("outcomes", "ratings", "stop_reasons"):
            getattr(self, name).update(counts.get(name, {}))
        for name in ("cells", "rating_count", "rewrites", "critiques", "retried"):
            setattr(self, name, getattr(self, name) + int(counts.get(name, 0)))

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcomes": dict(self.outcomes),
            "ratings": dict(self.ratings),
            "stop_reasons": dict(self.stop_reasons),
            "cells": self.cells,
            "rating_count": self.rating_count,
            "rewrites": self.rewrites,
            "critiques": self.critiques,
            "retried": self.retried,
        }

    def into(self, summary: RunSummary) -> RunSummary:
        """Write the counts into ``summary`` (its token and cache counts are the engine's)."""
        summary.outcomes = dict(self.outcomes)
        summary.ratings = dict(self.ratings)
        summary.stop_reasons = dict(self.stop_reasons)
        summary.cells_generated = self.cells
        summary.rating_count = self.rating_count
        summary.rewrites = self.rewrites
        summary.critiques = self.critiques
        summary.mitigation_retried = self.retried
        return summary


def failed_status(summary: RunSummary, max_failed_share: float) -> bool:
    """The run failed: every cell tried failed, or more than ``max_failed_share`` of them."""
    failed, tried = summary.cells_failed, summary.cells_generated
    return bool(failed) and (failed == tried or failed > max_failed_share * tried)
