"""What a run counts counts what it says: ``attempts`` are HTTP attempts, and the summary's tokens are those of
every call the run made (generations, rewrites, judges and the critic), calls served from the cache excluded."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from agents.base import Backend, GenerationOutput
from agents.cached import CachedBackend
from agents.types import Completion, GenerationRequest, Message
from configs.base import ModelSpec
from graphs.store import TranscriptStore
from tests.conftest import run_config, scripted_config
from tests.graphs.test_mitigation import mitigation_config
from tests.helpers.stub_server import StubConfig, StubServer

JUDGE_REPLY = '{"rationale": "fine", "toxicity": 1}'


def _rows(run: Path, sql: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(run / "transcripts.sqlite")) as db:
        return db.execute(sql).fetchall()


def _judged(config: dict) -> dict:
    config["grid"].setdefault("models", [config["models"][0]["name"]])  # the judge only judges
    config["models"].append({"name": "judge", "backend": "scripted", "options": {"default": JUDGE_REPLY}})
    config.setdefault("panel", {"raters": []})["raters"].append(
        {"name": "judge", "kind": "llm", "model": "judge", "rubric": "toxicity", "dimensions": ["toxicity"]}
    )
    return config


def _tokens_of_calls_made(run: Path) -> tuple[int, int]:
    generated = _rows(
        run, "SELECT COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) FROM generations "
        "WHERE attempts > 0",
    )[0]  # fmt: skip
    judged = _rows(
        run, "SELECT COALESCE(SUM(p), 0), COALESCE(SUM(c), 0) FROM (SELECT MAX(prompt_tokens) AS p, "
        "MAX(completion_tokens) AS c FROM ratings WHERE attempts > 0 AND rater_name = 'judge' "
        "GROUP BY generation_key, rater)",
    )[0]  # fmt: skip
    return generated[0] + judged[0], generated[1] + judged[1]


def test_the_summary_counts_the_tokens_of_every_call_made(tmp_path, write_config):
    run = tmp_path / "run"
    summary = run_config(write_config(_judged(scripted_config())), run)
    assert summary.rating_count == 108
    assert (summary.prompt_tokens, summary.completion_tokens) == _tokens_of_calls_made(run)
    generations_only = _rows(run, "SELECT SUM(prompt_tokens) FROM generations")[0][0]
    assert summary.prompt_tokens > generations_only  # the judges' calls count too

    # with the mitigation loop, the rewrites and the critic's calls count as well
    looped = tmp_path / "looped"
    summary = run_config(write_config(_judged(mitigation_config()), "m.yaml"), looped)
    assert summary.rewrites and summary.critiques
    assert summary.prompt_tokens > _tokens_of_calls_made(looped)[0]  # the critic's, which no table holds


def test_rating_attempts_count_http_attempts(tmp_path, write_config):
    with StubServer(StubConfig(script=["500"], vary_json=True)) as server:  # the judge's first attempt fails
        config = scripted_config()
        config["models"].append(
            {
                "name": "judge",
                "backend": "openai",
                "model": "judge",
                "base_url": server.base_url,
                "max_retries": 2,
                "options": {"retry_base_wait_s": 0.001, "retry_max_wait_s": 0.01},
            }
        )
        config["panel"] = {
            "raters": [
                {"name": "judge", "kind": "llm", "model": "judge", "rubric": "toxicity", "dimensions": ["toxicity"]}
            ]
        }
        run = tmp_path / "run"
        run_config(write_config(config), run, limit=1)
        served = server.stats["chat_completions"]
    assert _rows(run, "SELECT attempts, outcome FROM ratings") == [(2, "scored")]
    assert served == 2


class _OneHeldBack(Backend):
    """Answers every request at once except the one that asks to wait, which waits for ``release``."""

    kind = "test"
    answers_each_request = True

    def __init__(self) -> None:
        super().__init__(ModelSpec(name="held", backend="scripted"))
        self.release = asyncio.Event()

    async def generate(self, requests: list[GenerationRequest]) -> list[GenerationOutput]:
        replies = []
        for request in requests:
            if request.messages[-1].content == "wait":
                await self.release.wait()
            replies.append(Completion(text=f"re: {request.messages[-1].content}"))
        return replies


def test_each_reply_is_cached_when_it_arrives_not_when_its_batch_returns(tmp_path):
    store = TranscriptStore.open(tmp_path / "run")
    inner = _OneHeldBack()
    backend = CachedBackend(inner, cache=store)
    requests = [GenerationRequest(messages=(Message(role="user", content=text),)) for text in ("a", "wait", "b")]
    keys = [r.key(backend.identity()) for r in requests]

    async def go() -> None:
        batch = asyncio.ensure_future(backend.generate(requests))
        for _ in range(1000):  # a state, not a delay: the two answered replies are in the store
            if len(store.cache_get([keys[0], keys[2]])) == 2:
                break
            await asyncio.sleep(0.001)
        assert set(store.cache_get(keys)) == {keys[0], keys[2]} and not batch.done()
        inner.release.set()
        assert [r.text for r in await batch] == ["re: a", "re: wait", "re: b"]

    asyncio.run(go())
    assert len(store.cache_get(keys)) == 3
    store.close()
