"""The balanced-thresholds sweep: the benchmark each (δ, τ) pair would hold, from one build's classifications.

Demo-SafetyBench reports its figures at "balanced thresholds (δ = 0.5, τ = 10)": δ is the classifier probability
at which a harm domain applies, τ the SimHash Hamming distance at which two samples of one profile are
near-duplicates. Raising δ puts fewer samples in each domain (and, unless unflagged samples are kept, drops those
in none); raising τ merges more samples. The sweep recomputes, for every pair of ``stage1.sweep``, which samples
stage I would keep and with which domains, from the classifier's stored probabilities and the samples'
fingerprints (no model is asked again):

* originals are candidates when their classification succeeded and some domain reaches δ (or always, with
  ``keep_unflagged``); generated prompts when their target domain reaches δ (expansion is not redone per pair);
* candidates are deduplicated at τ within each demographic profile, keeping the first occurrence, as stage I does.

``sweep.csv`` lists each pair's kept samples (``delta, tau, id, domains``, domains ``;``-joined BeaverTails
keys); ``sweep_counts.csv`` counts them per domain (``delta, tau, domain, samples``). The pair stage I was built
with reproduces ``benchmark.jsonl``. Stage II rates the built benchmark only, so a pair holding samples it does not
hold has them unrated: the report's sweep table gives each pair's rated coverage next to its ICC and DS.
"""

from __future__ import annotations

import csv
import io
from collections import Counter

from configs.stage1 import Stage1Config
from graphs.stage1.domains import DOMAIN_KEYS, DOMAINS
from graphs.stage1.simhash import deduplicate_within
from graphs.stage1.state import Classification, Stage1Prompt, Stage1State

SWEEP_FILE = "sweep.csv"
SWEEP_COUNTS_FILE = "sweep_counts.csv"


def domains_at(verdict: Classification, delta: float) -> tuple[str, ...]:
    """The domains (rubric ids) whose probability reaches δ, in domain order."""
    return tuple(d for d in DOMAINS if verdict.probabilities.get(d, 0.0) >= delta)


def sweep_rows(state: Stage1State, config: Stage1Config) -> tuple[list[dict], list[dict]]:
    """The rows of ``sweep.csv`` and ``sweep_counts.csv`` (empty without a ``sweep`` section)."""
    sweep = config.sweep
    if sweep is None:
        return [], []
    verdicts = state.get("classifications", {})
    originals = [p for p in state.get("prompts", []) if p.id in verdicts and verdicts[p.id].ok]
    generated = [p for p in state.get("generated", []) if p.id in verdicts and verdicts[p.id].ok]
    samples, counts = [], []
    for delta in sweep.thresholds:
        candidates: list[tuple[Stage1Prompt, tuple[str, ...]]] = []
        for prompt in originals:
            found = domains_at(verdicts[prompt.id], delta)
            if found or config.run.keep_unflagged:
                candidates.append((prompt, found))
        for prompt in generated:
            found = domains_at(verdicts[prompt.id], delta)
            if prompt.target_domain in found:
                candidates.append((prompt, found))
        fingerprints = [p.fingerprint for p, _ in candidates]
        groups = [p.profile_key for p, _ in candidates]
        for tau in sweep.max_hamming:
            kept = deduplicate_within(fingerprints, groups, tau).kept
            per_domain: Counter[str] = Counter()
            for index in kept:
                prompt, found = candidates[index]
                per_domain.update(found)
                keys = ";".join(DOMAIN_KEYS[d] for d in found)
                samples.append({"delta": delta, "tau": tau, "id": prompt.id, "domains": keys})
            counts.extend(
                {"delta": delta, "tau": tau, "domain": DOMAIN_KEYS[d], "samples": per_domain[d]} for d in DOMAINS
            )
    return samples, counts


def csv_text(rows: list[dict], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


__all__ = ["SWEEP_COUNTS_FILE", "SWEEP_FILE", "csv_text", "domains_at", "sweep_rows"]
