"""A 5,000-cell run against a stub server that injects 10 % faults into every kind of call.

The generator, a three-judge LLM panel and the mitigation loop's critic all talk to one :class:`StubServer`
that answers one request in ten with a fault: 429 with ``Retry-After``, 500, 503, a hung request (the client's
timeout fires), a dropped connection, a truncated body, malformed JSON, a judge answering prose instead of JSON,
or a ``content_filter`` finish. Afterwards nothing may be lost, duplicated, invented or over-retried.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import pytest

from configs.loader import load_experiment
from graphs.mitigation import __doc__ as MITIGATION_DOC
from graphs.records import GENERATION_OUTCOMES, RATING_OUTCOMES
from graphs.runner import run_experiment
from tests.helpers.stub_server import StubConfig, StubServer
from tests.reliability.conftest import JUDGES, query, stub_config

MAX_RETRIES = 2
FAULT_RATE = 0.10
REPEATS = 8  # 672 cells per repeat: 5,376 cells
STOP_REASONS = {"below_threshold", "max_rounds", "refused", "rewrite_failed", "unscored"}
FAILED = set(GENERATION_OUTCOMES) - {"ok", "content_filter"}


@pytest.mark.slow
def test_faulty_server_loses_nothing_and_types_every_failure(tmp_path, write_config, capsys):
    assert all(f"``{reason}``" in MITIGATION_DOC for reason in STOP_REASONS)
    stub = StubConfig(
        seed=3,
        vary_json=True,  # judges' scores spread over the scale, so some replies go round the mitigation loop
        faults=StubConfig.spread(FAULT_RATE),  # 429, 500, 503, timeout, drop, truncate, malformed, prose, filter
        retry_after_s=0.01,
        hang_s=2.5,
    )
    run = tmp_path / "run"
    with StubServer(stub) as server:
        config = stub_config(
            server.base_url,
            repeats=REPEATS,
            chunk_size=32,
            concurrency=8,
            # the client's timeout must exceed what queueing costs on a busy 2-core box; the stub's hung requests
            # (hang_s) outlast it, so every injected timeout fires on the client's side
            model_overrides={"max_retries": MAX_RETRIES, "timeout_s": 2.0, "max_concurrency": 32},
        )
        experiment = load_experiment(write_config(config))
        started = time.perf_counter()
        summary = asyncio.run(run_experiment(experiment, run))
        wall = time.perf_counter() - started
        stats = server.stats

    cells = query(run, "SELECT COUNT(*) FROM cells")[0][0]
    assert cells == summary.cells_total == 672 * REPEATS >= 5000

    # no cell lost: every cell has its original generation
    lost = query(
        run,
        "SELECT COUNT(*) FROM cells c LEFT JOIN generations g ON g.cell_key = c.cell_key AND g.round = 0 "
        "WHERE g.generation_key IS NULL",
    )[0][0]
    assert lost == 0

    # no duplicate row: one row per (cell, round), per (generation, rater, dimension), per (generation, critic)
    duplicates = sum(
        query(run, sql)[0][0]
        for sql in (
            "SELECT COUNT(*) - COUNT(DISTINCT cell_key || ':' || round) FROM generations",
            "SELECT COUNT(*) - COUNT(DISTINCT generation_key || ':' || rater || ':' || dimension) FROM ratings",
            "SELECT COUNT(*) - COUNT(DISTINCT generation_key || ':' || round || ':' || critic) FROM critiques",
            "SELECT COUNT(*) - COUNT(DISTINCT cell_key) FROM mitigation",
        )
    )
    assert duplicates == 0
    orphans = query(
        run,
        "SELECT (SELECT COUNT(*) FROM ratings WHERE generation_key NOT IN (SELECT generation_key FROM generations))"
        " + (SELECT COUNT(*) FROM generations WHERE cell_key NOT IN (SELECT cell_key FROM cells))",
    )[0][0]
    assert orphans == 0

    # every failure stored with its type; a failure is never text, an unscored rating never a number
    generation_outcomes = Counter(dict(query(run, "SELECT outcome, COUNT(*) FROM generations GROUP BY outcome")))
    assert set(generation_outcomes) <= set(GENERATION_OUTCOMES)
    marks = ", ".join(f"'{o}'" for o in FAILED)
    bad_failures = query(
        run, f"SELECT COUNT(*) FROM generations WHERE outcome IN ({marks}) AND (text IS NOT NULL OR error IS NULL)"
    )[0][0]
    assert bad_failures == 0
    assert query(run, "SELECT COUNT(*) FROM generations WHERE outcome = 'ok' AND text IS NULL")[0][0] == 0
    rating_outcomes = Counter(dict(query(run, "SELECT outcome, COUNT(*) FROM ratings GROUP BY outcome")))
    assert set(rating_outcomes) <= set(RATING_OUTCOMES)
    assert query(run, "SELECT COUNT(*) FROM ratings WHERE (outcome = 'scored') != (score IS NOT NULL)")[0][0] == 0
    assert query(run, "SELECT COUNT(*) FROM ratings WHERE score < 0 OR score > 1")[0][0] == 0
    stops = Counter(dict(query(run, "SELECT stop_reason, COUNT(*) FROM mitigation GROUP BY stop_reason")))
    assert set(stops) <= STOP_REASONS
    critique_outcomes = dict(query(run, "SELECT outcome, COUNT(*) FROM critiques GROUP BY outcome"))
    assert set(critique_outcomes) <= {*GENERATION_OUTCOMES, "empty"}
    assert query(run, "SELECT COUNT(*) FROM critiques WHERE outcome != 'ok' AND outcome != 'empty' "
                      "AND text IS NOT NULL AND text != ''")[0][0] == 0  # fmt: skip
    # the faults really happened, and came back typed rather than as text
    assert stats["faults_total"] > 0.08 * stats["chat_completions"]
    assert all(stats["faults"][kind] > 0 for kind in ("429", "500", "503", "timeout", "drop", "truncate"))
    assert all(stats["faults"][kind] > 0 for kind in ("malformed", "prose", "content_filter"))
    assert generation_outcomes["content_filter"] > 0 and rating_outcomes["content_filter"] > 0
    assert stops["max_rounds"] + stops["below_threshold"] > 0  # the loop ran

    # no request retried more often than configured
    assert query(run, "SELECT MAX(attempts), MIN(attempts) FROM generations")[0] <= (MAX_RETRIES + 1, 1)
    assert query(run, "SELECT MIN(attempts) FROM generations")[0][0] >= 1  # nothing came from a cache: fresh run
    # a verdict's attempts are HTTP attempts: at most max_retries + 1 for the first ask and as many for a re-ask
    assert query(run, "SELECT MAX(attempts) FROM ratings")[0][0] <= 2 * (MAX_RETRIES + 1)
    assert query(run, "SELECT MAX(attempts) FROM critiques")[0][0] <= MAX_RETRIES + 1
    generation_requests = query(run, "SELECT SUM(attempts) FROM generations")[0][0]
    judge_requests = query(
        run, "SELECT COALESCE(SUM(n), 0) FROM (SELECT MAX(attempts) AS n FROM ratings GROUP BY generation_key, rater)"
    )[0][0]  # one verdict per (generation, rater): its dimensions share the calls
    critic_requests = query(run, "SELECT COALESCE(SUM(attempts), 0) FROM critiques")[0][0]
    served = stats["chat_completions"]
    # every request the server saw is counted once in the store's attempts (calls served from the cache: 0)
    assert served == generation_requests + judge_requests + critic_requests
    # a retryable failure is stored only after every allowed attempt was spent
    retryable = ", ".join(f"'{o}'" for o in FAILED - {"client_error"})
    early = f"SELECT COUNT(*) FROM generations WHERE outcome IN ({retryable}) AND attempts != {MAX_RETRIES + 1}"
    assert query(run, early)[0][0] == 0

    # the summary's counts match the store
    stored = json.loads(query(run, "SELECT summary FROM runs ORDER BY run_id DESC LIMIT 1")[0][0])
    assert stored["status"] == "completed"
    assert stored["cells_generated"] == summary.cells_generated == cells
    assert stored["outcomes"] == dict(query(run, "SELECT outcome, COUNT(*) FROM generations WHERE round = 0 "
                                                 "GROUP BY outcome"))  # fmt: skip
    assert stored["ratings"] == dict(rating_outcomes)
    assert stored["rating_count"] == sum(rating_outcomes.values())
    # the token row counts every call made (rewrites, judges and the critic too), not only first generations
    first_generations = query(run, "SELECT SUM(prompt_tokens) FROM generations WHERE round = 0")[0][0]
    assert stored["prompt_tokens"] > 2 * first_generations
    assert stored["stop_reasons"] == dict(stops)
    assert stored["rewrites"] == query(run, "SELECT COUNT(*) FROM generations WHERE round > 0")[0][0]
    assert stored["critiques"] == query(run, "SELECT COUNT(*) FROM critiques")[0][0]
    raters = {name for (name,) in query(run, "SELECT DISTINCT rater_name FROM ratings")}
    assert raters == set(JUDGES)

    with capsys.disabled():
        injected = ", ".join(f"{k} {v}" for k, v in sorted(stats["faults"].items()) if v)
        print(
            f"\n[fault injection] cells {cells}, requests {served}, faults injected {stats['faults_total']} "
            f"({stats['faults_total'] / served:.1%}: {injected}); rows lost {lost}, duplicates {duplicates}; "
            f"generation outcomes {dict(sorted(generation_outcomes.items()))}; "
            f"rating outcomes {dict(sorted(rating_outcomes.items()))}; stop reasons {dict(sorted(stops.items()))}; "
            f"max attempts per call {MAX_RETRIES + 1}; {wall:.1f} s ({cells / wall:.0f} cells/s)"
        )
