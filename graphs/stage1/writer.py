"""Writing the benchmark: the files of a built stage I, each written atomically, the summary last.

``benchmark.jsonl``
    One prompt per line: id, prompt, language, domains, per-domain probabilities, source (``original`` or
    ``generated``; generated ones also carry ``target_domain`` and ``round``), metadata and, for samples of a
    demographic profile (DICES), ``profile``; a DICES sample's metadata holds its humans' ratings
    (:mod:`graphs.stage1.dices`).
``domain_counts.csv``
    Per domain: low-resource or not, originals, generated prompts, those dropped as near-duplicates, final.
``unclassified.jsonl``
    Each prompt whose classification failed, with its typed outcome: such a prompt counts nowhere.
``duplicates.jsonl``
    Each dropped prompt, the kept one it duplicates and their Hamming distance.
``sweep.csv``, ``sweep_counts.csv``
    With a ``sweep`` section: the samples each (δ, τ) pair would keep, and their counts per domain
    (:mod:`graphs.stage1.sweep`).
``stage1.json``
    The summary. Written last: its presence says the other files are complete (:func:`benchmark_is_complete`).

Domains are named by their BeaverTails keys (:data:`graphs.datasets.BEAVERTAILS_CATEGORIES`).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.cached import CachedBackend
from configs.stage1 import Stage1Config
from graphs.files import atomic_write_text
from graphs.stage1.domains import DOMAIN_KEYS, DOMAINS
from graphs.stage1.state import DomainCount, Stage1Prompt, Stage1Result, Stage1State
from graphs.stage1.sweep import SWEEP_COUNTS_FILE, SWEEP_FILE, csv_text, sweep_rows
from raters.base import Rater

BENCHMARK_FILE = "benchmark.jsonl"
COUNTS_FILE = "domain_counts.csv"
SUMMARY_FILE = "stage1.json"
UNCLASSIFIED_FILE = "unclassified.jsonl"
DUPLICATES_FILE = "duplicates.jsonl"


def benchmark_is_complete(out_dir: str | Path) -> bool:
    """Whether ``out_dir`` holds a finished benchmark (its summary, which is written last, is there)."""
    return (Path(out_dir) / SUMMARY_FILE).is_file()


def read_result(out_dir: str | Path) -> Stage1Result:
    """The result of the benchmark built in ``out_dir``, read back from its summary."""
    out = Path(out_dir)
    summary = json.loads((out / SUMMARY_FILE).read_text(encoding="utf-8"))
    return Stage1Result(out_dir=out, summary=summary, counts=[DomainCount(**row) for row in summary["domains"]])


def benchmark_profiles(out_dir: str | Path) -> dict[str, dict[str, str]]:
    """The demographic profile of each benchmark sample that has one, by id (``{}`` without a benchmark)."""
    file = Path(out_dir) / BENCHMARK_FILE
    if not file.is_file():
        return {}
    rows = (json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip())
    return {str(row["id"]): row["profile"] for row in rows if row.get("profile")}


def _jsonl(rows: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def domain_counts(state: Stage1State) -> list[DomainCount]:
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


def write_benchmark(
    state: Stage1State,
    *,
    config: Stage1Config,
    out_dir: Path,
    config_path: str,
    classifier: Rater,
    backends: Sequence[CachedBackend],
    started: float,
) -> Stage1Result:
    """Write the benchmark files (each atomically, the summary last) and return the stage's result.

    Args:
        state: the graph's state after ``dedupe``.
        config: the stage I config (named in the summary, with its thresholds).
        out_dir: the folder to write (created when missing).
        config_path: the config's file, for the summary.
        classifier: the domain classifier (its identity and δ go into the summary).
        backends: the backends whose calls, cache hits, tokens and cost the summary counts.
        started: when the build started (``time.perf_counter``), for the summary's wall time.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = benchmark_rows(state)
    counts = domain_counts(state)
    summary = {
        "name": config.name,
        "description": config.description,
        "config_path": config_path,
        "classifier": str(classifier.identity()),
        "threshold": getattr(classifier, "threshold", None),
        **_summary(state, rows, counts, config),
        "calls": {
            "made": sum(b.misses for b in backends),
            "cache_hits": sum(b.hits for b in backends),
            "prompt_tokens": sum(b.prompt_tokens for b in backends),
            "completion_tokens": sum(b.completion_tokens for b in backends),
            "cost_usd": round(sum(b.cost_usd for b in backends), 6) if any(b.spec.price for b in backends) else None,
        },
        "wall_s": round(time.perf_counter() - started, 3),
    }
    atomic_write_text(out_dir / BENCHMARK_FILE, _jsonl(rows))
    atomic_write_text(out_dir / COUNTS_FILE, _counts_csv(counts))
    atomic_write_text(out_dir / UNCLASSIFIED_FILE, _jsonl(unclassified_rows(state)))
    atomic_write_text(out_dir / DUPLICATES_FILE, _jsonl(duplicate_rows(state)))
    if config.sweep is not None:
        samples, sweep_counts = sweep_rows(state, config)
        atomic_write_text(out_dir / SWEEP_FILE, csv_text(samples, ["delta", "tau", "id", "domains"]))
        atomic_write_text(out_dir / SWEEP_COUNTS_FILE, csv_text(sweep_counts, ["delta", "tau", "domain", "samples"]))
        summary["files"] = [*summary["files"][:-1], SWEEP_FILE, SWEEP_COUNTS_FILE, SUMMARY_FILE]
    # the summary goes last: its presence says the other files are complete
    atomic_write_text(out_dir / SUMMARY_FILE, json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    return Stage1Result(out_dir=out_dir, summary=summary, counts=counts)


def benchmark_rows(state: Stage1State) -> list[dict[str, Any]]:
    """The rows of ``benchmark.jsonl``: the prompts kept by ``dedupe``, in order."""
    verdicts = state.get("classifications", {})
    candidates = state.get("candidates", [])
    rows = []
    for index in state["dedup"].kept:
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
        if prompt.profile:
            row["profile"] = prompt.profile
        if prompt.source == "generated":
            row["target_domain"] = DOMAIN_KEYS[prompt.target_domain or ""]
            row["round"] = prompt.round
            if prompt.profile:
                row["expanded_from"] = prompt.expanded_from
        rows.append(row)
    return rows


def unclassified_rows(state: Stage1State) -> list[dict[str, Any]]:
    """The rows of ``unclassified.jsonl``: every prompt (original or generated) whose classification failed."""
    verdicts = state.get("classifications", {})
    failures = []
    for prompt in [*state.get("prompts", []), *state.get("generated", [])]:
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
    return failures


def duplicate_rows(state: Stage1State) -> list[dict[str, Any]]:
    """The rows of ``duplicates.jsonl``: each dropped prompt with the kept one it duplicates."""
    candidates, dedup = state.get("candidates", []), state["dedup"]
    return [
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


def _counts_csv(counts: Sequence[DomainCount]) -> str:
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["domain", "low_resource", "original", "generated", "dropped_duplicates", "final"])
    for c in counts:
        writer.writerow([c.domain, str(c.low_resource).lower(), c.original, c.generated, c.dropped_duplicates, c.final])
    return table.getvalue()


def _summary(
    state: Stage1State, rows: Sequence[dict[str, Any]], counts: Sequence[DomainCount], config: Stage1Config
) -> dict[str, Any]:
    """The summary's account of the build, from the thresholds to the benchmark's per-domain counts."""
    verdicts = state.get("classifications", {})
    candidates = state.get("candidates", [])
    dedup = state["dedup"]
    prompts = state.get("prompts", [])
    generated = state.get("generated", [])
    accepted = set(state.get("accepted", []))

    def outcomes(group: Sequence[Stage1Prompt]) -> dict[str, int]:
        return dict(Counter(verdicts[p.id].outcome for p in group if p.id in verdicts and not verdicts[p.id].ok))

    classified_originals = [p for p in prompts if p.id in verdicts and verdicts[p.id].ok]
    calls = state.get("expansion_calls", [])
    generated_ok = [p for p in generated if p.id in verdicts and verdicts[p.id].ok]
    dropped_sources = Counter(candidates[j].source for j in dedup.duplicate_of)
    expansion = config.expansion
    return {
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
        **({"dedup_within": "demographic profile"} if any(p.profile for p in candidates) else {}),
        "benchmark": {
            "prompts": len(rows),
            "original": sum(1 for r in rows if r["source"] == "original"),
            "generated": sum(1 for r in rows if r["source"] == "generated"),
        },
        "domains": [c.__dict__ for c in counts],
        "files": [BENCHMARK_FILE, COUNTS_FILE, UNCLASSIFIED_FILE, DUPLICATES_FILE, SUMMARY_FILE],
    }


__all__ = [
    "BENCHMARK_FILE",
    "benchmark_profiles",
    "COUNTS_FILE",
    "DUPLICATES_FILE",
    "SUMMARY_FILE",
    "UNCLASSIFIED_FILE",
    "benchmark_is_complete",
    "benchmark_rows",
    "domain_counts",
    "duplicate_rows",
    "read_result",
    "unclassified_rows",
    "write_benchmark",
]
