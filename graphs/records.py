"""The records a run writes and their keys.

One light module (pydantic and the standard library, no langgraph, no model runtime, nothing else of
:mod:`graphs`): the experiment graphs produce these records, the transcript store writes them, and the table
each one lands in is in :mod:`graphs.tables` beside it.

Records: :class:`Cell` (one design cell and its chat), :class:`Rewrite` (one version of a cell's reply: round 0
is the original generation), :class:`Critique`, :class:`Stop`, and the judges' :class:`~raters.types.Rating` and
the panel's :class:`~raters.aggregate.Aggregate` (re-exported here; they are defined where raters make them);
:class:`RunSummary` and :class:`RateSummary`, what a ``tribunal run`` or ``rate`` did (the ``runs`` table).

Keys: every table is keyed by content, a hash of what determines the row (:func:`cell_key`,
:func:`generation_key`, :attr:`Critique.key`, :func:`~raters.types.rating_key`), so running the same work again
finds the row instead of adding a second one. A model enters keys by its identity (backend, model id and
``base_url``, see :meth:`configs.base.ModelSpec.identity`), never by its config-local name alone.

The config fingerprint (:func:`config_fingerprint`) is the key of the experiment a run directory holds: one
digest per result-determining field of the resolved config, so that a resume under another config is refused
with the fields that changed (:func:`changed_fields`).

The tables these records land in, and the file names of a run directory, are in :mod:`graphs.tables` (standard
library only, so that ``analysis`` reads runs without importing this module); they are re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict

from agents.types import CallFailure, Completion, GenerationRequest, Message, Sampling, content_key, text_key
from configs.base import BASELINE_LABEL
from graphs.tables import (
    CONFIG_FILENAME,
    DDL,
    GENERATION_OUTCOMES,
    LOCK_FILENAME,
    RATING_OUTCOMES,
    SCHEMA_VERSION,
    STOP_REASONS,
    STORE_FILENAME,
    TABLES,
    connect_readonly,
)
from raters.aggregate import Aggregate
from raters.types import Rating, rating_key

_quote = json.encoder.encode_basestring  # the key encoder's own string encoder (ensure_ascii=False)

# ---------------------------------------------------------------------------------------------------- records
#: A baseline cell's persona id, kind and category: the label configs reserve, so no persona can be pooled with it.
BASELINE_ID = BASELINE_LABEL


#: The ``model`` of a cell whose text is given, not generated (``grid.prompts`` with ``rate: prompt``): its
#: generation row says ``backend = 'given'``, ``finish_reason = 'given'``, 0 attempts and no tokens.
GIVEN_MODEL = "given"


class Cell(BaseModel):
    """One design cell and the chat it sends (a row of ``cells``).

    A cell with ``given`` text sends nothing: the text is what the panel rates (Demo-SafetyBench rates prompts,
    not replies), stored as a round-0 generation of model :data:`GIVEN_MODEL`. ``profile`` is the demographic
    profile the cell was sampled under (a ``framing: profile`` judge rates as it); it is not a column of
    ``cells``: the stage I benchmark row named by ``target_id`` holds it, with the human ratings.
    """

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
    given: str | None = None
    profile: dict[str, str] | None = None

    def request(self, sampling: Sampling) -> GenerationRequest:
        return GenerationRequest(messages=self.messages, sampling=sampling.model_copy(update={"seed": self.seed}))


#: Outcomes of a critique or rewrite that the next ``tribunal run`` tries again (the call failed); a reply, a
#: content-filter verdict and an empty critique are the model's answer and final.
RETRIED_CALL_OUTCOMES = tuple(o for o in GENERATION_OUTCOMES if o not in ("ok", "content_filter"))


@dataclass(frozen=True)
class Rewrite:
    """One version of a cell's reply (a row of ``generations``): round 0 is the original; rounds ≥ 1 are the
    mitigation loop's rewrites. ``rewriter`` is the model label of a rewriter other than the cell's own generator
    (its identity then enters the key)."""

    cell: Cell
    round: int
    parent_key: str | None
    model: str
    request: GenerationRequest
    result: Completion | CallFailure
    rewriter: str | None = None

    @property
    def key(self) -> str:
        return generation_key(self.cell.key, self.round, self.rewriter)


@dataclass(frozen=True)
class Critique:
    """The critic's feedback on one generation (a row of ``critiques``); ``critic_identity`` is its model's
    identity, ``attempts`` the HTTP attempts spent (0: served from the cache)."""

    generation_key: str
    round: int
    critic: str
    text: str | None
    outcome: str
    critic_identity: Mapping[str, Any] = field(default_factory=dict)
    attempts: int = 1

    @property
    def critic_model(self) -> str | None:
        return model_label(self.critic_identity) if self.critic_identity else None

    @property
    def key(self) -> str:
        return content_key(
            {"generation": self.generation_key, "critic": self.critic, "model": dict(self.critic_identity)}
        )


@dataclass(frozen=True)
class Stop:
    """Why a cell left the mitigation loop, after how many rewrite rounds (a row of ``mitigation``)."""

    cell_key: str
    rounds: int
    reason: str  # one of STOP_REASONS


@dataclass
class RunSummary:
    """What one ``tribunal run`` did (also stored in the ``runs`` table).

    ``prompt_tokens``/``completion_tokens`` (and ``cost_usd``) count every model call this run made: generations,
    rewrites, judges and the critic; calls served from the cache are free and not counted. ``status`` is
    ``completed``, ``interrupted`` or ``failed`` (more than ``run.max_failed_share`` of the cells tried now
    failed, or all of them). ``config_changes`` are the fingerprint fields the caller allowed to change;
    ``moved_from`` the directory asked for, when another config had made it and the run went to a sibling.
    """

    run_dir: str
    cells_total: int
    cells_already_done: int
    cells_generated: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_s: float = 0.0
    status: str = "completed"
    ratings: dict[str, int] = field(default_factory=dict)
    stop_reasons: dict[str, int] = field(default_factory=dict)
    rewrites: int = 0
    critiques: int = 0
    cache_hits: int = 0
    rating_count: int = 0
    cost_usd: float | None = None
    mitigation_retried: int = 0
    config_changes: list[str] = field(default_factory=list)
    moved_from: str | None = None

    @property
    def cells_per_s(self) -> float:
        return self.cells_generated / self.wall_s if self.wall_s else 0.0

    @property
    def cells_failed(self) -> int:
        """Cells tried now whose generation failed (stored typed; the next run tries them again)."""
        return sum(v for k, v in self.outcomes.items() if k not in ("ok", "content_filter"))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cells_per_s": round(self.cells_per_s, 3)}


@dataclass
class RateSummary:
    run_dir: str
    raters: list[str]
    generations: int
    ratings_written: int = 0
    ratings_skipped: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    status: str = "completed"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------------------- keys
def cell_key(identity: dict[str, Any]) -> str:
    """The key of a design cell: a hash of what determines its output (model identity, messages, sampling,
    language, repeat and the experiment seed)."""
    return content_key(identity)


def generation_key(cell_key: str, round_: int, rewriter: str | None = None) -> str:
    """The key of one version of a cell's reply (memoised: a run asks for each key three times).

    The cell key holds the generator's identity; ``rewriter`` is the identity label of a rewriter that is not the
    cell's generator (see :func:`model_key_label`)."""
    return _generation_key(cell_key, round_, rewriter)  # one memo entry whether `rewriter` was passed or not


