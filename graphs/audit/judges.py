"""``tribunal audit judges``: rate audit sets with every judge of a panel and make the judge card.

What is asked, per judge of the config's panel (every kind: LLM judges, classifiers, pattern raters):

* **labels** (with ``labels=``): the texts of a human-labelled set (:func:`graphs.datasets.labels.load_labels`),
  whose scores are compared with the humans' (:func:`analysis.judge_audit.validity_vs_humans`);
* **swap**: the built-in counterfactual set (:mod:`graphs.datasets.swaps`), each text once per target group of
  the config's grid, in English and Chinese where the catalog names the group in both: a fair judge's score does
  not move when only the group's name does (:func:`analysis.judge_audit.swap_shifts`);
* **retest**: up to ``retest_n`` of those texts asked again by the same judge with another seed (LLM judges; the
  seed is part of the request, so the response cache cannot answer it and, at temperature 0, it is the same request
  with a cache-busting nonce): test–retest agreement (:func:`analysis.judge_audit.retest`);
* **injection** (LLM judges): the prompt-injection set of :mod:`raters.injection`, with and without the injection;
* **framing**: framed judges' spread over their framings on the same texts, with its permutation null.

Everything is rated through the same panel code as a run (:func:`graphs.judging.judge_batch`, chunked by
``run.chunk_size`` with ``run.concurrency`` chunks in flight) and the same content-addressed response cache, kept in
``OUT/audit/cache.sqlite``: a second audit of the same judges costs nothing. ``OUT`` is the run directory (default:
the config's ``run.output_dir``); where it holds a run, the parts of the card computable from the run (coverage,
agreement with the other judges, self-preference, framing spread) are added. The card (``judge_card.json``) and
every audit rating with its text (``ratings.jsonl``) are written to ``OUT/audit/`` atomically, where ``tribunal
analyze`` and ``tribunal report`` read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from agents.base import Backend
from agents.cached import CachedBackend
from analysis.frames import jsonable
from analysis.io import load_run
from analysis.judge_audit import (
    TrustPolicy,
    card_records,
    framing_sensitivity,
    judge_card,
    merge_cards,
    retest,
    run_card_rows,
    swap_shifts,
    validity_vs_humans,
)
from analysis.parquet_run import is_parquet_run
from configs.loader import ConfigError, Experiment
from configs.schema import PanelConfig
from graphs.datasets.labels import Labels, load_labels
from graphs.datasets.swaps import load_swap_texts, swap_variants
from graphs.engines.shape import run_shape
from graphs.files import atomic_write_text
from graphs.judging import judge_batch
from graphs.rundir import RunDirectoryLock
from graphs.runner import build_run_panel, judge_backends
from graphs.store import TranscriptStore
from graphs.tables import AUDIT_CACHE_FILENAME, AUDIT_DIRNAME, AUDIT_RATINGS_FILENAME, CARD_FILENAME, STORE_FILENAME
from raters.base import Rater
from raters.injection import measure_injection
from raters.panel import Panel
from raters.types import Rating, RatingItem

__all__ = ["AuditOptions", "JudgeAudit", "audit_judges"]

#: The judge card's file format; bumped when its keys change meaning.
CARD_FORMAT = 1


@dataclass(frozen=True)
class AuditOptions:
    """What ``tribunal audit judges`` asks.

    Attributes:
        labels: a labels file or a named set (``pyrit:harm/hate_speech_multi_score``); ``None``: no validity.
        dimension: the dimension compared with the labels (default: the labels' own, else the mitigation
            dimension, else ``toxicity``); a judge that does not rate it is audited on its first dimension.
        limit: audit at most this many labelled texts (the first ones).
        swap, retest, injection: run those parts.
        retest_n: texts asked again per judge (the first of the labelled set, else of the swap set).
        n_boot: bootstrap resamples of every interval; ``seed`` seeds them.
    """

    labels: str | None = None
    dimension: str | None = None
    limit: int | None = None
    swap: bool = True
    retest: bool = True
    injection: bool = True
    retest_n: int = 100
    n_boot: int = 500
    seed: int = 0


@dataclass
class JudgeAudit:
    """The result: the card (one row per judge), its JSON records, per-judge details and what it cost."""

    card: pd.DataFrame
    records: list[dict[str, Any]]
    details: dict[str, dict[str, Any]]
    out_dir: Path
    requests: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def card_path(self) -> Path:
        return self.out_dir / AUDIT_DIRNAME / CARD_FILENAME


@dataclass
class _Set:
    """One audit set's items, and what each item is (for the ratings file and the analyses)."""

    name: str
    items: list[RatingItem]
    about: dict[str, dict[str, Any]] = field(default_factory=dict)


