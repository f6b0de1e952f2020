"""``tribunal run`` killed with SIGKILL at five random moments and restarted each time ends exactly where an
uninterrupted run ends, and pays for no completed model call twice.

The generator, a three-judge LLM panel and the critic run on the in-process stub server, which records every
request body it answers and when. A request body maps back to the run's content-addressed call key, so after each
kill the test knows which calls the store had cached, and checks that none of them reaches the server again. A few
requests get a 429 with a two-second ``Retry-After``, so that a batch often waits on one request while the rest of
it has been answered: each reply must reach the cache when it arrives, not when its batch returns, and a call that
was answered well before a kill must not be sent again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agents.types import GenerationRequest, Message, Sampling
from configs.loader import load_experiment
from configs.schema import ModelSpec
from graphs.runner import run_experiment
from tests.helpers.stub_server import Latency, StubConfig, StubRule, StubServer
from tests.reliability.conftest import query, stub_config

KILLS = 5
LATENCY_S = 0.01
CHUNK_SIZE = 8
CONCURRENCY = 4
BACKENDS = 5  # generator, three judges, critic
RETRY_AFTER_S = 2.0
#: a reply has reached the client and the cache this long after the stub sent it, even on a loaded machine (with
#: the cache written per batch, replies waited up to the Retry-After for the rest of their batch)
SETTLED_S = 0.5

# what must come out identical (timings, attempts and created_at legitimately differ)
TABLES = {
    "cells": "SELECT cell_key, model, persona_id, target_id, template_id, language, repeat, seed, messages FROM cells",
    "generations": "SELECT generation_key, cell_key, round, parent_key, model, messages, params, text, outcome, "
    "finish_reason, error, refusal FROM generations",
    "ratings": "SELECT rating_key, generation_key, rater, dimension, score, raw, scale, outcome, rationale "
    "FROM ratings",
    "critiques": "SELECT critique_key, generation_key, round, critic, text, outcome FROM critiques",
    "mitigation": "SELECT cell_key, rounds, stop_reason FROM mitigation",
}


class Recorder:
    """A stub rule that records each request body it sees (then lets the stub answer as usual)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.phases: list[Counter[str]] = [Counter()]
        self.answered: list[list[tuple[str, float]]] = [[]]  # per phase: (body, when the stub answered it)
        self.bodies: dict[str, dict[str, Any]] = {}

    def __call__(self, request: dict[str, Any]) -> None:
        digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
        with self.lock:
            self.phases[-1][digest] += 1
            self.answered[-1].append((digest, time.monotonic() + LATENCY_S))  # the rule runs before the latency
            self.bodies.setdefault(digest, request)
        return None

    def next_phase(self) -> None:
        with self.lock:
            self.phases.append(Counter())
            self.answered.append([])

    def total(self, phases: list[Counter[str]] | None = None) -> Counter[str]:
        out: Counter[str] = Counter()
        for phase in phases if phases is not None else self.phases:
            out.update(phase)
        return out


def call_key(body: dict[str, Any], specs: dict[str, ModelSpec]) -> str:
    """The response cache's key of the call that sent ``body`` (see ``GenerationRequest.key``)."""
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
    request = GenerationRequest(
        messages=tuple(Message(role=m["role"], content=m["content"]) for m in body["messages"]),
        sampling=Sampling(
            temperature=body["temperature"],
            top_p=body["top_p"],
            max_tokens=body["max_tokens"],
            seed=body.get("seed"),
            stop=tuple(body.get("stop") or ()),
        ),
        json_schema=schema,
        top_logprobs=(body.get("top_logprobs") or 0) if body.get("logprobs") else None,
    )
    return request.key(specs[body["model"]].identity())


def cache_keys(run: Path) -> set[str]:
    return {key for (key,) in query(run, "SELECT call_key FROM cache")}


def snapshot(run: Path) -> dict[str, set[tuple]]:
    return {table: set(query(run, sql)) for table, sql in TABLES.items()}


