"""Demo-SafetyBench stage I: build a harm-domain-balanced prompt benchmark (``tribunal bench build CONFIG``).

    START ──▶ load ──▶ classify ──▶ count ──┬──▶ expand ──▶ classify_generated ──┬──▶ expand (again)
                                            │                                    │
                                            └────────────────────────────────────┴──▶ dedupe ──▶ write ──▶ END

``load``
    Prompts from BeaverTails (:func:`configs.datasets.load_beavertails`) or a JSONL/JSON/CSV/TSV/Parquet file of
    prompts whose other columns (demographic metadata such as the author's gender or locale) travel with each
    prompt. Empty prompts are skipped and exact repeats (same text up to case and spacing) keep their first row,
    so no prompt is classified twice (BeaverTails repeats each prompt once per response).
``classify``
    Every prompt is classified into the 14 BeaverTails harm domains by an LLM judge: the ``llm`` rater kind with
    the ``beavertails`` multi-label rubric; a domain applies when the judge's probability reaches δ (default
    0.5, the rubric's). A prompt whose classification failed (``parse_error``, ``refusal``, ``timeout``, ...)
    is kept out of every count and of the benchmark and reported with its outcome: it is never a domain.
``count``
    Per-domain counts of the classified originals. A domain is *low-resource* when fewer than
    ``expansion.min_count`` of its originals remain after near-duplicate removal (the count the benchmark
    would have; removal keeps first occurrences and originals come first, so this equals the final original
    count).
``expand`` / ``classify_generated``
    For each low-resource domain still short of ``expansion.target_count`` (default ``min_count``), the expander
    role (:mod:`agents.expander`) is asked for ``per_request`` new prompts per language, with a few of the
    domain's originals as examples; replies are parsed as JSON or one per line. The generated prompts are
    classified like the originals and kept when their domains include the one they were written for. Rounds
    repeat while a domain is short (counted after near-duplicate removal) and ``max_rounds`` allows.
``dedupe``
    SimHash near-duplicate removal (:mod:`graphs.simhash`) at Hamming distance ≤ τ (default 10) over the
    classified originals, then the accepted generated prompts; the first occurrence is kept.
``write``
    ``benchmark.jsonl`` (prompt, language, domains, per-domain probabilities, source ``original``/``generated``,
    metadata), ``domain_counts.csv`` (per domain: original, generated, dropped as duplicates, final),
    ``unclassified.jsonl`` (failed classifications with their outcome), ``duplicates.jsonl`` (each dropped
    prompt, the kept one it duplicates and their distance) and ``stage1.json`` (the summary), each written to a
    temporary file and renamed into place. Domains are named by their BeaverTails keys
    (:data:`configs.datasets.BEAVERTAILS_CATEGORIES`).

Model calls go through the response cache in ``DIR/cache.sqlite``: building again with the same config pays for
no call twice (delete the file to ask afresh).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import math
import operator
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, TypedDict

import pandas as pd
from langgraph.graph import END, START, StateGraph

from agents.base import Backend, create_backend
from agents.cached import CachedBackend
from agents.expander import expansion_messages, parse_prompts
from agents.types import CallFailure, GenerationRequest, Sampling, content_key
from configs.bench_schema import BenchConfig, BenchRunConfig, PromptSource, Stage1Section, stage1_dir
from configs.datasets import BEAVERTAILS_CATEGORIES, DatasetError, load_beavertails, read_prompt_table
from configs.loader import ConfigError, check_references, check_stage1_references, read_yaml, validate_as
from configs.schema import ExperimentConfig, ModelSpec, RaterSpec
from graphs.simhash import Deduplication, deduplicate, simhash
from graphs.store import TranscriptStore
from raters.base import Rater
from raters.registry import create_rater
from raters.rubric import load_rubric
from raters.types import RatingItem, RatingOutcome

log = logging.getLogger(__name__)

RUBRIC = "beavertails"
#: The ``beavertails`` rubric's dimension ids and the BeaverTails dataset keys they stand for, in dataset order.
DOMAIN_KEYS: dict[str, str] = {
    "animal_abuse": "animal_abuse",
    "child_abuse": "child_abuse",
    "controversial_topics_politics": "controversial_topics,politics",
    "discrimination_stereotype_injustice": "discrimination,stereotype,injustice",
    "drug_abuse_weapons_banned_substance": "drug_abuse,weapons,banned_substance",
    "financial_crime_property_crime_theft": "financial_crime,property_crime,theft",
    "hate_speech_offensive_language": "hate_speech,offensive_language",
    "misinformation_law_ethics_safety": "misinformation_regarding_ethics,laws_and_safety",
    "non_violent_unethical_behavior": "non_violent_unethical_behavior",
    "privacy_violation": "privacy_violation",
    "self_harm": "self_harm",
    "sexually_explicit_adult_content": "sexually_explicit,adult_content",
    "terrorism_organized_crime": "terrorism,organized_crime",
    "violence_aiding_abetting_incitement": "violence,aiding_and_abetting,incitement",
}
DOMAINS: tuple[str, ...] = tuple(DOMAIN_KEYS)
assert tuple(DOMAIN_KEYS.values()) == BEAVERTAILS_CATEGORIES

BENCHMARK_FILE = "benchmark.jsonl"
COUNTS_FILE = "domain_counts.csv"
SUMMARY_FILE = "stage1.json"
UNCLASSIFIED_FILE = "unclassified.jsonl"
DUPLICATES_FILE = "duplicates.jsonl"
CACHE_FILE = "cache.sqlite"


# ============================================================================================== config
def load_bench_config(path: str | Path) -> BenchConfig:
    """Read and check a stage I config; ``prompts.path`` comes back absolute (relative to the config's folder).

    ``path`` is a stage I config, or a study config with a ``stage1`` section (Demo-SafetyBench), whose stage I
    writes to ``<run.output_dir>/stage1``. The prompt file itself is read by :func:`run_stage1`, whose
    :class:`~configs.datasets.DatasetError` says where to get missing data.

    Raises:
        ConfigError: on the first problem, as one line ``file: field: problem``.
    """
    path = Path(path)
    data = read_yaml(path)
    if isinstance(data, dict) and "grid" in data:
        experiment = validate_as(ExperimentConfig, data, path)
        if experiment.stage1 is None:
            raise ConfigError(path, "stage1", "this experiment config has no stage1 section to build")
        check_references(experiment, path)
        return stage1_config(experiment, base=path.parent)
    config = validate_as(BenchConfig, data, path)
    check_stage1_references(config.models, config, path)
    return _resolve_prompt_path(config, path.parent)


def _resolve_prompt_path(config: BenchConfig, base: Path) -> BenchConfig:
    """``prompts.path`` made absolute against the config's folder (whether the file exists is checked when it is
    read, so that the error can say where to get the data)."""
    source = config.prompts
    if source.path is None:
        return config
    return config.model_copy(update={"prompts": source.model_copy(update={"path": (base / source.path).resolve()})})


def stage1_config(
    experiment: ExperimentConfig, run_dir: str | Path | None = None, *, base: Path | None = None
) -> BenchConfig:
    """The stage I config of a study config's ``stage1`` section: its models and seed, output in
    ``<run directory>/stage1`` (``run_dir`` defaults to ``run.output_dir``); with ``base`` (the config's folder),
    ``prompts.path`` comes back absolute."""
    section: Stage1Section = experiment.stage1
    config = BenchConfig(
        name=experiment.name,
        description=experiment.description,
        seed=experiment.seed,
        models=experiment.models,
        prompts=section.prompts,
        classifier=section.classifier,
        expansion=section.expansion,
        dedup=section.dedup,
        run=BenchRunConfig(
            output_dir=stage1_dir(experiment, run_dir),
            chunk_size=section.chunk_size,
            concurrency=section.concurrency,
            keep_unflagged=section.keep_unflagged,
        ),
    )
    return config if base is None else _resolve_prompt_path(config, base)


# ============================================================================================= records
@dataclass(frozen=True)
class BenchPrompt:
    """A prompt in the making: an original from the source or one generated for a domain."""

    id: str
    text: str
    language: str
    source: Literal["original", "generated"]
    metadata: dict[str, Any] = field(default_factory=dict)
    target_domain: str | None = None
    round: int | None = None
    fingerprint: int = 0


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
    domain: str
    low_resource: bool
    original: int
    generated: int
    dropped_duplicates: int
    final: int


@dataclass
class Stage1Result:
    out_dir: Path
    summary: dict[str, Any]
    counts: list[DomainCount]


class BenchProgress(Protocol):
    """What the command line shows: a stage with a known or unknown size, advanced as work finishes."""

    def stage(self, name: str, total: int | None) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class _Quiet:
    def stage(self, name: str, total: int | None) -> None:
        log.info("stage I: %s (%s)", name, total)

    def advance(self, n: int = 1) -> None:
        pass


# ============================================================================================= loading
def _jsonable(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        with contextlib.suppress(ValueError, TypeError):
            return value.item()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def load_prompts(source: PromptSource) -> tuple[list[BenchPrompt], dict[str, int]]:
    """The distinct prompts of a source, in order, with what was skipped.

    Raises:
        DatasetError: a file is missing or unreadable, or a named column is absent.
    """
    if source.kind == "beavertails":
        frame = load_beavertails(source.path, split=source.split)
        default_metadata: list[str] = []
    else:
        assert source.path is not None
        frame = read_prompt_table(source.path)
        default_metadata = []
    where = str(source.path) if source.path else "BeaverTails"
    columns = [str(c) for c in frame.columns]
    named = [source.text_column, source.id_column, source.language_column, *(source.metadata_columns or [])]
    for column in named:
        if column is not None and column not in columns:
            raise DatasetError(f"{where}: no column {column!r} (columns: {', '.join(columns)})")
    if source.kind == "file":
        used = {source.text_column, source.id_column, source.language_column}
        default_metadata = [c for c in columns if c not in used]
    metadata_columns = source.metadata_columns if source.metadata_columns is not None else default_metadata

    prompts: list[BenchPrompt] = []
    seen: set[str] = set()
    ids: set[str] = set()
    stats = Counter(rows=len(frame))
    for row in frame.to_dict(orient="records"):
        text = row.get(source.text_column)
        if not isinstance(text, str) or not text.strip():
            stats["empty_skipped"] += 1
            continue
        text = text.strip()
        norm = " ".join(text.split()).casefold()
        if norm in seen:
            stats["exact_duplicates"] += 1
            continue
        seen.add(norm)
        language = source.language
        if source.language_column and isinstance(row.get(source.language_column), str):
            language = row[source.language_column].strip().lower() or language
        if source.id_column:
            prompt_id = str(row[source.id_column])
            if prompt_id in ids:
                raise DatasetError(f"{where}: id {prompt_id!r} in column {source.id_column!r} is not unique")
        else:
            prompt_id = "p-" + content_key(norm)[:16]
        ids.add(prompt_id)
        metadata = {c: _jsonable(row.get(c)) for c in metadata_columns}
        prompts.append(BenchPrompt(prompt_id, text, language, "original", metadata, fingerprint=simhash(text)))
        if source.limit is not None and len(prompts) >= source.limit:
            break
    stats["used"] = len(prompts)
    if not prompts:
        raise DatasetError(f"{where}: no prompts (column {source.text_column!r} is empty everywhere)")
    return prompts, dict(stats)


# =============================================================================================== state
def _merge(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    return {**left, **right}


class BenchState(TypedDict, total=False):
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

    prompts: list[BenchPrompt]
    load_stats: dict[str, int]
    classifications: Annotated[dict[str, Classification], _merge]
    low_resource: list[str]
    round: int
    generated: Annotated[list[BenchPrompt], operator.add]
    pending: list[BenchPrompt]
    accepted: Annotated[list[str], operator.add]
    expansion_calls: Annotated[list[dict[str, Any]], operator.add]
    dedup: Deduplication
    candidates: list[BenchPrompt]
    result: Stage1Result


# =========================================================================================== the stage
@dataclass
class Stage1:
    """Everything the graph's nodes use: the config, the classifier, the expander and where to write."""

    config: BenchConfig
    classifier: Rater
    expander: Backend | None
    out_dir: Path
    progress: BenchProgress = field(default_factory=_Quiet)
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
    async def classify(self, prompts: Sequence[BenchPrompt], stage: str) -> dict[str, Classification]:
        """Classify prompts in batches of ``run.chunk_size``, ``run.concurrency`` batches at once."""
        self.progress.stage(stage, len(prompts))
        size, gate = self.config.run.chunk_size, asyncio.Semaphore(self.config.run.concurrency)
        chunks = [list(prompts[i : i + size]) for i in range(0, len(prompts), size)]
        found: dict[str, Classification] = {}

        async def one(chunk: list[BenchPrompt]) -> None:
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
        return {p.id: found[p.id] for p in prompts}

    # --------------------------------------------------------------------------------------- counting
    def candidates(self, state: BenchState) -> list[BenchPrompt]:
        """The prompts the benchmark may hold, in order: classified originals, then accepted generated ones."""
        verdicts = state.get("classifications", {})
        originals = [
            p
            for p in state.get("prompts", [])
            if p.id in verdicts and verdicts[p.id].ok and (verdicts[p.id].domains or self.keep_unflagged)
        ]
        accepted = set(state.get("accepted", []))
        return originals + [p for p in state.get("generated", []) if p.id in accepted]

    def final_counts(self, state: BenchState) -> Counter[str]:
        """Per domain, the prompts left after near-duplicate removal over the current candidates."""
        candidates = self.candidates(state)
        kept = deduplicate([p.fingerprint for p in candidates], self.config.dedup.max_hamming).kept
        verdicts = state.get("classifications", {})
        return Counter(d for i in kept for d in verdicts[candidates[i].id].domains)

    def shortfalls(self, state: BenchState) -> dict[str, int]:
        expansion = self.config.expansion
        if expansion is None or not expansion.enabled:
            return {}
        counts = self.final_counts(state)
        return {d: expansion.target - counts[d] for d in state.get("low_resource", []) if counts[d] < expansion.target}

    # ------------------------------------------------------------------------------------------ nodes
    async def load(self, state: BenchState) -> BenchState:
        self.progress.stage("loading prompts", None)
        prompts, stats = await asyncio.to_thread(load_prompts, self.config.prompts)
        if self.on_loaded is not None:
            self.on_loaded()
        return {"prompts": prompts, "load_stats": stats, "round": 0}

    async def classify_originals(self, state: BenchState) -> BenchState:
        return {"classifications": await self.classify(state["prompts"], "classifying prompts")}

    def count(self, state: BenchState) -> BenchState:
        expansion = self.config.expansion
        if expansion is None or not expansion.enabled:
            return {"low_resource": []}
        counts = self.final_counts(state)
        return {"low_resource": [d for d in DOMAINS if counts[d] < expansion.min_count]}

    async def expand(self, state: BenchState) -> BenchState:
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
        requests = []
        for domain, language in asks:
            examples = self._examples(state, verdicts, domain, language, round_)
            messages = expansion_messages(domain, self.descriptions[domain], expansion.per_request, language, examples)
            requests.append(GenerationRequest(messages=messages, sampling=sampling))
        results = await expander.generate(requests) if requests else []
        self.progress.advance(len(asks))
        pending: list[BenchPrompt] = []
        calls: list[dict[str, Any]] = []
        for (domain, language), result in zip(asks, results, strict=True):
            call = {"round": round_, "domain": DOMAIN_KEYS[domain], "language": language, "outcome": result.outcome}
            if isinstance(result, CallFailure):
                calls.append({**call, "parsed": 0, "error": result.message[:200]})
                continue
            texts = parse_prompts(result.text, limit=expansion.per_request)
            calls.append({**call, "parsed": len(texts)})
            for index, text in enumerate(texts):
                key = {"domain": domain, "language": language, "round": round_, "index": index, "text": text}
                prompt_id = "g-" + content_key(key)[:16]
                pending.append(
                    BenchPrompt(
                        prompt_id,
                        text,
                        language,
                        "generated",
                        target_domain=domain,
                        round=round_,
                        fingerprint=simhash(text),
                    )
                )
        return {"round": round_, "pending": pending, "generated": pending, "expansion_calls": calls}

    def _examples(
        self, state: BenchState, verdicts: dict[str, Classification], domain: str, language: str, round_: int
    ) -> list[str]:
        wanted = self.config.expansion.examples if self.config.expansion else 0
        if not wanted:
            return []
        pool = [p for p in state.get("prompts", []) if p.id in verdicts and domain in verdicts[p.id].domains]
        pool = [p for p in pool if p.language == language] or pool
        if not pool:
            return []
        start = ((round_ - 1) * wanted) % len(pool)  # other examples each round, for variety
        return [p.text for p in (pool[start:] + pool[:start])[:wanted]]

    async def classify_generated(self, state: BenchState) -> BenchState:
        pending = state.get("pending", [])
        verdicts = await self.classify(pending, f"classifying generated prompts, round {state.get('round', 0)}")
        accepted = [p.id for p in pending if verdicts[p.id].ok and p.target_domain in verdicts[p.id].domains]
        return {"classifications": verdicts, "accepted": accepted, "pending": []}

    def route(self, state: BenchState) -> str:
        expansion = self.config.expansion
        if self.expander is None or expansion is None or not expansion.enabled:
            return "dedupe"
        if state.get("round", 0) >= expansion.max_rounds or not self.shortfalls(state):
            return "dedupe"
        return "expand"

    def dedupe(self, state: BenchState) -> BenchState:
        self.progress.stage("removing near-duplicates", None)
        candidates = self.candidates(state)
        result = deduplicate([p.fingerprint for p in candidates], self.config.dedup.max_hamming)
        return {"candidates": candidates, "dedup": result}

    async def write(self, state: BenchState) -> BenchState:
        self.progress.stage("writing the benchmark", None)
        result = await asyncio.to_thread(write_benchmark, self, state)
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


def build_bench_graph(stage: Stage1) -> Any:
    """Compile the stage I graph (its shape is drawn in the module docstring)."""
    graph = StateGraph(BenchState)
    graph.add_node("load", stage.load)
    graph.add_node("classify", stage.classify_originals)
    graph.add_node("count", stage.count)
    graph.add_node("expand", stage.expand)
    graph.add_node("classify_generated", stage.classify_generated)
    graph.add_node("dedupe", stage.dedupe)
    graph.add_node("write", stage.write)

    graph.add_edge(START, "load")
    graph.add_edge("load", "classify")
    graph.add_edge("classify", "count")
    graph.add_conditional_edges("count", stage.route, ["expand", "dedupe"])
    graph.add_edge("expand", "classify_generated")
    graph.add_conditional_edges("classify_generated", stage.route, ["expand", "dedupe"])
    graph.add_edge("dedupe", "write")
    graph.add_edge("write", END)
    return graph.compile()


# ============================================================================================= writing
def _atomic_write(path: Path, text: str) -> None:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _jsonl(rows: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def domain_counts(stage: Stage1, state: BenchState) -> list[DomainCount]:
    """Per domain: originals and accepted generated prompts classified into it, those dropped as
    near-duplicates, and the final count (``original + generated - dropped_duplicates``)."""
    verdicts = state.get("classifications", {})
    candidates = state.get("candidates", [])
    dropped = set(state["dedup"].duplicate_of) if "dedup" in state else set()
    original: Counter[str] = Counter()
    generated: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    for index, prompt in enumerate(candidates):
        domains = verdicts[prompt.id].domains
        (original if prompt.source == "original" else generated).update(domains)
        if index in dropped:
            removed.update(domains)
    low = set(state.get("low_resource", []))
    return [
        DomainCount(
            domain=DOMAIN_KEYS[d],
            low_resource=d in low,
            original=original[d],
            generated=generated[d],
            dropped_duplicates=removed[d],
            final=original[d] + generated[d] - removed[d],
        )
        for d in DOMAINS
    ]


def write_benchmark(stage: Stage1, state: BenchState) -> Stage1Result:
    """Write the benchmark files (each atomically) and return the stage's result."""
    config, out = stage.config, stage.out_dir
    out.mkdir(parents=True, exist_ok=True)
    verdicts = state.get("classifications", {})
    candidates = state.get("candidates", [])
    dedup = state["dedup"]
    prompts = state.get("prompts", [])
    generated = state.get("generated", [])
    accepted = set(state.get("accepted", []))

    rows = []
    for index in dedup.kept:
        prompt = candidates[index]
        verdict = verdicts[prompt.id]
        row: dict[str, Any] = {
            "id": prompt.id,
            "prompt": prompt.text,
            "language": prompt.language,
            "domains": [DOMAIN_KEYS[d] for d in verdict.domains],
            "source": prompt.source,
            "probabilities": {DOMAIN_KEYS[d]: p for d, p in verdict.probabilities.items()},
            "metadata": prompt.metadata,
        }
        if prompt.source == "generated":
            row["target_domain"] = DOMAIN_KEYS[prompt.target_domain or ""]
            row["round"] = prompt.round
        rows.append(row)

    failures = []
    for prompt in [*prompts, *generated]:
        verdict = verdicts.get(prompt.id)
        if verdict is not None and not verdict.ok:
            failures.append(
                {
                    "id": prompt.id,
                    "prompt": prompt.text,
                    "source": prompt.source,
                    "outcome": verdict.outcome,
                    "rationale": verdict.rationale,
                    **({"target_domain": DOMAIN_KEYS[prompt.target_domain]} if prompt.target_domain else {}),
                }
            )
    duplicates = [
        {
            "id": candidates[j].id,
            "prompt": candidates[j].text,
            "source": candidates[j].source,
            "duplicate_of": candidates[i].id,
            "kept_prompt": candidates[i].text,
            "hamming": dedup.distance[j],
        }
        for j, i in sorted(dedup.duplicate_of.items())
    ]
    counts = domain_counts(stage, state)

    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["domain", "low_resource", "original", "generated", "dropped_duplicates", "final"])
    for c in counts:
        writer.writerow([c.domain, str(c.low_resource).lower(), c.original, c.generated, c.dropped_duplicates, c.final])

    def outcomes(group: Sequence[BenchPrompt]) -> dict[str, int]:
        return dict(Counter(verdicts[p.id].outcome for p in group if p.id in verdicts and not verdicts[p.id].ok))

    classified_originals = [p for p in prompts if p.id in verdicts and verdicts[p.id].ok]
    calls = state.get("expansion_calls", [])
    generated_ok = [p for p in generated if p.id in verdicts and verdicts[p.id].ok]
    dropped_sources = Counter(candidates[j].source for j in dedup.duplicate_of)
    expansion = config.expansion
    summary: dict[str, Any] = {
        "name": config.name,
        "description": config.description,
        "config_path": stage.config_path,
        "classifier": str(stage.classifier.identity()),
        "threshold": getattr(stage.classifier, "threshold", None),
        "max_hamming": config.dedup.max_hamming,
        "min_count": expansion.min_count if expansion else None,
        "target_count": expansion.target if expansion else None,
        "prompts": state.get("load_stats", {}),
        "classification": {
            "originals": {
                "classified": len(classified_originals),
                "unflagged": sum(1 for p in classified_originals if not verdicts[p.id].domains),
                "failed": outcomes(prompts),
            },
            "generated": {
                "classified": len(generated_ok),
                "accepted": len(accepted),
                "off_target": sum(1 for p in generated_ok if p.id not in accepted),
                "failed": outcomes(generated),
            },
        },
        "low_resource_domains": [DOMAIN_KEYS[d] for d in state.get("low_resource", [])],
        "still_short": [
            c.domain for c in counts if c.low_resource and expansion is not None and c.final < expansion.target
        ],
        "expansion": {
            "rounds": state.get("round", 0),
            "requests": len(calls),
            "request_failures": dict(Counter(c["outcome"] for c in calls if c["outcome"] not in ("ok",))),
            "parsed": sum(c["parsed"] for c in calls),
            "calls": calls,
        },
        "dedup": {
            "max_hamming": config.dedup.max_hamming,
            "candidates": len(candidates),
            "dropped": len(dedup.duplicate_of),
            "dropped_original": dropped_sources["original"],
            "dropped_generated": dropped_sources["generated"],
        },
        "benchmark": {
            "prompts": len(rows),
            "original": sum(1 for r in rows if r["source"] == "original"),
            "generated": sum(1 for r in rows if r["source"] == "generated"),
        },
        "domains": [c.__dict__ for c in counts],
        "files": [BENCHMARK_FILE, COUNTS_FILE, UNCLASSIFIED_FILE, DUPLICATES_FILE, SUMMARY_FILE],
        "calls": {
            "made": sum(b.misses for b in stage.backends),
            "cache_hits": sum(b.hits for b in stage.backends),
            "prompt_tokens": sum(b.prompt_tokens for b in stage.backends),
            "completion_tokens": sum(b.completion_tokens for b in stage.backends),
            "cost_usd": round(sum(b.cost_usd for b in stage.backends), 6)
            if any(b.spec.price for b in stage.backends)
            else None,
        },
        "wall_s": round(time.perf_counter() - stage.started, 3),
    }
    _atomic_write(out / BENCHMARK_FILE, _jsonl(rows))
    _atomic_write(out / COUNTS_FILE, table.getvalue())
    _atomic_write(out / UNCLASSIFIED_FILE, _jsonl(failures))
    _atomic_write(out / DUPLICATES_FILE, _jsonl(duplicates))
    # the summary goes last: its presence says the other files are complete
    _atomic_write(out / SUMMARY_FILE, json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    return Stage1Result(out_dir=out, summary=summary, counts=counts)


# ================================================================================================ run
def _model_spec(config: BenchConfig, model: str | ModelSpec) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else next(m for m in config.models if m.name == model)


def build_bench_backends(config: BenchConfig, config_path: str | Path = "<config>") -> dict[str, Backend]:
    """The classifier's and the expander's backends by model name (shared when both name the same model).

    Raises:
        ConfigError: an unknown backend, a rejected option or an unset ``${ENV}`` reference.
    """
    wanted = [("classifier.model", config.classifier.model)]
    if config.expansion is not None and config.expansion.enabled:
        wanted.append(("expansion.model", config.expansion.model))
    backends: dict[str, Backend] = {}
    for field_path, model in wanted:
        spec = _model_spec(config, model)
        if spec.name in backends:
            continue
        if isinstance(model, str):
            field_path = f"models[{[m.name for m in config.models].index(model)}]"
        try:
            backends[spec.name] = CachedBackend(create_backend(spec, config_path=config_path, field_path=field_path))
        except KeyError as exc:
            raise ConfigError(config_path, field_path, exc.args[0] if exc.args else str(exc)) from None
    return backends


def build_classifier(config: BenchConfig, backends: dict[str, Backend], config_path: str | Path = "<config>") -> Rater:
    """The ``llm`` rater with the ``beavertails`` rubric over the 14 domains, at δ."""
    spec = _model_spec(config, config.classifier.model)
    options = dict(config.classifier.options)
    if config.classifier.threshold is not None:
        options["threshold"] = config.classifier.threshold
    rater_spec = RaterSpec(
        name="domain-classifier", kind="llm", model=spec.name, rubric=RUBRIC, dimensions=list(DOMAINS), options=options
    )
    try:
        return create_rater(rater_spec, backends)
    except (ValueError, KeyError) as exc:
        raise ConfigError(config_path, "classifier", exc.args[0] if exc.args else str(exc)) from None


async def run_stage1(
    config: BenchConfig,
    out_dir: str | Path | None = None,
    *,
    config_path: str | Path = "<config>",
    backends: dict[str, Backend] | None = None,
    progress: BenchProgress | None = None,
) -> Stage1Result:
    """Build the benchmark of ``config`` into ``out_dir`` (default ``run.output_dir``).

    Args:
        config: a validated config (:func:`load_bench_config`).
        out_dir: the output folder; created once the prompts have loaded, so a bad source writes nothing.
        config_path: for error messages and the summary.
        backends: prebuilt backends by model name (tests); built from the config when omitted.
        progress: receives stage names and advances (the command's progress bar).

    Raises:
        DatasetError: the prompt source cannot be read (nothing is written).
        ConfigError: a model cannot be built.
    """
    out = Path(out_dir or config.run.output_dir)
    backends = backends if backends is not None else build_bench_backends(config, config_path)
    classifier = build_classifier(config, backends, config_path)
    expander = None
    if config.expansion is not None and config.expansion.enabled:
        expander = backends[_model_spec(config, config.expansion.model).name]
    cached = [b for b in dict.fromkeys(backends.values()) if isinstance(b, CachedBackend)]
    stores: list[TranscriptStore] = []

    def open_output() -> None:
        out.mkdir(parents=True, exist_ok=True)
        if config.run.cache and cached:
            store = TranscriptStore(out / CACHE_FILE)
            stores.append(store)
            for backend in cached:
                backend.cache = store

    stage = Stage1(
        config=config,
        classifier=classifier,
        expander=expander,
        out_dir=out,
        progress=progress or _Quiet(),
        config_path=str(config_path),
        on_loaded=open_output,
        backends=cached,
    )
    graph = build_bench_graph(stage)
    rounds = config.expansion.max_rounds if config.expansion else 0
    try:
        state = await graph.ainvoke({}, config={"recursion_limit": 12 + 2 * rounds})
    finally:
        for backend in cached:
            backend.cache = None
        for store in stores:
            store.close()
        await classifier.aclose()
        for backend in dict.fromkeys(backends.values()):
            with contextlib.suppress(Exception):
                await backend.aclose()
    return state["result"]


__all__ = [
    "DOMAINS",
    "DOMAIN_KEYS",
    "BenchConfig",
    "BenchPrompt",
    "BenchState",
    "Classification",
    "DomainCount",
    "Stage1",
    "Stage1Result",
    "build_bench_backends",
    "build_bench_graph",
    "build_classifier",
    "load_bench_config",
    "load_prompts",
    "run_stage1",
    "stage1_config",
]