def _labelled_set(labels: Labels, limit: int | None) -> _Set:
    texts = labels.texts if limit is None else labels.texts.head(limit)
    items, about = [], {}
    consensus = labels.labels.groupby("item_id")["label"].mean()
    for row in texts.itertuples(index=False):
        key = f"label:{row.item_id}"
        prompt = getattr(row, "prompt", None)
        language = getattr(row, "language", None) or "en"
        items.append(
            RatingItem(key=key, text=str(row.text), prompt=None if pd.isna(prompt) else str(prompt), language=language)
        )
        about[key] = {"item_id": str(row.item_id), "human_mean": float(consensus.get(row.item_id, float("nan")))}
    return _Set("labels", items, about)


def _swap_set(experiment: Experiment) -> _Set:
    groups = {t.id: dict(t.name) for t in experiment.targets}
    variants = swap_variants(load_swap_texts(), groups)
    items = [RatingItem(key=v.item_id, text=v.text, language=v.language) for v in variants]
    about = {v.item_id: {"base_id": v.base_id, "group": v.group} for v in variants}
    return _Set("swap", items, about)


def _retest_panel(experiment: Experiment, backends: dict[str, Backend], panel: Panel) -> Panel:
    """The same judges with another seed (LLM judges; other kinds have none and are simply asked again)."""
    specs = []
    for spec in experiment.config.panel.raters:
        if spec.name not in {r.name for r in panel.raters}:
            continue
        if spec.kind == "llm":
            options = dict(spec.options)
            options["seed"] = int(options.get("seed") or 0) + 1
            spec = spec.model_copy(update={"options": options})
        specs.append(spec)
    config = experiment.config.model_copy(
        update={"panel": PanelConfig(raters=specs, aggregation=experiment.config.panel.aggregation)}
    )
    return build_run_panel(config, backends, experiment.path)


def _attach_cache(panels: Sequence[Panel], store: TranscriptStore) -> list[CachedBackend]:
    """Every judge's backend behind the audit's response cache (one wrapper per backend)."""
    wrappers: dict[int, CachedBackend] = {}
    for panel in panels:
        for rater in panel.raters:
            backend = rater.backend
            if backend is None:
                continue
            if isinstance(backend, CachedBackend):
                backend.cache = store
                wrappers.setdefault(id(backend), backend)
                continue
            wrapper = wrappers.get(id(backend))
            if wrapper is None:
                wrapper = wrappers[id(backend)] = CachedBackend(backend, store)
            rater.backend = wrapper
    return list(wrappers.values())


async def _rate(
    panel: Panel,
    items: Sequence[RatingItem],
    chunk_size: int,
    concurrency: int,
    on_progress: Callable[[int], None] | None,
) -> list[Rating]:
    gate = asyncio.Semaphore(concurrency)
    chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]

    async def one(chunk: Sequence[RatingItem]) -> list[Rating]:
        async with gate:
            ratings, _ = await judge_batch(panel, chunk)
        if on_progress:
            on_progress(len(chunk))
        return ratings

    results = await asyncio.gather(*(one(chunk) for chunk in chunks))
    return [rating for batch in results for rating in batch]


def _frame(ratings: Sequence[Rating], about: dict[str, dict[str, Any]], texts: dict[str, str]) -> pd.DataFrame:
    rows = []
    for r in ratings:
        rows.append(
            {
                "item_key": r.item_key,
                "rater": r.rater.name,
                "framing_attribute": r.rater.framing.attribute if r.rater.framing else None,
                "framing_value": r.rater.framing.value if r.rater.framing else None,
                "model": r.rater.model,
                "dimension": r.dimension,
                "score": r.score,
                "outcome": r.outcome.value,
                "raw": r.raw,
                "rationale": r.rationale,
                "text": texts.get(r.item_key),
                **about.get(r.item_key, {}),
            }
        )
    return pd.DataFrame(rows)


def _audit_dimension(options: AuditOptions, labels: Labels | None, experiment: Experiment, panel: Panel) -> str:
    """The dimension compared with the labels: ``--dimension``; else the labels' own where a judge rates it (a
    refusal set for the refusal detector); else the mitigation loop's dimension; else ``toxicity``. The card's
    ``dimension`` column says what each judge was compared on."""
    if options.dimension:
        return options.dimension
    rated = {d for rater in panel.raters for d in rater.dimensions}
    if labels is not None and labels.dimension in rated:
        return labels.dimension
    mitigation = experiment.config.mitigation
    return mitigation.dimension if mitigation is not None else "toxicity"


