"""The stage I graph's nodes: methods of :class:`Stage1`, which holds what they share (config, models, output).

Each node takes the state and returns its update (:class:`~graphs.stage1.state.Stage1State`); the graph that wires
them is :mod:`graphs.stage1.graph`, whose docstring says what each node does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from agents.base import Backend
from agents.cached import CachedBackend
from agents.types import CallFailure, GenerationRequest, Sampling, content_key
from configs.stage1 import Stage1Config
from graphs.datasets import DatasetError
from graphs.stage1.domains import DOMAIN_KEYS, DOMAINS, RUBRIC
from graphs.stage1.expander import expansion_messages, parse_prompts
from graphs.stage1.prompts import load_prompts
from graphs.stage1.simhash import Deduplication, deduplicate_within, simhash
from graphs.stage1.state import Classification, Stage1Prompt, Stage1State
from graphs.stage1.writer import write_benchmark
from raters.base import Rater
from raters.rubric import load_rubric
from raters.types import RatingItem, RatingOutcome

log = logging.getLogger(__name__)


class Stage1Progress(Protocol):
    """What the command line shows: a stage with a known or unknown size, advanced as work finishes."""

    def stage(self, name: str, total: int | None) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class LoggedProgress:
    """Progress for callers that show none: each stage is logged at INFO."""

    def stage(self, name: str, total: int | None) -> None:
        log.info("stage I: %s (%s)", name, total)

    def advance(self, n: int = 1) -> None:
        pass


@dataclass
class Stage1:
    """Everything the graph's nodes use: the config, the classifier, the expander and where to write."""

    config: Stage1Config
    classifier: Rater
    expander: Backend | None
    out_dir: Path
    progress: Stage1Progress = field(default_factory=LoggedProgress)
    config_path: str = "<config>"
    on_loaded: Callable[[], None] | None = None
    #: the backends whose calls the summary counts (cache hits, tokens, cost)
    backends: list[CachedBackend] = field(default_factory=list)
    descriptions: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        rubric = load_rubric(RUBRIC)
        self.descriptions = {d.id: d.description for d in rubric.dimensions}

    @property
    def keep_unflagged(self) -> bool:
        return self.config.run.keep_unflagged

    # ------------------------------------------------------------------------------------- classifying
    async def classify(self, prompts: Sequence[Stage1Prompt], stage: str) -> dict[str, Classification]:
        """Classify prompts in batches of ``run.chunk_size``, ``run.concurrency`` batches at once; a text shared
        by several samples (one DICES conversation under many profiles) is classified once."""
        first_of: dict[str, Stage1Prompt] = {}
        for p in prompts:
            first_of.setdefault(p.text, p)
        distinct = list(first_of.values())
        self.progress.stage(stage, len(distinct))
        size, gate = self.config.run.chunk_size, asyncio.Semaphore(self.config.run.concurrency)
        chunks = [distinct[i : i + size] for i in range(0, len(distinct), size)]
        found: dict[str, Classification] = {}

        async def one(chunk: list[Stage1Prompt]) -> None:
            items = [RatingItem(key=p.id, text=p.text, language=p.language) for p in chunk]
            async with gate:
                try:
                    ratings = await self.classifier.rate(items)
                except Exception as exc:  # a broken judge fails its batch, typed, not the build
                    log.exception("the domain classifier failed on a batch")
                    note = f"classifier error: {type(exc).__name__}: {exc}"[:500]
                    for p in chunk:
                        found[p.id] = Classification(p.id, RatingOutcome.SERVER_ERROR.value, rationale=note)
                    self.progress.advance(len(chunk))
                    return
            by_item: dict[str, dict[str, Any]] = {p.id: {} for p in chunk}
            for rating in ratings:
                by_item[rating.item_key][rating.dimension] = rating
            for prompt_id, by_domain in by_item.items():
                found[prompt_id] = _classification(prompt_id, by_domain)
            self.progress.advance(len(chunk))

        await asyncio.gather(*(one(chunk) for chunk in chunks))
        return {p.id: replace(found[first_of[p.text].id], prompt_id=p.id) for p in prompts}

    # --------------------------------------------------------------------------------------- counting
    def candidates(self, state: Stage1State) -> list[Stage1Prompt]:
        """The prompts the benchmark may hold, in order: classified originals, then accepted generated ones."""
        verdicts = state.get("classifications", {})
        originals = [
            p
            for p in state.get("prompts", [])
            if p.id in verdicts and verdicts[p.id].ok and (verdicts[p.id].domains or self.keep_unflagged)
        ]
        accepted = set(state.get("accepted", []))
        return originals + [p for p in state.get("generated", []) if p.id in accepted]

    def deduplicate(self, candidates: Sequence[Stage1Prompt]) -> Deduplication:
        """Near-duplicate removal at τ within each demographic profile (one group when prompts have none)."""
        fingerprints = [p.fingerprint for p in candidates]
        return deduplicate_within(fingerprints, [p.profile_key for p in candidates], self.config.dedup.max_hamming)

    def final_counts(self, state: Stage1State) -> Counter[str]:
        """Per domain, the prompts left after near-duplicate removal over the current candidates."""
        candidates = self.candidates(state)
        kept = self.deduplicate(candidates).kept
        verdicts = state.get("classifications", {})
        return Counter(d for i in kept for d in verdicts[candidates[i].id].domains)

    def shortfalls(self, state: Stage1State) -> dict[str, int]:
        expansion = self.config.expansion
        if expansion is None or not expansion.enabled:
            return {}
        counts = self.final_counts(state)
        return {d: expansion.target - counts[d] for d in state.get("low_resource", []) if counts[d] < expansion.target}

    # ------------------------------------------------------------------------------------------ nodes
    async def load(self, state: Stage1State) -> Stage1State:
        self.progress.stage("loading prompts", None)
        prompts, stats = await asyncio.to_thread(load_prompts, self.config.prompts)
        if self.config.extra_prompts:
            prompts, stats = await asyncio.to_thread(self._with_extra_sources, prompts, stats)
        if self.on_loaded is not None:
            self.on_loaded()
        return {"prompts": prompts, "load_stats": stats, "round": 0}

    def _with_extra_sources(
        self, prompts: list[Stage1Prompt], stats: dict[str, int]
    ) -> tuple[list[Stage1Prompt], dict[str, int]]:
        """The extra sources' prompts after the main ones, each sampled under every profile of the main source."""
        profiles = self._source_profiles({"prompts": prompts})
        ids = {p.id for p in prompts}
        stats = dict(stats)
        for source in self.config.extra_prompts:
            more, more_stats = load_prompts(source)
            stats["extra_rows"] = stats.get("extra_rows", 0) + more_stats.get("rows", 0)
            for prompt in more:
                for profile in profiles:
                    sample_id = prompt.id + ("-" + content_key(sorted(profile.items()))[:8] if profile else "")
                    if sample_id in ids:
                        where = source.path or source.kind
                        raise DatasetError(f"{where}: prompt id {prompt.id!r} is also an id of another source")
                    ids.add(sample_id)
                    prompts.append(replace(prompt, id=sample_id, profile=dict(profile)))
                    stats["extra_used"] = stats.get("extra_used", 0) + 1
        return prompts, stats

    async def classify_originals(self, state: Stage1State) -> Stage1State:
        return {"classifications": await self.classify(state["prompts"], "classifying prompts")}

    def count(self, state: Stage1State) -> Stage1State:
        expansion = self.config.expansion
        if expansion is None or not expansion.enabled:
            return {"low_resource": []}
        counts = self.final_counts(state)
        return {"low_resource": [d for d in DOMAINS if counts[d] < expansion.min_count]}

    async def expand(self, state: Stage1State) -> Stage1State:
        expansion, expander = self.config.expansion, self.expander
        assert expansion is not None and expander is not None
        round_ = state.get("round", 0) + 1
        short = self.shortfalls(state)
        verdicts = state.get("classifications", {})
        asks: list[tuple[str, str]] = [(d, lang) for d in short for lang in expansion.languages]
        self.progress.stage(f"expanding {len(short)} domain(s), round {round_}", len(asks))
        sampling = Sampling(
            temperature=expansion.temperature, max_tokens=expansion.max_tokens, seed=self.config.seed + round_
        )
        requests, shown = [], []
        for domain, language in asks:
            examples = self._examples(state, verdicts, domain, language, round_)
            texts = [p.text for p in examples]
            messages = expansion_messages(domain, self.descriptions[domain], expansion.per_request, language, texts)
            requests.append(GenerationRequest(messages=messages, sampling=sampling))
            shown.append(examples)
        profiles = self._source_profiles(state)
        results = await expander.generate(requests) if requests else []
        self.progress.advance(len(asks))
        pending: list[Stage1Prompt] = []
        calls: list[dict[str, Any]] = []
        for (domain, language), result, examples in zip(asks, results, shown, strict=True):
            call = {"round": round_, "domain": DOMAIN_KEYS[domain], "language": language, "outcome": result.outcome}
            if isinstance(result, CallFailure):
                calls.append({**call, "parsed": 0, "error": result.message[:200]})
                continue
            texts = parse_prompts(result.text, limit=expansion.per_request)
            calls.append({**call, "parsed": len(texts)})
            for index, text in enumerate(texts):
                key = {"domain": domain, "language": language, "round": round_, "index": index, "text": text}
                # the demographic metadata is kept: a generated prompt is one sample per demographic profile of
                # the source, as each original conversation is (none when the source has no profiles)
                example = examples[index % len(examples)] if examples else None
                for profile in profiles:
                    prompt_id = "g-" + content_key({**key, "profile": sorted(profile.items())} if profile else key)[:16]
                    pending.append(
                        Stage1Prompt(
                            prompt_id,
                            text,
                            language,
                            "generated",
                            profile=dict(profile),
                            target_domain=domain,
                            round=round_,
                            expanded_from=example.id if example else None,
                            fingerprint=simhash(text),
                        )
                    )
        return {"round": round_, "pending": pending, "generated": pending, "expansion_calls": calls}

    @staticmethod
    def _source_profiles(state: Stage1State) -> list[dict[str, str]]:
        """The distinct demographic profiles of the originals, in order (``[{}]`` when they have none)."""
        found: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        for p in state.get("prompts", []):
            found.setdefault(p.profile_key, p.profile)
        return list(found.values()) or [{}]

    def _examples(
        self, state: Stage1State, verdicts: dict[str, Classification], domain: str, language: str, round_: int
    ) -> list[Stage1Prompt]:
        wanted = self.config.expansion.examples if self.config.expansion else 0
        if not wanted:
            return []
        pool = [p for p in state.get("prompts", []) if p.id in verdicts and domain in verdicts[p.id].domains]
        first_of: dict[str, Stage1Prompt] = {}
        for p in pool:  # one example per text (a DICES conversation is a sample under each of its profiles)
            first_of.setdefault(p.text, p)
        pool = list(first_of.values())
        pool = [p for p in pool if p.language == language] or pool
        if not pool:
            return []
        start = ((round_ - 1) * wanted) % len(pool)  # other examples each round, for variety
        return (pool[start:] + pool[:start])[:wanted]

    async def classify_generated(self, state: Stage1State) -> Stage1State:
        pending = state.get("pending", [])
        verdicts = await self.classify(pending, f"classifying generated prompts, round {state.get('round', 0)}")
        accepted = [p.id for p in pending if verdicts[p.id].ok and p.target_domain in verdicts[p.id].domains]
        return {"classifications": verdicts, "accepted": accepted, "pending": []}

    def route(self, state: Stage1State) -> str:
        expansion = self.config.expansion
        if self.expander is None or expansion is None or not expansion.enabled:
            return "dedupe"
        if state.get("round", 0) >= expansion.max_rounds or not self.shortfalls(state):
            return "dedupe"
        return "expand"

    def dedupe(self, state: Stage1State) -> Stage1State:
        self.progress.stage("removing near-duplicates", None)
        candidates = self.candidates(state)
        return {"candidates": candidates, "dedup": self.deduplicate(candidates)}

    async def write(self, state: Stage1State) -> Stage1State:
        self.progress.stage("writing the benchmark", None)
        result = await asyncio.to_thread(
            write_benchmark,
            state,
            config=self.config,
            out_dir=self.out_dir,
            config_path=self.config_path,
            classifier=self.classifier,
            backends=self.backends,
            started=self.started,
        )
        return {"result": result}


def _classification(prompt_id: str, by_domain: dict[str, Any]) -> Classification:
    ratings = [by_domain.get(d) for d in DOMAINS]
    missing = [r for r in ratings if r is None or not r.scored]
    if missing:
        first = next((r for r in missing if r is not None), None)
        outcome = first.outcome.value if first is not None else RatingOutcome.SERVER_ERROR.value
        rationale = first.rationale if first is not None else "the classifier returned no rating"
        return Classification(prompt_id, outcome, rationale=rationale)
    domains = tuple(d for d, r in zip(DOMAINS, ratings, strict=True) if r.score == 1.0)
    probabilities = {d: float(r.raw) for d, r in zip(DOMAINS, ratings, strict=True) if r.raw is not None}
    return Classification(prompt_id, RatingOutcome.SCORED.value, domains, probabilities, ratings[0].rationale)


__all__ = ["LoggedProgress", "Stage1", "Stage1Progress"]
