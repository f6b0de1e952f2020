"""What flows through the experiment graph: a chunk of cells and everything produced for them so far."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from agents.types import CallFailure, Completion, GenerationRequest
from graphs.records import Aggregate, Cell, Critique, Rating, Rewrite, Stop
from raters.types import RatingItem


class ExperimentState(TypedDict, total=False):
    """State of the experiment graph (and of the judging graph, which uses ``pending``, ``skip`` and what ``judge``
    appends) for one chunk.

    Attributes:
        cells: the chunk's design cells (input).
        requests: one chat request per cell, rendered by ``render``.
        results: one reply or typed failure per cell, from ``generate``, in the same order.
        pending: the texts ``judge`` rates next (round 0: the replies; later: the rewrites; in ``tribunal rate``:
            stored generations).
        skip: rating keys already stored, which ``judge`` does not ask again (``tribunal rate`` only).
        relay: starts the per-request judges on each text as ``generate`` and ``rewrite`` receive it
            (input; :class:`graphs.judging.Relay`). Without one the nodes work stage by stage.
        ratings: every rating of every round, appended by ``judge``.
        aggregates: the panel's verdicts, appended by ``judge``.
        round: the mitigation round being judged (0 = the original replies).
        current: cell index → (generation key, text) of the latest version of each reply in the loop.
        active: the cell indices still above threshold with rounds left.
        critiques, rewrites, stops: the mitigation loop's records, appended round by round.
    """

    cells: list[Cell]
    requests: list[GenerationRequest]
    results: list[Completion | CallFailure]
    pending: list[RatingItem]
    skip: frozenset[str]
    relay: Any  # graphs.judging.Relay (which imports this module; LangGraph resolves these annotations at runtime)
    ratings: Annotated[list[Rating], operator.add]
    aggregates: Annotated[list[Aggregate], operator.add]
    round: int
    current: dict[int, tuple[str, str]]
    active: list[int]
    critiques: Annotated[list[Critique], operator.add]
    rewrites: Annotated[list[Rewrite], operator.add]
    stops: Annotated[list[Stop], operator.add]