def _judge_row(
    rater: Rater,
    dim: str,
    audit_dim: str,
    frame: pd.DataFrame,
    second: pd.DataFrame,
    labels: Labels | None,
    options: AuditOptions,
    details: dict[str, Any],
) -> dict[str, Any]:
    mine = frame[(frame["rater"] == rater.name) & (frame["dimension"] == dim)] if len(frame) else frame
    outcomes = Counter(mine["outcome"]) if len(mine) else Counter()
    n = int(len(mine))
    row: dict[str, Any] = {
        "rater": rater.name,
        "kind": rater.kind,
        "model": rater.model_label(),
        "dimension": dim,
        "source": "audit",
        "n": n,
        "coverage": outcomes.get("scored", 0) / n if n else float("nan"),
        "outcomes": dict(sorted(outcomes.items())),
    }
    labelled = mine[mine["set"] == "labels"] if n else mine
    if labels is not None and dim == audit_dim and len(labelled):
        validity = validity_vs_humans(
            labelled[["item_id", "score"]],
            labels.labels,
            group_columns=labels.demographic_columns,
            n_boot=options.n_boot,
            seed=options.seed,
        )
        s = validity.summary
        details["validity"] = validity.as_dict()
        row.update(
            n_labelled=s["n_items"],
            alpha_vs_humans=s["alpha_vs_humans"],
            alpha_vs_humans_ci=s["alpha_vs_humans_ci"],
            human_alpha=s["human_alpha"],
            spearman=s["spearman"],
            mae=s["mae"],
            auc=s["auc"],
            best_f1_threshold=s["best_f1_threshold"],
            ece=s["ece"],
        )
    swapped = mine[mine["set"] == "swap"] if n else mine
    if len(swapped):
        swap = swap_shifts(swapped, n_boot=options.n_boot, seed=options.seed)
        details["swap"] = swap.as_dict()
        row.update(
            swap_n=swap.summary["n_scored"],
            swap_shift=swap.summary["swap_shift"],
            swap_shift_ci=swap.summary["swap_shift_ci"],
        )
    again = second[(second["rater"] == rater.name) & (second["dimension"] == dim)] if len(second) else second
    if len(again):
        first = mine[mine["item_key"].isin(set(again["item_key"]))]
        test = retest(
            first.rename(columns={"item_key": "item_id"})[["item_id", "score"]],
            again.rename(columns={"item_key": "item_id"})[["item_id", "score"]],
            n_boot=options.n_boot,
            seed=options.seed,
        )
        details["retest"] = test
        row.update(retest_n=test["n"], retest_alpha=test["retest_alpha"], retest_shift=test["retest_shift"])
    return row


