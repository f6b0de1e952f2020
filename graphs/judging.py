"""Judging: the ``judge`` node that the experiment graph and the judging graph (``tribunal rate``) share.

    experiment graph:  … ──▶ generate ──▶ judge ──▶ decide ──▶ …
    judging graph:     START ──▶ judge ──▶ END

``judge`` gives the pending batch to every rater of the panel at once and appends their ratings; the panel's
verdict per text and dimension combines them with the panel's method, unscored ratings excluded
(:mod:`raters.aggregate`).

Requests flow, not stages: when the state carries a :class:`Relay` (the runner passes one with every chunk), the
nodes that produce texts (``generate``, ``rewrite``) hand each text to it the moment its call returns, and the
relay starts the panel's per-request judges (LLM judges on server backends) on that one text at once, instead of
waiting for the chunk's slowest call; ``judge`` then collects what they returned and runs the batch raters (local
models, classifiers, word lists) on the whole batch as before. The graph's shape and what each node means are
unchanged; ratings come in the same order (panel order, then the batch's order) either way.

A rater that raises is recorded as ``server_error`` for what it was given, so one broken judge never sinks the
chunk. Ratings whose keys are in ``skip`` (already stored) are not asked again. The caller stores ``ratings``:
generations and their ratings go to the store in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from langgraph.graph import END, START, StateGraph

from agents.base import Backend, GenerationOutput
from agents.cached import PER_REQUEST_KINDS
from agents.types import CallFailure, Completion, GenerationRequest
from graphs.records import Cell, generation_key
from graphs.state import ExperimentState
from raters.aggregate import Aggregate, aggregate
from raters.base import Rater
from raters.panel import Panel
from raters.types import Rating, RatingItem, RatingOutcome, rating_key

log = logging.getLogger(__name__)


def rating_items(
    cells: Sequence[Cell], results: Sequence[Completion | CallFailure], round_: int = 0
) -> list[RatingItem]:
    """The judgeable generations of a chunk (replies with text; failures and filtered replies are not rated)."""
    items = []
    for cell, result in zip(cells, results, strict=True):
        if isinstance(result, Completion) and result.outcome == "ok":
            key = generation_key(cell.key, round_)
            items.append(item_for(key, result.text, cell.messages, cell.language, cell.profile))
    return items


def item_for(
    key: str, text: str, messages: Sequence[Any], language: str, profile: dict[str, str] | None = None
) -> RatingItem:
    """A rating item from a generation's text, the chat that produced it and the cell's demographic profile."""

    def content(role: str) -> str | None:
        found = [m for m in messages if (m["role"] if isinstance(m, dict) else m.role) == role]
        if not found:
            return None
        last = found[-1]
        return last["content"] if isinstance(last, dict) else last.content

    return RatingItem(
        key=key, text=text, prompt=content("user"), persona=content("system"), language=language, profile=profile
    )


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
    """Every rater of the panel on the batch at once, then the panel's verdicts; ratings in panel order."""
    if len(panel.raters) == 1:
        per_rater = [await rate_with(panel.raters[0], items, skip)]
    else:
        per_rater = await asyncio.gather(*(rate_with(rater, items, skip) for rater in panel.raters))
    ratings = [rating for batch in per_rater for rating in batch]
    return ratings, aggregate(ratings, panel.method, panel.threshold)


def answers_each_request(backend: Backend | None) -> bool:
    """The backend sends each request as its own call to a server (OpenAI-compatible, LangChain): a batch of one
    costs it nothing, so its requests can leave one by one as their texts arrive."""
    if backend is None:
        return False
    flag = getattr(backend, "per_request", None)  # a CachedBackend knows it of its inner backend
    if flag is None:
        flag = getattr(backend, "answers_each_request", backend.kind in PER_REQUEST_KINDS)
    return bool(flag)


