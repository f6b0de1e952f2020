"""What flows through the stage I graph: the prompts, their classifications, the expansion rounds and the result."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

from graphs.stage1.simhash import Deduplication
from raters.types import RatingOutcome


@dataclass(frozen=True)
class Stage1Prompt:
    """A prompt in the making: an original from the source or one generated for a domain."""

    id: str
    text: str
    language: str
    source: Literal["original", "generated"]
    metadata: dict[str, Any] = field(default_factory=dict)
    #: the demographic profile the sample stands for (DICES: the rater's gender, race, age group, education,
    #: locale); near-duplicates are removed within one profile only
    profile: dict[str, str] = field(default_factory=dict)
    target_domain: str | None = None
    round: int | None = None
    #: a generated prompt's example (whose profiles it is sampled under)
    expanded_from: str | None = None
    fingerprint: int = 0

    @property
    def profile_key(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.profile.items()))


@dataclass(frozen=True)
class Classification:
    """A prompt's domains (rubric ids), or the typed reason it has none."""

    prompt_id: str
    outcome: str
    domains: tuple[str, ...] = ()
    probabilities: dict[str, float] = field(default_factory=dict)
    rationale: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == RatingOutcome.SCORED.value


@dataclass(frozen=True)
class DomainCount:
    """One row of ``domain_counts.csv``: a domain (its BeaverTails key) and its prompts at each step."""

    domain: str
    low_resource: bool
    original: int
    generated: int
    dropped_duplicates: int
    final: int


@dataclass
class Stage1Result:
    """A built benchmark: its folder, the summary written to ``stage1.json`` and the per-domain counts."""

    out_dir: Path
    summary: dict[str, Any]
    counts: list[DomainCount]


def _merge(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    return {**left, **right}


class Stage1State(TypedDict, total=False):
    """What flows through the stage I graph.

    Attributes:
        prompts: the distinct original prompts (from ``load``).
        load_stats: rows read, empty prompts and exact repeats skipped.
        classifications: every classified prompt's verdict, by prompt id (originals and generated).
        low_resource: the domains (rubric ids) that ``count`` found short.
        round: expansion rounds done.
        generated: every generated prompt, over all rounds.
        pending: the prompts generated in the current round, awaiting classification.
        accepted: ids of generated prompts classified into the domain they were written for.
        expansion_calls: one record per expander request (domain, language, outcome, prompts parsed).
        dedup: the near-duplicate removal over the benchmark's candidates.
        candidates: the prompts entering ``dedupe``, in order (classified originals, then accepted generated).
        result: the stage's result (from ``write``).
    """

    prompts: list[Stage1Prompt]
    load_stats: dict[str, int]
    classifications: Annotated[dict[str, Classification], _merge]
    low_resource: list[str]
    round: int
    generated: Annotated[list[Stage1Prompt], operator.add]
    pending: list[Stage1Prompt]
    accepted: Annotated[list[str], operator.add]
    expansion_calls: Annotated[list[dict[str, Any]], operator.add]
    dedup: Deduplication
    candidates: list[Stage1Prompt]
    result: Stage1Result


__all__ = ["Classification", "DomainCount", "Stage1Prompt", "Stage1Result", "Stage1State"]