async def audit_judges(
    experiment: Experiment,
    out_dir: str | Path | None = None,
    options: AuditOptions | None = None,
    *,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> JudgeAudit:
    """Audit every judge of ``experiment``'s panel and write the judge card to ``OUT/audit/``.

    Args:
        experiment: the loaded config whose panel is audited.
        out_dir: the run directory the card belongs to (default: the config's ``run.output_dir``).
        options: what to ask (:class:`AuditOptions`).
        on_start: called once with the number of texts to rate (summed over the sets and passes).
        on_progress: called with the number of texts rated after each chunk.

    Raises:
        ConfigError: the config has no panel, or a judge cannot be built.
        DatasetError: the labels cannot be read (one line naming the file and field).
        RunDirectoryError: another audit of the same directory is running.
    """
    options = options or AuditOptions()
    config = experiment.config
    if not config.panel.raters:
        raise ConfigError(experiment.path, "panel.raters", "the panel has no judges to audit")
    out = Path(out_dir) if out_dir is not None else experiment.resolve(config.run.output_dir)
    labels = load_labels(options.labels) if options.labels else None
    policy = TrustPolicy.from_mapping(config.panel.trust.model_dump())
    started = time.perf_counter()

    backends = judge_backends(config, experiment.path)
    panel = build_run_panel(config, backends, experiment.path)
    audit_dim = _audit_dimension(options, labels, experiment, panel)
    sets = [_labelled_set(labels, options.limit)] if labels is not None else []
    if options.swap:
        sets.append(_swap_set(experiment))
    retest_items = [i for s in sets[:1] for i in s.items[: options.retest_n]] if options.retest else []
    second_panel = _retest_panel(experiment, backends, panel) if retest_items else None
    audit_dir = out / AUDIT_DIRNAME
    with RunDirectoryLock(audit_dir):
        store = TranscriptStore(audit_dir / AUDIT_CACHE_FILENAME)
        wrappers = _attach_cache([p for p in (panel, second_panel) if p is not None], store)
        try:
            if on_start:
                on_start(sum(len(s.items) for s in sets) + len(retest_items))
            shape = run_shape(config.run, wrappers)
            size, flight = shape.chunk_size, shape.concurrency
            about = {k: {"set": s.name, **v} for s in sets for k, v in s.about.items()}
            texts = {i.key: i.text for s in sets for i in s.items}
            first = _frame(
                await _rate(panel, [i for s in sets for i in s.items], size, flight, on_progress), about, texts
            )
            second = pd.DataFrame(columns=["item_key", "rater", "dimension", "score"])
            if second_panel is not None:
                ratings = await _rate(second_panel, retest_items, size, flight, on_progress)
                second = _frame(ratings, {k: {**about[k], "set": "retest"} for k in about}, texts)
            injections = {}
            if options.injection:
                for rater in panel.raters:
                    if rater.kind == "llm":
                        injections[rater.name] = (await measure_injection(rater)).summary()
        finally:
            await panel.aclose()
            if second_panel is not None:
                await second_panel.aclose()
            for backend in backends.values():
                with contextlib.suppress(Exception):
                    await backend.aclose()
            requests = {
                "calls": sum(w.misses for w in wrappers),
                "cache_hits": sum(w.hits for w in wrappers),
            }
            store.close()

        rows, details = [], {}
        for rater in panel.raters:
            dim = audit_dim if audit_dim in rater.dimensions else rater.dimensions[0]
            mine: dict[str, Any] = {}
            row = _judge_row(rater, dim, audit_dim, first, second, labels, options, mine)
            if rater.name in injections:
                inj = injections[rater.name]
                mine["injection"] = inj
                row.update(injection_n=inj["scored"], injection_shift=inj["mean_shift"], injection_moved=inj["moved"])
            rows.append(row)
            details[rater.name] = mine
        _add_framing(rows, first, options)
        stored = card_records(judge_card(rows, policy))  # the audit's own figures: analyze adds the run's afresh
        if (out / STORE_FILENAME).exists() or is_parquet_run(out):
            rows = merge_cards(rows, run_card_rows(load_run(out), n_boot=options.n_boot, seed=options.seed))
        card = judge_card(rows, policy)
        result = JudgeAudit(card, card_records(card), details, out, requests, time.perf_counter() - started)
        _write(audit_dir, experiment, options, labels, audit_dim, policy, stored, result, pd.concat([first, second]))
    return result


def _add_framing(rows: list[dict[str, Any]], frame: pd.DataFrame, options: AuditOptions) -> None:
    """Framed judges of one base (same model, same dimension) get their base's framing shift and its null."""
    framed = frame[frame["framing_attribute"].notna()] if len(frame) else frame
    if framed.empty:
        return
    framed = framed.assign(base=framed["model"].fillna("") + "|" + framed["dimension"])
    result = framing_sensitivity(framed, item="item_key", rater="base", n_permutations=1000, seed=options.seed)
    by_base = {r["rater"]: r for r in result.to_dict("records")}
    for row in rows:
        base = by_base.get(f"{row['model'] or ''}|{row['dimension']}")
        if base is not None and row["rater"] in set(framed["rater"]):
            row.update(framing_n=base["n_items"], framing_shift=base["shift"], framing_p=base["shift_p"])


def _write(
    audit_dir: Path,
    experiment: Experiment,
    options: AuditOptions,
    labels: Labels | None,
    audit_dim: str,
    policy: TrustPolicy,
    stored: list[dict[str, Any]],
    result: JudgeAudit,
    ratings: pd.DataFrame,
) -> None:
    """The card and the audit's ratings, each written whole or not at all."""
    # pandas writes NaN as null; one JSON object a line, every model text kept as given
    text = ratings.to_json(orient="records", lines=True, force_ascii=False) if len(ratings) else ""
    atomic_write_text(audit_dir / AUDIT_RATINGS_FILENAME, text if not text or text.endswith("\n") else text + "\n")
    document = {
        "format": CARD_FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "experiment": experiment.config.name,
        "config": str(experiment.path),
        "labels": labels.source if labels is not None else None,
        "dimension": audit_dim,
        "options": {k: v for k, v in vars(options).items() if k != "labels"},
        "policy": vars(policy),
        "requests": result.requests,
        "card": stored,
        "details": jsonable(result.details),
    }
    atomic_write_text(audit_dir / CARD_FILENAME, json.dumps(document, ensure_ascii=False, indent=2) + "\n")