@lru_cache(maxsize=1 << 14)
def _generation_key(cell_key: str, round_: int, rewriter: str | None) -> str:
    if type(cell_key) is str and type(round_) is int and (rewriter is None or type(rewriter) is str):
        # content_key's text, written directly: {"cell":…[,"rewriter":…],"round":…} (keys sorted)
        middle = "" if rewriter is None else f',"rewriter":{_quote(rewriter)}'
        text = f'{{"cell":{_quote(cell_key)}{middle},"round":{round_}}}'
        return text_key(text)
    if rewriter is None:
        return content_key({"cell": cell_key, "round": round_})
    return content_key({"cell": cell_key, "round": round_, "rewriter": rewriter})


def model_label(identity: Mapping[str, Any]) -> str:
    """How a model is shown in the store (``ratings.rater_model``, ``critiques.critic_model``): backend:model."""
    return f"{identity.get('backend')}:{identity.get('model') or identity.get('name')}"


def model_key_label(identity: Mapping[str, Any]) -> str:
    """A model's full identity as one string, for keys (every field, ``base_url`` included)."""
    return content_key(dict(identity))


# ------------------------------------------------------------------------------------------ the fingerprint
#: Config fields that do not change what a run produces: where it writes and how fast (``run``; stage I's
#: ``chunk_size`` and ``concurrency``), the experiment's own name and description, and when judges are trusted
#: (``panel.trust``: it changes what the headlines use, not what is stored).
_NOT_RESULTS = frozenset({"run", "chunk_size", "concurrency", "description", "trust"})
#: Model fields that change how a model is reached, not what it answers.
_MODEL_TRANSPORT = frozenset({"api_key", "max_concurrency", "timeout_s", "max_retries", "price", "params_b"})
_OPTION_TRANSPORT = frozenset(
    {"retry_base_wait_s", "retry_max_wait_s", "call_log", "delay_s", "threads", "gpu_memory_gb"}
)
#: Lists whose entries have names: they are fingerprinted entry by entry (``models.gen.model``).
_NAMED_LISTS = frozenset({"models", "raters"})


