"""The judging graph: one batch of texts fanned out to every rater of the panel at once, then aggregated.

    START ──┬──▶ rate_<rater 1> ──┬──▶ aggregate ──▶ END
            ├──▶ rate_<rater 2> ──┤
            └──▶ rate_<rater n> ──┘

Every rater node gets the whole batch (LangGraph runs the branches of one step concurrently) and appends its
ratings to ``ratings``; ``aggregate`` combines them per text and dimension with the panel's method, unscored
ratings excluded (:mod:`raters.aggregate`). A rater that raises is recorded as ``server_error`` for what it was
given, so one broken judge never sinks the chunk. Ratings whose keys are in ``skip`` (already stored) are not
asked again. The caller stores ``ratings``: generations and their ratings go to the store in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import operator
from collections.abc import Sequence
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from agents.types import CallFailure, Completion
from graphs.records import Cell, generation_key
from raters.aggregate import Aggregate, aggregate
from raters.base import Rater
from raters.panel import Panel
from raters.types import Rating, RatingItem, RatingOutcome, rating_key

log = logging.getLogger(__name__)


class JudgingState(TypedDict, total=False):
    """State of the judging graph for one batch.

    Attributes:
        items: the texts to rate, with their context (input).
        skip: rating keys already stored; those ratings are not asked again (input, optional).
        ratings: every rater's ratings, appended concurrently by the rater nodes.
        aggregates: the panel's verdict per item and dimension, from ``aggregate``.
    """

    items: list[RatingItem]
    skip: frozenset[str]
    ratings: Annotated[list[Rating], operator.add]
    aggregates: list[Aggregate]


def rating_items(
    cells: Sequence[Cell], results: Sequence[Completion | CallFailure], round_: int = 0
) -> list[RatingItem]:
    """The judgeable generations of a chunk (replies with text; failures and filtered replies are not rated)."""
    items = []
    for cell, result in zip(cells, results, strict=True):
        if isinstance(result, Completion) and result.outcome == "ok":
            items.append(item_for(generation_key(cell.key, round_), result.text, cell.messages, cell.language))
    return items


def item_for(key: str, text: str, messages: Sequence[Any], language: str) -> RatingItem:
    """A rating item from a generation's text and the chat that produced it."""

    def content(role: str) -> str | None:
        found = [m for m in messages if (m["role"] if isinstance(m, dict) else m.role) == role]
        if not found:
            return None
        last = found[-1]
        return last["content"] if isinstance(last, dict) else last.content

    return RatingItem(key=key, text=text, prompt=content("user"), persona=content("system"), language=language)


async def rate_with(rater: Rater, items: Sequence[RatingItem], skip: frozenset[str] = frozenset()) -> list[Rating]:
    """One rater's ratings of a batch (what a ``rate_<rater>`` node appends); never raises for a broken judge."""
    if skip:  # only `tribunal rate` passes keys to skip; a run's fresh replies need no key lookups
        identity = str(rater.identity())
        items = [i for i in items if not all(rating_key(i.key, identity, d) in skip for d in rater.dimensions)]
    if not items:
        return []
    try:
        return await rater.rate(items)
    except Exception as exc:  # a broken judge is a typed outcome for its batch, not a crashed run
        log.exception("rater %s failed", rater.name)
        note = f"rater error: {type(exc).__name__}: {exc}"[:500]
        return [
            rater.unscored(item, d, RatingOutcome.SERVER_ERROR, rationale=note, attempts=0)
            for item in items
            for d in rater.dimensions
        ]


async def judge_batch(
    panel: Panel, items: Sequence[RatingItem], skip: frozenset[str] = frozenset()
) -> tuple[list[Rating], list[Aggregate]]:
    """What the judging graph computes, without the graph: every rater on the batch at once, then the aggregates.

    The experiment graph's ``judge`` node calls this directly: compiling nothing and invoking no nested graph per
    chunk and round (LangGraph's per-step bookkeeping cost more than the aggregation itself). Ratings come in the
    order the graph's ``operator.add`` reducer appends them: LangGraph applies a step's writes sorted by node name.
    """
    raters = sorted(panel.raters, key=lambda r: f"rate_{r.name}")
    if len(raters) == 1:
        per_rater = [await rate_with(raters[0], items, skip)]
    else:
        per_rater = await asyncio.gather(*(rate_with(rater, items, skip) for rater in raters))
    ratings = [rating for batch in per_rater for rating in batch]
    return ratings, aggregate(ratings, panel.method, panel.threshold)


def _rater_node(rater: Rater) -> Any:
    async def rate(state: JudgingState) -> JudgingState:
        return {"ratings": await rate_with(rater, state.get("items", []), state.get("skip") or frozenset())}

    return rate


def build_judging_graph(panel: Panel) -> Any:
    """Compile the judging graph of a panel (``tribunal rate`` runs it per chunk; see also :func:`judge_batch`)."""

    async def combine(state: JudgingState) -> JudgingState:  # a coroutine: LangGraph runs plain functions in threads
        return {"aggregates": aggregate(state.get("ratings", []), panel.method, panel.threshold)}

    graph = StateGraph(JudgingState)
    graph.add_node("aggregate", combine)
    for rater in panel.raters:
        node = f"rate_{rater.name}"
        graph.add_node(node, _rater_node(rater))
        graph.add_edge(START, node)
        graph.add_edge(node, "aggregate")
    if not panel.raters:
        graph.add_edge(START, "aggregate")
    graph.add_edge("aggregate", END)
    return graph.compile()
