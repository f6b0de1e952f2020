"""The records a run writes and their keys.

One light module (pydantic and the standard library, no langgraph, no model runtime, nothing else of
:mod:`graphs`): the experiment graphs produce these records, the transcript store writes them, and the table
each one lands in is in :mod:`graphs.tables` beside it.

Records: :class:`Cell` (one design cell and its chat), :class:`Rewrite` (one version of a cell's reply: round 0
is the original generation), :class:`Critique`, :class:`Stop`, and the judges' :class:`~raters.types.Rating` and
the panel's :class:`~raters.aggregate.Aggregate` (re-exported here; they are defined where raters make them).

Keys: every table is keyed by content, a hash of what determines the row (:func:`cell_key`,
:func:`generation_key`, :attr:`Critique.key`, :func:`~raters.types.rating_key`), so running the same work again
finds the row instead of adding a second one.

The tables these records land in, and the file names of a run directory, are in :mod:`graphs.tables` (standard
library only, so that ``analysis`` reads runs without importing this module); they are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict

from agents.types import CallFailure, Completion, GenerationRequest, Message, Sampling, content_key
from graphs.tables import (
    CONFIG_FILENAME,
    DDL,
    GENERATION_OUTCOMES,
    RATING_OUTCOMES,
    SCHEMA_VERSION,
    STOP_REASONS,
    STORE_FILENAME,
    TABLES,
)
from raters.aggregate import Aggregate
from raters.types import Rating, rating_key

# ---------------------------------------------------------------------------------------------------- records
BASELINE_ID = "none"


class Cell(BaseModel):
    """One design cell and the chat it sends (a row of ``cells``)."""

    model_config = ConfigDict(frozen=True)

    key: str
    model: str
    persona_id: str
    persona_kind: str
    persona_category: str
    persona_gender: str
    target_id: str
    target_category: str
    template_id: str
    template_style: str
    language: str
    repeat: int
    is_baseline: bool
    seed: int
    messages: tuple[Message, ...]

    def request(self, sampling: Sampling) -> GenerationRequest:
        return GenerationRequest(messages=self.messages, sampling=sampling.model_copy(update={"seed": self.seed}))


@dataclass(frozen=True)
class Rewrite:
    """One version of a cell's reply (a row of ``generations``): round 0 is the original; rounds ≥ 1 are the
    mitigation loop's rewrites."""

    cell: Cell
    round: int
    parent_key: str | None
    model: str
    request: GenerationRequest
    result: Completion | CallFailure


@dataclass(frozen=True)
class Critique:
    """The critic's feedback on one generation (a row of ``critiques``)."""

    generation_key: str
    round: int
    critic: str
    text: str | None
    outcome: str

    @property
    def key(self) -> str:
        return content_key({"generation": self.generation_key, "critic": self.critic})


@dataclass(frozen=True)
class Stop:
    """Why a cell left the mitigation loop, after how many rewrite rounds (a row of ``mitigation``)."""

    cell_key: str
    rounds: int
    reason: str  # one of STOP_REASONS


# ------------------------------------------------------------------------------------------------------- keys
def cell_key(identity: dict[str, Any]) -> str:
    """The key of a design cell: a hash of what determines its output (model identity, messages, sampling,
    language, repeat and the experiment seed)."""
    return content_key(identity)


@lru_cache(maxsize=1 << 14)
def generation_key(cell_key: str, round_: int) -> str:
    """The key of one version of a cell's reply (memoised: a run asks for each key three times)."""
    return content_key({"cell": cell_key, "round": round_})


__all__ = [
    "BASELINE_ID",
    "CONFIG_FILENAME",
    "DDL",
    "GENERATION_OUTCOMES",
    "RATING_OUTCOMES",
    "SCHEMA_VERSION",
    "STOP_REASONS",
    "STORE_FILENAME",
    "TABLES",
    "Aggregate",
    "Cell",
    "Critique",
    "Rating",
    "Rewrite",
    "Stop",
    "cell_key",
    "generation_key",
    "rating_key",
]
