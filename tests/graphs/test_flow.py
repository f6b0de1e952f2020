"""Requests flow, not stages: a reply's judges are asked the moment the reply returns, a rewrite's the moment the
rewrite returns, whatever the rest of the chunk is still waiting for; and the rows stored are the same as when the
chunk goes stage by stage.

The server is respx in this process: one generation (or rewrite) is held on an ``asyncio.Event`` while the others
are answered, and the tests wait on what the server has seen (never on time) before they let it go.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

import graphs.engines.chunk as chunk_module
from configs.loader import load_experiment
from graphs.runner import run_experiment
from tests.conftest import scripted_config

URL = "https://flow.test/v1"
INSULT = "They are lazy idiots."
FIXED = "I respect everyone."
WAIT_S = 120.0  # only a bound on a broken run: every wait below ends on a state


def _kind(body: dict[str, Any]) -> str:
    text = "\n".join(m["content"] for m in body["messages"])
    if body.get("response_format"):
        return "judge"
    if "Rewrite your previous answer" in text:
        return "rewrite"
    if body["model"] == "critic-model":
        return "critique"
    return "generation"


class FlowServer:
    """Answers every model of the run; holds the first request of kind ``hold`` until :attr:`release` is set."""

    def __init__(self, hold: str | None = None) -> None:
        self.hold = hold
        self.held: dict[str, Any] | None = None
        self.release = asyncio.Event()
        self.holding = asyncio.Event()
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.answered: list[str] = []
        self.while_held: list[str] = []
        self._watchers: list[tuple[str, int, asyncio.Event]] = []

    def when(self, kind: str, count: int) -> asyncio.Event:
        """An event set once ``count`` requests of ``kind`` have arrived while a request is held."""
        event = asyncio.Event()
        self._watchers.append((kind, count, event))
        self._check()
        return event

    def _check(self) -> None:
        for kind, count, event in self._watchers:
            if self.while_held.count(kind) >= count:
                event.set()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        kind = _kind(body)
        self.seen.append((kind, body))
        if self.holding.is_set() and not self.release.is_set():
            self.while_held.append(kind)
            self._check()
        if kind == self.hold and self.held is None:
            self.held = body
            self.holding.set()
            await self.release.wait()
        self.answered.append(kind)
        return httpx.Response(200, json=_completion(body, kind))


def _completion(body: dict[str, Any], kind: str) -> dict[str, Any]:
    text = "\n".join(m["content"] for m in body["messages"])
    if kind == "judge":
        toxic = INSULT in text.split("<data>")[-1]
        content = json.dumps({"rationale": "checked", "toxicity": 5 if toxic else 1})
    elif kind == "critique":
        content = "Drop the insult and say something respectful instead."
    elif kind == "rewrite":
        content = FIXED
    else:
        content = INSULT if "toxic" in text else f"A reply with seed {body.get('seed')}."
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }


def flow_config(*, mitigation: bool, chunk_size: int = 9, concurrency: int = 1) -> dict[str, Any]:
    def model(name: str, model_id: str) -> dict[str, Any]:
        return {"name": name, "backend": "openai", "model": model_id, "base_url": URL, "max_retries": 0}

    config = scripted_config()
    config["models"] = [model("gen", "gen-model"), model("judge", "judge-model"), model("critic", "critic-model")]
    config["grid"].update(
        models=["gen"],
        persona_ids=["good_person"],
        target_ids=["women", "immigrants", "muslims"],
        template_ids=["generic", "negative", "toxic"],
        languages=["en"],
        repeats=1,
        baseline=False,
    )  # 9 cells: the three `toxic` ones are insulting and go through one rewrite
    config["panel"] = {
        "raters": [
            {"name": "llm-a", "kind": "llm", "model": "judge", "rubric": "toxicity", "dimensions": ["toxicity"]},
            {"name": "words", "kind": "profanity-check", "dimensions": ["toxicity"]},
            {
                "name": "llm-b",
                "kind": "llm",
                "model": "judge",
                "rubric": "toxicity",
                "dimensions": ["toxicity"],
                "options": {"seed": 1},
            },
        ]
    }
    if mitigation:
        config["mitigation"] = {
            "threshold": 0.5,
            "max_rounds": 2,
            "dimension": "toxicity",
            "raters": ["llm-a", "llm-b"],
            "critic": "critic",
            "rewriter": "gen",
        }
    config["run"] = {"chunk_size": chunk_size, "concurrency": concurrency}
    return config


async def _run_holding(server: FlowServer, path: Path, run_dir: Path, *, kind: str, count: int) -> Any:
    """Run the experiment while the server holds one request; wait until ``count`` requests of ``kind`` arrived
    meanwhile, then release it."""
    task = asyncio.ensure_future(run_experiment(load_experiment(path), run_dir))
    arrived = server.when(kind, count)
    try:
        await asyncio.wait_for(server.holding.wait(), WAIT_S)
        waiting = asyncio.ensure_future(arrived.wait())
        done, _ = await asyncio.wait({waiting, task}, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
        assert waiting in done, f"while one call was held the server saw only {server.while_held}"
    finally:
        server.release.set()
    return await asyncio.wait_for(task, WAIT_S)


@respx.mock
def test_judges_are_asked_as_each_reply_returns_while_another_generation_is_held(tmp_path, write_config):
    server = FlowServer(hold="generation")
    respx.post(f"{URL}/chat/completions").mock(side_effect=server)
    path = write_config(flow_config(mitigation=False))

    summary = asyncio.run(_run_holding(server, path, tmp_path / "run", kind="judge", count=16))

    # the other 8 replies were each judged by both LLM judges before the held generation returned
    assert summary.outcomes == {"ok": 9}
    assert server.while_held.count("judge") == 16
    assert server.answered[-3:] == ["generation", "judge", "judge"]  # the held one, then its own two judges
    with sqlite3.connect(tmp_path / "run" / "transcripts.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM ratings").fetchone() == (27,)


@respx.mock
def test_a_rewrites_judges_are_asked_as_it_returns_while_another_rewrite_is_held(tmp_path, write_config):
    server = FlowServer(hold="rewrite")
    respx.post(f"{URL}/chat/completions").mock(side_effect=server)
    path = write_config(flow_config(mitigation=True))

    summary = asyncio.run(_run_holding(server, path, tmp_path / "run", kind="judge", count=4))

    assert server.while_held.count("judge") == 4  # the two other rewrites, two LLM judges each
    assert summary.stop_reasons == {"below_threshold": 9}
    assert summary.rewrites == 3


def _rows(run_dir: Path) -> dict[str, list[tuple]]:
    queries = {
        "generations": "SELECT generation_key, round, text, outcome, attempts FROM generations ORDER BY rowid",
        "ratings": "SELECT rating_key, generation_key, rater, dimension, score, outcome FROM ratings ORDER BY rowid",
        "critiques": "SELECT critique_key, generation_key, round, critic, text, outcome FROM critiques ORDER BY rowid",
        "mitigation": "SELECT cell_key, rounds, stop_reason FROM mitigation ORDER BY rowid",
    }
    with sqlite3.connect(run_dir / "transcripts.sqlite") as db:
        return {table: db.execute(sql).fetchall() for table, sql in queries.items()}


class _NoRelay:
    """Stands in for :class:`graphs.judging.Relay` with nothing to relay: every node goes stage by stage."""

    def __init__(self, panel: Any) -> None:
        pass

    def __bool__(self) -> bool:
        return False

    def cancel(self) -> None:
        pass


@pytest.mark.parametrize("mitigation", [False, True])
@respx.mock
def test_relayed_chunks_store_the_same_rows_in_the_same_order_as_staged_ones(
    tmp_path, write_config, monkeypatch, mitigation
):
    respx.post(f"{URL}/chat/completions").mock(side_effect=FlowServer())
    path = write_config(flow_config(mitigation=mitigation, chunk_size=4))
    flowing = asyncio.run(run_experiment(load_experiment(path), tmp_path / "flow"))
    monkeypatch.setattr(chunk_module, "Relay", _NoRelay)
    staged = asyncio.run(run_experiment(load_experiment(path), tmp_path / "staged"))

    assert flowing.as_dict()["ratings"] == staged.as_dict()["ratings"]
    flow_rows, staged_rows = _rows(tmp_path / "flow"), _rows(tmp_path / "staged")
    for table in flow_rows:
        assert flow_rows[table] == staged_rows[table], table
    assert len(flow_rows["ratings"]) == (36 if mitigation else 27)


@respx.mock
def test_a_cancelled_run_leaves_no_judge_running(tmp_path, write_config):
    server = FlowServer(hold="generation")
    respx.post(f"{URL}/chat/completions").mock(side_effect=server)
    path = write_config(flow_config(mitigation=False))

    async def go() -> set[asyncio.Task]:
        task = asyncio.ensure_future(run_experiment(load_experiment(path), tmp_path / "run"))
        await asyncio.wait_for(server.when("judge", 16).wait(), WAIT_S)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)  # let cancelled judges unwind
        return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}

    assert asyncio.run(go()) == set()


@respx.mock
def test_a_gate_of_the_whole_panel_reads_the_judges_verdicts_and_decides_as_when_it_aggregates_again(
    tmp_path, write_config, monkeypatch
):
    import graphs.mitigation as mitigation_module

    respx.post(f"{URL}/chat/completions").mock(side_effect=FlowServer())
    config = flow_config(mitigation=True, chunk_size=4)
    config["panel"]["raters"] = [r for r in config["panel"]["raters"] if r["kind"] == "llm"]
    del config["mitigation"]["raters"]  # the gate: every panel rater, the judge node's own verdicts
    path = write_config(config)
    reading = asyncio.run(run_experiment(load_experiment(path), tmp_path / "reading"))
    gating = mitigation_module.Mitigation.gating
    # a gate naming one rater more than the panel has rates the same ratings, through aggregate() again
    monkeypatch.setattr(mitigation_module.Mitigation, "gating", lambda self, panel: gating(self, panel) | {"nobody"})
    aggregating = asyncio.run(run_experiment(load_experiment(path), tmp_path / "aggregating"))

    assert reading.stop_reasons == aggregating.stop_reasons == {"below_threshold": 9}
    assert reading.rewrites == aggregating.rewrites == 3
    assert _rows(tmp_path / "reading") == _rows(tmp_path / "aggregating")


class SteadyServer:
    """Answers one request at a time, and only while as many are in flight as the run can have: the servers' limit,
    or fewer when fewer can be sent (the generations not yet answered, and two judges of each one answered whose
    judges are not): a run that ever lets the requests in flight fall below that stalls here."""

    def __init__(self, limit: int, cells: int, judges: int) -> None:
        self.limit, self.cells, self.judges = limit, cells, judges
        self.in_flight = self.peak = 0
        self.answered = {"generation": 0, "judge": 0}
        self.releasing = False
        self.changed: asyncio.Condition | None = None

    def sendable(self) -> int:
        generated, judged = self.answered["generation"], self.answered["judge"]
        return (self.cells - generated) + (self.judges * generated - judged)

    def _full(self) -> bool:
        return not self.releasing and self.in_flight == min(self.limit, self.sendable())

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        kind = _kind(body)
        self.changed = self.changed or asyncio.Condition()
        async with self.changed:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.changed.notify_all()
            try:
                await asyncio.wait_for(self.changed.wait_for(self._full), WAIT_S)
            except TimeoutError:
                pytest.fail(f"{self.in_flight} in flight while {self.sendable()} could be, limit {self.limit}")
            self.releasing = True
        async with self.changed:
            self.in_flight -= 1
            self.answered[kind] += 1
            self.releasing = False
            self.changed.notify_all()
        return httpx.Response(200, json=_completion(body, kind))


@respx.mock
def test_the_requests_in_flight_stay_at_the_servers_limit_until_fewer_are_left(tmp_path, write_config):
    # 9 cells, each a generation and two LLM judges, every model on one server that takes 3 at once; no run:
    # tuning (the defaults: one chunk of 9 here). Staged chunks would stall when a generation stage ran dry.
    server = SteadyServer(limit=3, cells=9, judges=2)
    respx.post(f"{URL}/chat/completions").mock(side_effect=server)
    config = flow_config(mitigation=False)
    del config["run"]
    for model in config["models"]:
        model["max_concurrency"] = 3
    summary = asyncio.run(run_experiment(load_experiment(write_config(config)), tmp_path / "run"))

    assert summary.outcomes == {"ok": 9}
    assert server.answered == {"generation": 9, "judge": 18} and server.peak == 3
