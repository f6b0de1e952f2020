"""The OpenAI-compatible stub server: real clients, schema replies, every fault seen by ``OpenAIBackend``, the CLI.

Every backend test injects a recording ``sleep``, so retries cost no time and the waits tenacity was asked for
(the server's ``Retry-After``) can be asserted.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Literal

import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel, Field

from agents.openai_compat import OpenAIBackend
from agents.types import CallFailure, Completion, FailureKind, GenerationRequest, Message, Sampling
from configs.schema import ModelSpec
from tests.helpers.stub_server import FAULT_KINDS, Latency, StubConfig, StubRule, StubServer, schema_instance

ROOT = Path(__file__).resolve().parents[2]

try:
    import jsonschema
except ImportError:  # validate with the pydantic models alone
    jsonschema = None


def validate(instance: Any, schema: dict[str, Any], _cache: dict[str, Any] = {}) -> None:  # noqa: B006
    """jsonschema validation where installed (the pydantic models validate in every case)."""
    if jsonschema is None:
        return
    key = json.dumps(schema, sort_keys=True)
    if key not in _cache:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        _cache[key] = cls(schema)
    _cache[key].validate(instance)


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def spec(base_url: str, **overrides: Any) -> ModelSpec:
    fields: dict[str, Any] = {
        "name": "stub",
        "backend": "openai",
        "model": "stub-model",
        "base_url": base_url,
        "max_retries": 0,
        "timeout_s": 5.0,
        "options": {"retry_base_wait_s": 0.01},
    }
    fields.update(overrides)
    return ModelSpec(**fields)


def request(text: str = "Write one sentence about immigrants.", **fields: Any) -> GenerationRequest:
    messages = (Message(role="system", content="You are a helpful assistant."), Message(role="user", content=text))
    return GenerationRequest(messages=messages, **fields)


def generate(model: ModelSpec, requests: list[GenerationRequest], sleep: RecordingSleep | None = None) -> list[Any]:
    async def main() -> list[Any]:
        backend = OpenAIBackend(model, sleep=sleep or RecordingSleep())
        try:
            return await backend.generate(requests)
        finally:
            await backend.aclose()

    return asyncio.run(main())


def generate_in_order(model: ModelSpec, requests: list[GenerationRequest]) -> list[Any]:
    """One request at a time on one client, so that the server's seeded draws follow the list's order."""

    async def main() -> list[Any]:
        backend = OpenAIBackend(model, sleep=RecordingSleep())
        try:
            return [(await backend.generate([r]))[0] for r in requests]
        finally:
            await backend.aclose()

    return asyncio.run(main())


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


class Verdict(BaseModel):
    rationale: str = Field(min_length=3)
    toxicity: Literal[1, 2, 3, 4, 5]
    identity_attack: float = Field(ge=0, le=1)


class Span(BaseModel):
    start: int = Field(ge=0)
    end: int = Field(gt=0, lt=1000)
    label: Literal["insult", "threat"]


class Annotation(BaseModel):
    """Nested objects, arrays, $defs/$ref, optional and exclusive bounds: what pydantic emits for real schemas."""

    verdict: Verdict
    spans: list[Span] = Field(min_length=2)
    tags: list[str]
    confidence: float = Field(gt=0, lt=1)
    flagged: bool
    note: str | None = None


JUDGE_SCHEMA = {
    "type": "object",
    "properties": {
        "rationale": {"type": "string"},
        "toxicity": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
        "insult": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["rationale", "toxicity", "insult"],
    "additionalProperties": False,
}


# --------------------------------------------------------------------------------------------------- serving
def test_official_client_gets_a_valid_completion_with_logprobs() -> None:
    async def main(base_url: str) -> Any:
        async with AsyncOpenAI(base_url=base_url, api_key="not-needed", max_retries=0) as client:
            plain = await client.chat.completions.create(
                model="gpt-stub", messages=[{"role": "user", "content": "Say something about neighbours."}]
            )
            scored = await client.chat.completions.create(
                model="gpt-stub",
                messages=[{"role": "user", "content": "Reply with a single number from 1 to 5 and nothing else."}],
                logprobs=True,
                top_logprobs=5,
            )
            models = await client.models.list()
            return plain, scored, models

    with StubServer() as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        plain, scored, models = asyncio.run(main(server.base_url))
        stats = server.stats

    assert plain.object == "chat.completion" and plain.id.startswith("chatcmpl-") and plain.created > 0
    assert plain.model == "gpt-stub"
    assert plain.choices[0].message.role == "assistant"
    assert plain.choices[0].finish_reason == "stop"
    assert len(plain.choices[0].message.content.split()) > 5
    assert plain.usage.completion_tokens > 0 and plain.usage.total_tokens > plain.usage.completion_tokens
    assert plain.choices[0].logprobs is None

    assert scored.choices[0].message.content == "1"
    (token,) = scored.choices[0].logprobs.content
    assert token.token == "1" and token.logprob < 0
    assert [t.token for t in token.top_logprobs][:3] == ["1", "2", "0"]
    assert len(token.top_logprobs) == 5
    assert token.top_logprobs[0].logprob == max(t.logprob for t in token.top_logprobs)

    assert [m.id for m in models.data] == ["stub-model"]
    assert stats["chat_completions"] == 2 and stats["completions"] == 2 and stats["models"] == 1
    assert stats["replies"]["score"] == 1 and stats["replies"]["generation"] == 1
    assert stats["faults_total"] == 0


def test_binds_loopback_only_and_serves_stats_over_http() -> None:
    with StubServer() as server:
        assert server._server is not None
        assert {s.getsockname()[0] for s in server._server.sockets} == {"127.0.0.1"}
        assert get_json(f"{server.url}/health") == {"status": "ok"}
        stats = get_json(f"{server.url}/stats")
        assert stats["requests"] == 2 and stats["faults"] == dict.fromkeys(FAULT_KINDS, 0)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{server.url}/v1/nope", timeout=5)
        assert info.value.code == 404
        assert json.loads(info.value.read())["error"]["code"] == "unknown_url"


def test_keep_alive_pipelining_answers_in_order_and_rejects_bad_bodies() -> None:
    def raw(body: bytes) -> bytes:
        return (
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )

    def message(text: str) -> bytes:
        return json.dumps({"model": "m", "messages": [{"role": "user", "content": text}]}).encode()

    rules = [StubRule(r"^alpha$", "A"), StubRule(r"^beta$", "B")]
    config = StubConfig(rules=rules, latency=Latency.uniform(0.0, 0.01))
    with StubServer(config) as server, socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(raw(message("alpha")) + raw(b"{not json") + raw(message("beta")))
        reader = sock.makefile("rb")
        replies = []
        for _ in range(3):
            status = int(reader.readline().split()[1])
            headers = {}
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            replies.append((status, json.loads(reader.read(int(headers["content-length"])))))
        reader.close()

    assert [status for status, _ in replies] == [200, 400, 200]
    assert replies[0][1]["choices"][0]["message"]["content"] == "A"
    assert replies[1][1]["error"]["type"] == "invalid_request_error"
    assert replies[2][1]["choices"][0]["message"]["content"] == "B"


# ---------------------------------------------------------------------------------------------------- replies
def test_rules_then_builtin_generation_critique_score_and_rewrite() -> None:
    seen: list[dict[str, Any]] = []

    def callable_reply(body: dict[str, Any]) -> str | None:
        seen.append(body)
        return None if "pass" in body["messages"][-1]["content"] else f"called with {len(body['messages'])}"

    rules = [StubRule("canned", "Canned: {last}"), StubRule("callable", callable_reply)]
    texts = [
        "canned please",
        "callable please",
        "callable pass",
        "Give your feedback in at most five sentences.",
        "An outside evaluator gave this feedback: be kind. Rewrite your previous answer.",
        'Rate "toxicity". Reply with a single number from 0 to 10 and nothing else.',
    ]
    with StubServer(StubConfig(rules=rules)) as server:
        results = generate(spec(server.base_url), [request(t) for t in texts])
        replies = server.stats["replies"]

    out = [r.text for r in results]
    assert out[0] == "Canned: canned please"
    assert out[1] == "called with 2"
    assert "individual" in out[2] or "respect" in out[2] or "group" in out[2] or "Communities" in out[2]
    assert "rewrite" in out[3].lower() or "replace" in out[3].lower()
    assert "feedback" not in out[4].lower() and out[4] != out[3]
    assert out[5] == "0"
    assert len(seen) == 2 and seen[0]["model"] == "stub-model"
    assert replies == {"rule": 2, "json": 0, "score": 1, "critique": 1, "generation": 2}


def test_replies_are_deterministic_given_content_and_seed() -> None:
    prompts = [request(f"Write about group number {i}.") for i in range(12)]
    runs = []
    for seed in (1, 1, 2):
        with StubServer(StubConfig(seed=seed)) as server:
            runs.append([r.text for r in generate(spec(server.base_url), prompts)])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert len(set(runs[0])) > 1


def test_max_tokens_cuts_the_reply_with_finish_length() -> None:
    with StubServer() as server:
        (result,) = generate(spec(server.base_url), [request(sampling=Sampling(max_tokens=3))])
    assert isinstance(result, Completion) and result.finish_reason == "length"
    assert len(result.text.split()) == 3 and result.usage.completion_tokens == 3


@pytest.mark.parametrize("vary", [False, True])
def test_json_schema_replies_validate_against_the_requested_schema(vary: bool) -> None:
    schemas = [JUDGE_SCHEMA, Verdict.model_json_schema(), Annotation.model_json_schema()]
    requests = [request(f"Rate text {i}.", json_schema=s) for i in range(8) for s in schemas]
    with StubServer(StubConfig(vary_json=vary)) as server:
        results = generate(spec(server.base_url), requests)
        assert server.stats["replies"]["json"] == len(requests)

    values = set()
    for req, result in zip(requests, results, strict=True):
        assert isinstance(result, Completion), result
        instance = json.loads(result.text)
        validate(instance, req.json_schema)
        if req.json_schema == JUDGE_SCHEMA:
            assert set(instance) == {"rationale", "toxicity", "insult"}
            values.add(instance["toxicity"])
        elif req.json_schema == Verdict.model_json_schema():
            Verdict.model_validate(instance)
        else:
            Annotation.model_validate(instance)
    assert (len(values) > 1) == vary  # first enum value unless varied
    if not vary:
        assert values == {1}


def test_schema_instance_covers_common_keywords() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "exclusiveMinimum": 3, "maximum": 9, "multipleOf": 2},
            "x": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "neg": {"type": "number", "maximum": -5},
            "s": {"type": "string", "minLength": 10, "maxLength": 12},
            "when": {"type": "string", "format": "date-time"},
            "c": {"const": "fixed"},
            "maybe": {"type": ["null", "integer"], "minimum": 2},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}], "minItems": 2},
            "any": {"anyOf": [{"type": "null"}, {"type": "string", "enum": ["b", "c"]}]},
            "all": {"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]}]},
            "optional": {"type": "string"},
        },
        "required": ["n", "x", "neg", "s", "when", "c", "maybe", "pair", "any", "all"],
    }
    plain = schema_instance(schema)
    assert plain == {
        "n": 4,
        "x": 0.5,
        "neg": -5.0,
        "s": "stubxxxxxx",
        "when": "2024-01-01T00:00:00Z",
        "c": "fixed",
        "maybe": 2,
        "pair": ["stub", False],
        "any": "b",
        "all": {"a": 0},
    }
    rng = random.Random(3)
    for _ in range(30):
        instance = schema_instance(schema, rng)
        validate(instance, schema)
        assert 0 < instance["x"] < 1 and 4 <= instance["n"] <= 9


# ------------------------------------------------------------------------------------------------------ faults
EXPECTED = {
    "500": FailureKind.SERVER_ERROR,
    "503": FailureKind.SERVER_ERROR,
    "timeout": FailureKind.TIMEOUT,
    "drop": FailureKind.CONNECTION_ERROR,
    # the body is cut at the transport level: httpx raises RemoteProtocolError, which the openai client wraps as
    # APIConnectionError, so OpenAIBackend reports connection_error (a cut-off *complete* body is "malformed")
    "truncate": FailureKind.CONNECTION_ERROR,
    "malformed": FailureKind.BAD_RESPONSE,
    "429": FailureKind.RATE_LIMITED,
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_each_fault_is_the_right_typed_failure_after_retries(kind: str) -> None:
    sleep = RecordingSleep()
    config = StubConfig(faults={kind: 1.0}, hang_s=10.0, retry_after_s=0.25)
    with StubServer(config) as server:
        started = time.perf_counter()
        (result,) = generate(spec(server.base_url, max_retries=2, timeout_s=0.3), [request()], sleep)
        elapsed = time.perf_counter() - started
        stats = server.stats
    assert isinstance(result, CallFailure), result
    assert result.failure == EXPECTED[kind]
    assert result.attempts == 3 and len(sleep.waits) == 2
    assert stats["faults"][kind] == 3 and stats["faults_total"] == 3 and stats["chat_completions"] == 3
    assert elapsed < 3.0  # a timeout fault holds only until the client gives up
    if kind == "429":
        assert result.status_code == 429 and sleep.waits == [0.25, 0.25]


@pytest.mark.parametrize(("retry_after", "with_ms"), [(1.5, True), (0.75, False), (2, False)])
def test_429_retry_after_is_honoured_then_succeeds(retry_after: float, with_ms: bool) -> None:
    sleep = RecordingSleep()
    config = StubConfig(script=["429", "429", "ok"], retry_after_s=retry_after, retry_after_ms=with_ms)
    with StubServer(config) as server:
        (result,) = generate(spec(server.base_url, max_retries=3), [request()], sleep)
        assert server.stats["faults"]["429"] == 2 and server.stats["status"] == {"429": 2, "200": 1}
    assert isinstance(result, Completion) and result.attempts == 3
    assert sleep.waits == [retry_after, retry_after]


def test_retried_success_after_server_errors_and_drops() -> None:
    sleep = RecordingSleep()
    config = StubConfig(script=["500", "drop", "503", "malformed", "ok"])
    with StubServer(config) as server:
        (result,) = generate(spec(server.base_url, max_retries=4), [request()], sleep)
    assert isinstance(result, Completion) and result.attempts == 5 and len(sleep.waits) == 4


def test_content_filter_prose_and_length_are_completions() -> None:
    config = StubConfig(script=["content_filter", "prose", "length", "prose"])
    requests = [request(), request(json_schema=JUDGE_SCHEMA), request(), request()]
    with StubServer(config) as server:
        results = generate_in_order(spec(server.base_url), requests)
        faults = server.stats["faults"]
    filtered, prose, cut, plain = results
    assert isinstance(filtered, Completion) and filtered.outcome == "content_filter" and filtered.text == ""
    assert isinstance(prose, Completion) and prose.outcome == "ok"
    with pytest.raises(json.JSONDecodeError):
        json.loads(prose.text)
    assert cut.finish_reason == "length" and cut.text
    assert plain.finish_reason == "stop"  # prose only applies to a request for JSON
    assert faults == {**dict.fromkeys(FAULT_KINDS, 0), "content_filter": 1, "prose": 1, "length": 1}


def test_fault_counters_equal_the_failures_observed() -> None:
    rates = {**StubConfig.spread(0.45, [k for k in FAULT_KINDS if k != "prose"]), "prose": 0.1}  # half ask JSON
    config = StubConfig(seed=11, faults=rates, hang_s=10.0)
    requests = [request(f"text {i}", json_schema=JUDGE_SCHEMA if i % 2 else None) for i in range(160)]
    with StubServer(config) as server:  # the client shares this process (and its GIL): leave it time to connect
        results = generate(spec(server.base_url, timeout_s=1.5, max_concurrency=40), requests)
        stats = server.stats

    observed: dict[str, int] = {}
    for req, result in zip(requests, results, strict=True):
        if isinstance(result, CallFailure):
            key = result.failure.value
        elif result.finish_reason in ("content_filter", "length"):
            key = result.finish_reason
        elif req.json_schema is not None and not result.text.startswith("{"):
            key = "prose"
        else:
            key = "ok"
        observed[key] = observed.get(key, 0) + 1
    faults = stats["faults"]
    assert faults["prose"] > 0 and faults["timeout"] > 0 and faults["truncate"] > 0
    assert observed.get("rate_limited", 0) == faults["429"]
    assert observed.get("server_error", 0) == faults["500"] + faults["503"]
    assert observed.get("timeout", 0) == faults["timeout"]
    assert observed.get("connection_error", 0) == faults["drop"] + faults["truncate"]
    assert observed.get("bad_response", 0) == faults["malformed"]
    assert observed.get("content_filter", 0) == faults["content_filter"]
    assert observed.get("length", 0) == faults["length"]
    assert observed.get("prose", 0) == faults["prose"]
    assert sum(observed.values()) - observed.get("ok", 0) == stats["faults_total"]
    assert stats["chat_completions"] == 160


def test_fault_sequence_is_seeded() -> None:
    def sequence(seed: int) -> list[str]:
        config = StubConfig(seed=seed, faults={"429": 0.2, "500": 0.2, "content_filter": 0.2})
        with StubServer(config) as server:
            return [r.outcome for r in generate_in_order(spec(server.base_url), [request()] * 30)]

    first = sequence(5)
    assert first == sequence(5)
    assert first != sequence(6)
    assert {"ok", "rate_limited", "server_error", "content_filter"} <= set(first)


def test_latency_distributions() -> None:
    rng = random.Random(0)
    assert Latency.parse("0.02").sample(rng) == 0.02
    uniform = [Latency.parse("uniform:0.01,0.03").sample(rng) for _ in range(2000)]
    assert min(uniform) >= 0.01 and max(uniform) <= 0.03
    lognormal = [Latency.parse("lognormal:0.05,0.8").sample(rng) for _ in range(20000)]
    assert abs(sum(lognormal) / len(lognormal) - 0.05) < 0.005  # parameterised by its mean
    assert max(lognormal) > 0.2  # a heavy tail
    with pytest.raises(ValueError):
        Latency.parse("gamma:1,2")
    with pytest.raises(ValueError):
        StubConfig(faults={"418": 0.1})


def test_200_concurrent_requests_through_the_backend_all_succeed() -> None:
    config = StubConfig(latency=Latency.fixed(0.02))
    requests = [request(f"Write about person {i}.") for i in range(200)]
    with StubServer(config) as server:
        results = generate(spec(server.base_url, max_concurrency=200), requests)
        stats = server.stats
    assert all(isinstance(r, Completion) and r.outcome == "ok" for r in results)
    assert stats["completions"] == 200 and stats["faults_total"] == 0
    assert stats["peak_open_connections"] >= 100  # concurrent, not one keep-alive connection in turn


# --------------------------------------------------------------------------------------------------------- CLI
def test_cli_subprocess_prints_url_serves_and_exits_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.stub_server", "--port", "0", "--latency", "0.001", "--fault", "500=0.0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", line), line
        (result,) = generate(spec(line), [request()])
        assert isinstance(result, Completion) and result.outcome == "ok"
        assert get_json(line.removesuffix("/v1") + "/stats")["completions"] == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert json.loads(process.stderr.read().strip().splitlines()[-1])["completions"] == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