def config_fingerprint(snapshot: Mapping[str, Any]) -> dict[str, str]:
    """The parts of a resolved experiment that determine its results, one short digest per field.

    Fields are dotted paths with named entries by name (``seed``, ``sampling.temperature``, ``models.gen.model``,
    ``models.gen.base_url``, ``panel.raters.judge.model``, ``mitigation.threshold``, ``grid.personas``: the
    selected personas' content, not the catalog's path). Left out: the run section (output directory, chunk size,
    concurrency, failure share), the experiment's name and description, and how models are reached (API key
    reference, concurrency, timeout, retries, price, retry waits).

    Args:
        snapshot: :meth:`configs.loader.Experiment.snapshot` (``config`` plus the loaded catalog entries).
    """
    config = {k: v for k, v in snapshot["config"].items() if k != "name"}
    grid = dict(config.get("grid") or {})
    for catalog in ("personas", "targets", "templates"):
        grid.pop(f"{catalog[:-1]}_ids", None)
        grid[catalog] = snapshot.get(catalog) or []
    if snapshot.get("probes") is not None:
        grid["probes"] = snapshot["probes"]
    config["grid"] = grid
    leaves: dict[str, str] = {}
    _flatten("", config, leaves)
    for catalog in ("grid.personas", "grid.targets", "grid.templates", "grid.probes"):
        parts = [f for f in leaves if f.startswith(f"{catalog}.")]
        if parts:  # a catalog is one field: its entries' content
            leaves[catalog] = content_key({f: leaves.pop(f) for f in sorted(parts)})[:16]
    return leaves


def _flatten(prefix: str, value: Any, out: dict[str, str], *, named: bool = False) -> None:
    if not isinstance(value, Mapping):
        out[prefix] = content_key(value)[:16]
        return
    model_like = "backend" in value
    for key, item in value.items():
        if key in _NOT_RESULTS or (model_like and key in _MODEL_TRANSPORT) or (named and key == "name"):
            continue
        if model_like and key == "options" and isinstance(item, Mapping):
            item = {k: v for k, v in item.items() if k not in _OPTION_TRANSPORT}
        path = f"{prefix}.{key}" if prefix else str(key)
        if key in _NAMED_LISTS and isinstance(item, list) and all(isinstance(e, Mapping) for e in item):
            for entry in item:
                _flatten(f"{path}.{entry.get('name')}", entry, out, named=True)
        else:
            _flatten(path, item, out)


def changed_fields(stored: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """The fields whose digests differ (added, removed or changed), sorted; a field missing on one side counts
    as ``null`` there (a section added later with nothing set does not count as a change)."""
    unset = content_key(None)[:16]
    return sorted(f for f in set(stored) | set(current) if stored.get(f, unset) != current.get(f, unset))


def allowed(fields: Sequence[str], allow: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split changed ``fields`` into those ``allow`` covers (the field itself or a parent, such as
    ``panel.raters`` for ``panel.raters.judge.model``) and the rest."""
    covered = [f for f in fields if any(f == a or f.startswith(f"{a}.") for a in allow)]
    return covered, [f for f in fields if f not in covered]


__all__ = [
    "BASELINE_ID",
    "CONFIG_FILENAME",
    "GIVEN_MODEL",
    "DDL",
    "GENERATION_OUTCOMES",
    "LOCK_FILENAME",
    "RATING_OUTCOMES",
    "RETRIED_CALL_OUTCOMES",
    "RateSummary",
    "RunSummary",
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
    "allowed",
    "cell_key",
    "changed_fields",
    "config_fingerprint",
    "connect_readonly",
    "generation_key",
    "model_key_label",
    "model_label",
    "rating_key",
]