class Relay:
    """Starts the panel's per-request judges on each text the moment it exists, for one chunk.

    ``generate`` and ``rewrite`` call :meth:`submit` with each text as its call returns; ``judge`` calls
    :meth:`collect` for its batch. Raters whose backend batches (the embedded model, vLLM offline, classifiers,
    word lists) are not started here: ``judge`` gives them the whole batch. The runner creates one relay per chunk
    and cancels what is left of it (:meth:`cancel`) when the chunk ends, so nothing outlives a cancelled chunk.
    """

    def __init__(self, panel: Panel) -> None:
        self.streamed = tuple(i for i, rater in enumerate(panel.raters) if answers_each_request(rater.backend))
        self._raters = panel.raters
        self._started: dict[str, list[asyncio.Future[list[Rating]]]] = {}
        self._closed = False

    def __bool__(self) -> bool:
        return bool(self.streamed)

    def submit(self, item: RatingItem) -> None:
        """Start every per-request judge on ``item`` now (once per item key; nothing once the chunk has ended)."""
        if self.streamed and not self._closed and item.key not in self._started:
            self._started[item.key] = [asyncio.ensure_future(rate_with(self._raters[i], [item])) for i in self.streamed]

    async def collect(self, items: Sequence[RatingItem]) -> dict[int, list[Rating]]:
        """Rater index → its ratings of ``items`` in their order, for every per-request judge (an item not yet
        submitted is started now)."""
        for item in items:
            self.submit(item)
        started = [self._started.pop(item.key) for item in items]
        per_item = await asyncio.gather(*(asyncio.gather(*futures) for futures in started))
        return {
            rater: [rating for item_ratings in per_item for rating in item_ratings[slot]]
            for slot, rater in enumerate(self.streamed)
        }

    def cancel(self) -> None:
        """Cancel the judges still running (a chunk that ended without collecting them: cancelled or failed); a
        call of the chunk still returning afterwards starts no judge."""
        self._closed = True
        for futures in self._started.values():
            for future in futures:
                future.cancel()
        self._started.clear()


async def generate_flowing(
    groups: Iterable[tuple[Backend, list[int]]],
    requests: Mapping[int, GenerationRequest] | Sequence[GenerationRequest],
    relay: Relay | None,
    item_of: Callable[[int, Completion], RatingItem],
) -> dict[int, GenerationOutput]:
    """Index → reply for the requests of every group (a backend and the indices it answers), the groups
    concurrently, each group's requests to its backend as one batch; with a relay, a server backend's requests
    leave one by one and each reply with text goes to the relay as it returns (``item_of``: its rating item).
    What ``generate`` and ``rewrite`` send their calls through."""
    replies: dict[int, GenerationOutput] = {}

    async def batch(backend: Backend, indices: list[int]) -> None:
        outputs = await backend.generate([requests[i] for i in indices])
        if len(outputs) != len(indices):
            raise RuntimeError(f"backend returned {len(outputs)} results for {len(indices)} requests")
        replies.update(zip(indices, outputs, strict=True))

    async def one(backend: Backend, index: int) -> None:
        await batch(backend, [index])
        reply = replies[index]
        if relay is not None and isinstance(reply, Completion) and reply.outcome == "ok":
            relay.submit(item_of(index, reply))

    calls = []
    for backend, indices in groups:
        if relay and answers_each_request(backend):
            calls.extend(one(backend, i) for i in indices)
        else:
            calls.append(batch(backend, indices))
    await asyncio.gather(*calls)
    return replies


async def judge_relayed(
    panel: Panel, relay: Relay, items: Sequence[RatingItem]
) -> tuple[list[Rating], list[Aggregate]]:
    """:func:`judge_batch` with the per-request judges' ratings taken from ``relay`` (started as the texts
    arrived) and the batch raters run on ``items`` now; the same ratings in the same order."""
    streamed = set(relay.streamed)
    batch = [i for i in range(len(panel.raters)) if i not in streamed]
    relayed, batched = await asyncio.gather(
        relay.collect(items), asyncio.gather(*(rate_with(panel.raters[i], items) for i in batch))
    )
    per_rater = {**relayed, **dict(zip(batch, batched, strict=True))}
    ratings = [rating for i in range(len(panel.raters)) for rating in per_rater[i]]
    return ratings, aggregate(ratings, panel.method, panel.threshold)


def build_judge(panel: Panel) -> Any:
    """The ``judge`` node: the panel on ``pending``, its ratings and verdicts appended to the state.

    The fan-out over raters happens inside the node (``asyncio.gather``) rather than as one graph branch per
    rater: a nested graph per chunk and round cost more in LangGraph's per-step bookkeeping than the judging
    itself, and one node serves both graphs.
    """

    async def judge(state: ExperimentState) -> ExperimentState:
        items = state.get("pending", [])
        if not items or not panel:
            return {"pending": []}
        relay = state.get("relay")
        if relay:
            ratings, aggregates = await judge_relayed(panel, relay, items)
        else:
            ratings, aggregates = await judge_batch(panel, items, state.get("skip") or frozenset())
        return {"ratings": ratings, "aggregates": aggregates, "pending": []}

    return judge


def build_judging_graph(panel: Panel) -> Any:
    """Compile the judging graph, ``START ──▶ judge ──▶ END``: what ``tribunal rate`` runs per chunk of stored
    generations (input ``pending`` and ``skip``), with the experiment graph's own ``judge`` node."""
    graph = StateGraph(ExperimentState)
    graph.add_node("judge", build_judge(panel))
    graph.add_edge(START, "judge")
    graph.add_edge("judge", END)
    return graph.compile()