def _start(config: Path, run: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "graphs.cli", "run", str(config), "--out", str(run), "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _generations(run: Path) -> int:
    try:
        return query(run, "SELECT COUNT(*) FROM generations")[0][0]
    except Exception:  # not created yet, or mid-creation
        return 0


@pytest.mark.slow
def test_sigkill_five_times_then_resume_matches_an_uninterrupted_run(tmp_path, write_config, capsys):
    recorder = Recorder()
    stub = StubConfig(
        seed=5,
        vary_json=True,
        latency=Latency.fixed(LATENCY_S),
        rules=[StubRule("", recorder)],  # rules see only the requests answered with a 200
        faults={"429": 0.02},
        retry_after_s=RETRY_AFTER_S,
    )
    with StubServer(stub) as server:
        config = stub_config(
            server.base_url,
            languages=("en",),
            chunk_size=CHUNK_SIZE,
            concurrency=CONCURRENCY,
            model_overrides={
                "max_concurrency": 8,
                "max_retries": 4,  # a 429 five times running: about 3e-9 per call
                "options": {"retry_base_wait_s": 0.001, "retry_max_wait_s": 2 * RETRY_AFTER_S},
            },
        )
        path = write_config(config)
        specs = {spec.name: spec for spec in load_experiment(path).config.models}

        # the uninterrupted reference
        reference_run = tmp_path / "reference"
        started = time.perf_counter()
        summary = asyncio.run(run_experiment(load_experiment(path), reference_run))
        reference_s = time.perf_counter() - started
        assert summary.outcomes == {"ok": summary.cells_total} and summary.cells_total == 336
        reference = snapshot(reference_run)
        reference_calls = recorder.total()
        # the body → call key mapping is right: every call of a fault-free run is in its cache
        assert {call_key(recorder.bodies[d], specs) for d in reference_calls} == cache_keys(reference_run)

        # the same run, killed five times
        recorder.phases, recorder.answered = [Counter()], [[]]
        run = tmp_path / "killed"
        rng = random.Random(20240607)
        cached_at_kill: list[set[str]] = []
        killed_at: list[float] = []
        progress: list[int] = []
        started = time.perf_counter()
        for _ in range(KILLS):
            before = _generations(run)
            process = _start(path, run)
            deadline = time.monotonic() + 120
            while _generations(run) <= before and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            # pauses scaled to the reference run, so that five of them cannot outlast the work (a faster
            # framework once let the last kill land after the final generation)
            time.sleep(rng.uniform(0.0, 1.0) * reference_s / (2 * KILLS))
            assert process.poll() is None, f"the run finished before it could be killed: {process.stderr.read()}"
            killed_at.append(time.monotonic())
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            assert process.returncode == -signal.SIGKILL
            progress.append(_generations(run))
            cached_at_kill.append(cache_keys(run))
            recorder.next_phase()
        final = _start(path, run)
        _, stderr = final.communicate(timeout=300)
        killed_s = time.perf_counter() - started
        rate_limited = server.stats["faults"]["429"]
        assert final.returncode == 0, stderr
        assert "already done" in stderr

    # exactly the rows and keys of the uninterrupted run
    resumed = snapshot(run)
    for table in TABLES:
        assert resumed[table] == reference[table], table
    assert query(run, "SELECT COUNT(*), COUNT(DISTINCT cell_key) FROM generations WHERE round = 0") == [(336, 336)]
    assert progress == sorted(progress) and progress[-1] < len(reference["generations"])

    # no completed call repeated: nothing cached before a kill reached the server after it
    repeated_cached = 0
    for kill, cached in enumerate(cached_at_kill):
        later = recorder.total(recorder.phases[kill + 1 :])
        repeated_cached += sum(1 for digest in later if call_key(recorder.bodies[digest], specs) in cached)
    assert repeated_cached == 0
    # the same calls were made, and only calls in flight at a kill were made again
    killed_calls = recorder.total()
    assert set(killed_calls) == set(reference_calls)
    extra = sum(max(0, killed_calls[d] - reference_calls[d]) for d in killed_calls)
    assert extra <= KILLS * CONCURRENCY * CHUNK_SIZE * BACKENDS
    # calls answered (200) before a kill and sent again after it, by how long before the kill they were answered
    ages: list[float] = []
    for kill, when in enumerate(killed_at):
        later = recorder.total(recorder.phases[kill + 1 :])
        answered = {digest: at for digest, at in recorder.answered[kill] if at < when}
        ages += [when - at for digest, at in answered.items() if digest in later]
    settled = sum(age > SETTLED_S for age in ages)
    assert settled == 0, f"{settled} calls answered more than {SETTLED_S} s before a kill were paid for again"

    with capsys.disabled():
        print(
            f"\n[crash and resume] {KILLS} SIGKILLs at {progress} generations; rows identical to the reference "
            f"({', '.join(f'{t} {len(reference[t])}' for t in TABLES)}); distinct calls {len(reference_calls)}; "
            f"requests {sum(reference_calls.values())} uninterrupted vs {sum(killed_calls.values())} killed "
            f"({extra} in flight at a kill, made again); cached calls repeated {repeated_cached}; answered with a 200 "
            f"before a kill and sent again {len(ages)} (answered more than 0.1 / {SETTLED_S} / 1 s before the kill: "
            f"{sum(a > 0.1 for a in ages)} / {settled} / {sum(a > 1 for a in ages)}); 429s {rate_limited}; "
            f"{reference_s:.1f} s uninterrupted, {killed_s:.1f} s with kills"
        )
