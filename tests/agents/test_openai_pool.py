"""One connection pool per server (``agents.servers``) and the low-level ``post`` path of ``OpenAIBackend``.

The wire-format tests send each request through ``chat.completions.create`` with the keyword arguments tribunal
passed it before it posted bodies itself, and through the backend, both under respx, and compare the bytes. The
sharing tests use an asyncio-gated respx side effect (every request waits for the test to let it go) and wait on
states, never on time; the tests that need real sockets (event loops, kept-alive connections) use the stub server.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from openai import AsyncOpenAI

from agents import servers
from agents.openai_compat import OpenAIBackend, server_address
from agents.types import Completion, GenerationRequest, Message, Sampling
from configs.schema import ModelSpec
from tests.helpers.stub_server import Latency, StubConfig, StubServer

API_KEY = "sk-test-pool-8d1e4b7a2c9f0e3d"
OTHER_KEY = "sk-test-pool-other-1a2b3c4d5e"
COMPLETION = json.loads((Path(__file__).parent / "cassettes" / "chat_completion.json").read_text(encoding="utf-8"))
JUDGE_SCHEMA = {
    "type": "object",
    "properties": {
        "rationale": {"type": "string"},
        "toxicity": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
    },
    "required": ["rationale", "toxicity"],
    "additionalProperties": False,
}
GUARD_S = 30.0
_urls = itertools.count()


def fresh_url() -> str:
    """A base URL no other test uses: the registry is process-wide, so tests must not meet on one server."""
    return f"https://pool-{next(_urls)}.test/v1"


def make_spec(base_url: str, **overrides: Any) -> ModelSpec:
    fields: dict[str, Any] = {
        "name": "m",
        "backend": "openai",
        "model": "gpt-test",
        "base_url": base_url,
        "api_key": "${POOL_KEY}",
        "max_retries": 0,
    }
    fields.update(overrides)
    return ModelSpec(**fields)


def make_request(text: str = "Rate this reply.", **fields: Any) -> GenerationRequest:
    messages = (Message(role="system", content="You are a strict judge."), Message(role="user", content=text))
    return GenerationRequest(messages=messages, **fields)


@pytest.fixture(autouse=True)
def pool_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POOL_KEY", API_KEY)
    monkeypatch.setenv("POOL_OTHER_KEY", OTHER_KEY)


# ------------------------------------------------------------------------------------------------- wire format
def create_kwargs(spec: ModelSpec, request: GenerationRequest) -> dict[str, Any]:
    """The keyword arguments ``OpenAIBackend`` gave ``chat.completions.create`` before it posted its own bodies
    (its ``_kwargs``, verbatim): the reference the new path must match on the wire."""
    options = spec.options
    s = request.sampling
    kwargs: dict[str, Any] = {
        "model": spec.model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "temperature": s.temperature,
        "top_p": s.top_p,
        options.get("max_tokens_param", "max_tokens"): s.max_tokens,
    }
    if s.seed is not None:
        kwargs["seed"] = s.seed
    if s.stop:
        kwargs["stop"] = list(s.stop)
    if request.json_schema is not None:
        kwargs["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "reply", "schema": request.json_schema, "strict": True},
        }
    if request.top_logprobs is not None:
        kwargs["logprobs"] = True
        if request.top_logprobs > 0:
            kwargs["top_logprobs"] = request.top_logprobs
    if options.get("extra_body"):
        kwargs["extra_body"] = options["extra_body"]
    return kwargs


WIRE_CASES = {
    "defaults": ({}, {}),
    "seed-and-stop": ({}, {"sampling": Sampling(temperature=0.0, top_p=0.95, max_tokens=64, seed=7, stop=("\n\n",))}),
    "no-seed-two-stops": ({}, {"sampling": Sampling(temperature=1.0, stop=("END", "###"))}),
    "judge-json-schema": ({}, {"json_schema": JUDGE_SCHEMA, "sampling": Sampling(temperature=0.0, seed=3)}),
    "top-logprobs": ({}, {"top_logprobs": 5, "sampling": Sampling(max_tokens=1, temperature=0.0)}),
    "logprobs-chosen-only": ({}, {"top_logprobs": 0}),
    "max-completion-tokens": ({"max_tokens_param": "max_completion_tokens"}, {"sampling": Sampling(max_tokens=900)}),
    "extra-body": ({"extra_body": {"top_k": 20, "chat_template_kwargs": {"enable_thinking": False}}}, {}),
    "extra-body-overrides-a-field": ({"extra_body": {"temperature": 0.0, "repetition_penalty": 1.1}}, {}),
    "everything": (
        {"max_tokens_param": "max_completion_tokens", "extra_body": {"top_k": 5}},
        {"json_schema": JUDGE_SCHEMA, "top_logprobs": 2, "sampling": Sampling(seed=11, stop=("}",))},
    ),
}


@pytest.mark.parametrize("case", list(WIRE_CASES))
def test_posted_body_and_headers_equal_what_create_sends(case: str) -> None:
    options, fields = WIRE_CASES[case]
    url = fresh_url()
    spec = make_spec(url, options=options, timeout_s=42.0)
    request = make_request(**fields)

    async def main() -> None:
        reference = AsyncOpenAI(api_key=API_KEY, base_url=url, timeout=spec.timeout_s, max_retries=0)
        backend = OpenAIBackend(spec)
        try:
            await reference.chat.completions.create(**create_kwargs(spec, request))
            (result,) = await backend.generate([request])
            assert isinstance(result, Completion), result
        finally:
            await reference.close()
            await backend.aclose()

    with respx.mock(base_url=url) as router:
        route = router.post("/chat/completions").mock(return_value=httpx.Response(200, json=COMPLETION))
        asyncio.run(main())

    created, posted = (call.request for call in route.calls)
    assert posted.content == created.content  # byte for byte, key order included
    assert json.loads(posted.content) == json.loads(created.content)
    for header in ("content-type", "authorization", "accept", "x-stainless-read-timeout", "content-length"):
        assert posted.headers.get(header) == created.headers.get(header), header
    assert posted.headers["authorization"] == f"Bearer {API_KEY}"
    assert posted.extensions["timeout"] == created.extensions["timeout"]
    assert posted.url == created.url


def test_each_model_keeps_its_own_timeout_on_a_shared_server() -> None:
    url = fresh_url()
    quick = OpenAIBackend(make_spec(url, model="quick", timeout_s=7.0))
    patient = OpenAIBackend(make_spec(url, model="patient", timeout_s=300.0))

    async def main() -> None:
        try:
            assert quick.current_server() is patient.current_server()
            await quick.generate([make_request()])
            await patient.generate([make_request()])
        finally:
            await quick.aclose()
            await patient.aclose()

    with respx.mock(base_url=url) as router:
        route = router.post("/chat/completions").mock(return_value=httpx.Response(200, json=COMPLETION))
        asyncio.run(main())

    sent = {json.loads(c.request.content)["model"]: c.request for c in route.calls}
    assert sent["quick"].extensions["timeout"]["read"] == 7.0
    assert sent["patient"].extensions["timeout"]["read"] == 300.0
    assert sent["quick"].headers["x-stainless-read-timeout"] == "7.0"


# ------------------------------------------------------------------------------------------------ sharing
class Gate:
    """A respx side effect that holds every request until the test lets it go, counting what is in flight."""

    def __init__(self) -> None:
        self.changed = asyncio.Condition()
        self.waiting: list[asyncio.Future[None]] = []
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.peak_total = 0
        self.done = False

    @property
    def total(self) -> int:
        return sum(self.now.values())

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        model = json.loads(request.content)["model"]
        release = asyncio.get_running_loop().create_future()
        async with self.changed:
            self.now[model] += 1
            self.peak[model] = max(self.peak[model], self.now[model])
            self.peak_total = max(self.peak_total, self.total)
            self.waiting.append(release)
            self.changed.notify_all()
        await release
        async with self.changed:
            self.now[model] -= 1
        body = copy.deepcopy(COMPLETION)
        body["model"] = model
        return httpx.Response(200, json=body)

    async def wait_for(self, predicate: Any) -> None:
        """Until ``predicate()`` holds; the 30 s guard only turns a hang (a broken limiter) into a failure."""

        async def wait() -> None:
            async with self.changed:
                await self.changed.wait_for(predicate)

        await asyncio.wait_for(wait(), GUARD_S)

    async def release_all_one_by_one(self, work: asyncio.Future[Any]) -> None:
        """Let requests go one at a time, oldest first, until ``work`` is done."""

        def finished(_: Any) -> None:
            async def note() -> None:
                async with self.changed:
                    self.done = True
                    self.changed.notify_all()

            asyncio.ensure_future(note())

        work.add_done_callback(finished)
        while True:
            await self.wait_for(lambda: self.waiting or self.done)
            if self.done and not self.waiting:
                return
            self.waiting.pop(0).set_result(None)


def test_backends_on_one_server_share_one_client_and_one_limiter() -> None:
    url = fresh_url()
    a = OpenAIBackend(make_spec(url, model="a", max_concurrency=2))
    b = OpenAIBackend(make_spec(url, model="b", max_concurrency=5))

    async def main() -> tuple[Any, Any]:
        try:
            server = a.current_server()
            assert b.current_server() is server
            assert server.limit == 5  # the largest max_concurrency on the server
            await a.generate([make_request()])
            (client,) = server.clients
            await b.generate([make_request()])
            assert server.clients == (client,)  # both went through the one client
            return server, client
        finally:
            await a.aclose()
            await b.aclose()

    with respx.mock(base_url=url) as router:
        router.post("/chat/completions").mock(return_value=httpx.Response(200, json=COMPLETION))
        server, client = asyncio.run(main())
    assert server.closed and client.is_closed()


def test_in_flight_stays_within_the_server_limit_and_each_models_own() -> None:
    url = fresh_url()
    narrow = OpenAIBackend(make_spec(url, model="narrow", max_concurrency=1))
    wide = OpenAIBackend(make_spec(url, model="wide", max_concurrency=3))
    gate = Gate()

    async def main() -> list[Any]:
        try:
            work = asyncio.gather(
                narrow.generate([make_request(f"n{i}") for i in range(6)]),
                wide.generate([make_request(f"w{i}") for i in range(6)]),
            )
            await gate.wait_for(lambda: gate.total >= 3)  # the server's limit is reached...
            assert gate.now["narrow"] == 1  # ...with the narrow model at its own
            await gate.release_all_one_by_one(work)
            return [r for results in await work for r in results]
        finally:
            await narrow.aclose()
            await wide.aclose()

    with respx.mock(base_url=url) as router:
        route = router.post("/chat/completions").mock(side_effect=gate)
        results = asyncio.run(main())

    assert all(isinstance(r, Completion) for r in results)
    assert route.call_count == 12
    assert gate.peak_total == 3  # never more than the server's limit together
    assert gate.peak["narrow"] == 1  # never more than its own
    assert gate.peak["wide"] <= 3


def test_different_keys_or_urls_do_not_share() -> None:
    url, other_url = fresh_url(), fresh_url()
    first = OpenAIBackend(make_spec(url))
    same = OpenAIBackend(make_spec(url + "/"))  # the same server, written with a trailing slash
    other_key = OpenAIBackend(make_spec(url, api_key="${POOL_OTHER_KEY}"))
    other_server = OpenAIBackend(make_spec(other_url))
    backends = (first, same, other_key, other_server)

    async def main() -> None:
        try:
            assert same.current_server() is first.current_server()
            assert other_key.current_server() is not first.current_server()
            assert other_server.current_server() is not first.current_server()
            await asyncio.gather(*(b.generate([make_request()]) for b in backends))
            clients = {id(b.current_server().clients[0]) for b in backends}
            assert len(clients) == 3
        finally:
            for backend in backends:
                await backend.aclose()

    with respx.mock(assert_all_called=True) as router:
        here = router.post(f"{url}/chat/completions").mock(return_value=httpx.Response(200, json=COMPLETION))
        there = router.post(f"{other_url}/chat/completions").mock(return_value=httpx.Response(200, json=COMPLETION))
        asyncio.run(main())

    keys = Counter(c.request.headers["authorization"] for c in here.calls)
    assert keys == {f"Bearer {API_KEY}": 2, f"Bearer {OTHER_KEY}": 1}
    assert [c.request.headers["authorization"] for c in there.calls] == [f"Bearer {API_KEY}"]


def test_closing_one_keeps_the_other_working_and_the_last_closes_the_client() -> None:
    url = fresh_url()
    a = OpenAIBackend(make_spec(url, model="a"))
    b = OpenAIBackend(make_spec(url, model="b"))

    async def main() -> None:
        await a.generate([make_request()])
        await b.generate([make_request()])
        server = b.current_server()
        (client,) = server.clients
        await a.aclose()
        await a.aclose()  # closing twice is closing once
        assert not server.closed and not client.is_closed()
        (after,) = await b.generate([make_request()])
        assert isinstance(after, Completion)
        assert server.clients == (client,)
        await b.aclose()
        assert server.closed and client.is_closed()
        assert server not in servers.open_servers()

    with respx.mock(base_url=url) as router:
        route = router.post("/chat/completions").mock(return_value=httpx.Response(200, json=COMPLETION))
        asyncio.run(main())
    assert route.call_count == 3


def test_a_closed_backend_used_again_joins_again() -> None:
    url = fresh_url()
    backend = OpenAIBackend(make_spec(url))

    async def main() -> Any:
        await backend.generate([make_request()])
        first = backend.current_server()
        await backend.aclose()
        (again,) = await backend.generate([make_request()])
        assert backend.current_server() is not first and first.closed
        await backend.aclose()
        return again

    with respx.mock(base_url=url) as router:
        router.post("/chat/completions").mock(return_value=httpx.Response(200, json=COMPLETION))
        assert isinstance(asyncio.run(main()), Completion)


def test_the_limit_grows_when_a_model_with_a_larger_one_joins() -> None:
    url = fresh_url()
    small = OpenAIBackend(make_spec(url, model="small", max_concurrency=2))

    async def main() -> None:
        await small.generate([make_request()])
        server = small.current_server()
        (old,) = server.clients
        assert server.limit == 2
        large = OpenAIBackend(make_spec(url, model="large", max_concurrency=6))
        try:
            assert large.current_server() is server and server.limit == 6
            await large.generate([make_request()])
            # the client sized for 2 was replaced by one sized for 6, and closed once it had no request left
            assert old not in server.clients and old.is_closed()
            gate = Gate()
            route.mock(side_effect=gate)
            work = asyncio.gather(large.generate([make_request(f"l{i}") for i in range(8)]))
            await gate.wait_for(lambda: gate.total >= 6)
            await gate.release_all_one_by_one(work)
            assert gate.peak_total == 6
        finally:
            await small.aclose()
            await large.aclose()

    with respx.mock(base_url=url) as router:
        route = router.post("/chat/completions").mock(return_value=httpx.Response(200, json=COMPLETION))
        asyncio.run(main())


def test_a_large_limit_is_spread_over_small_pools_made_as_needed() -> None:
    # one httpx pool's CPU per request grows with its connections: 20 are spread over 10 clients of 2
    url = fresh_url()
    backend = OpenAIBackend(make_spec(url, max_concurrency=20))
    gate = Gate()

    async def main() -> None:
        try:
            await backend.generate([make_request()])
            server = backend.current_server()
            assert len(server.clients) == 1  # one request at a time needs one pool
            route.mock(side_effect=gate)
            work = asyncio.gather(backend.generate([make_request(f"r{i}") for i in range(40)]))
            await gate.wait_for(lambda: gate.total >= 20)
            assert len(server.clients) == -(-20 // servers.CONNECTIONS_PER_POOL) == 10
            await gate.release_all_one_by_one(work)
            assert gate.peak_total == 20
        finally:
            await backend.aclose()

    with respx.mock(base_url=url) as router:
        route = router.post("/chat/completions").mock(return_value=httpx.Response(200, json=COMPLETION))
        asyncio.run(main())


def test_a_given_client_is_used_unshared() -> None:
    url = fresh_url()

    async def main() -> None:
        client = AsyncOpenAI(api_key=API_KEY, base_url=url, max_retries=0)
        given = OpenAIBackend(make_spec(url), client=client)
        shared = OpenAIBackend(make_spec(url))
        try:
            assert given.current_server().clients == (client,)
            assert given.current_server() is not shared.current_server()
            assert given.current_server() not in servers.open_servers()
            await given.generate([make_request()])
        finally:
            await given.aclose()
            await shared.aclose()
        assert client.is_closed()

    with respx.mock(base_url=url) as router:
        router.post("/chat/completions").mock(return_value=httpx.Response(200, json=COMPLETION))
        asyncio.run(main())


def test_the_key_is_in_no_repr() -> None:
    url = fresh_url()
    backend = OpenAIBackend(make_spec(url))

    async def main() -> list[str]:
        try:
            server = backend.current_server()
            return [repr(server.address), repr(server), repr(backend), str(server_address(backend.spec))]
        finally:
            await backend.aclose()

    texts = asyncio.run(main())
    assert all(API_KEY not in text for text in texts)
    assert url in texts[0]


# ---------------------------------------------------------------------------------------- real sockets (stub)
def test_a_backend_works_on_two_event_loops() -> None:
    # one client kept across loops fails on the second (its kept-alive connection belongs to the closed loop)
    with StubServer() as stub:
        backend = OpenAIBackend(make_spec(stub.base_url))

        async def once() -> Any:
            (result,) = await backend.generate([make_request()])
            return result, backend.current_server()

        first, server_one = asyncio.run(once())
        second, server_two = asyncio.run(once())
        asyncio.run(backend.aclose())

    assert isinstance(first, Completion), first
    assert isinstance(second, Completion), second
    assert server_two is not server_one
    assert server_one.closed  # its loop closed its client as it shut down: no socket left to the collector
    assert not servers.is_member(server_two.address, backend)
    assert all(s.address.base_url != stub.base_url for s in servers.open_servers())


def test_backends_on_one_server_reuse_one_pools_connections() -> None:
    with StubServer() as stub:
        generator = OpenAIBackend(make_spec(stub.base_url, name="gen"))
        judges = [OpenAIBackend(make_spec(stub.base_url, name=f"judge-{i}")) for i in range(3)]

        async def main() -> None:
            try:
                for backend in (generator, *judges, generator):
                    (result,) = await backend.generate([make_request()])
                    assert isinstance(result, Completion), result
            finally:
                for backend in (generator, *judges):
                    await backend.aclose()

        asyncio.run(main())
        stats = stub.stats
    assert stats["chat_completions"] == 5
    assert stats["connections"] == 1  # five backends, one after another, one kept-alive connection


def test_the_pool_keeps_as_many_connections_alive_as_the_server_allows() -> None:
    # httpx keeps 20 alive by default: a server limit of 24 must keep all 24 for the next wave
    config = StubConfig(latency=Latency.fixed(0.05))
    with StubServer(config) as stub:
        backend = OpenAIBackend(make_spec(stub.base_url, max_concurrency=24))

        async def main() -> list[int]:
            seen = []
            try:
                for wave in range(2):
                    results = await backend.generate([make_request(f"{wave}-{i}") for i in range(24)])
                    assert all(isinstance(r, Completion) for r in results)
                    seen.append(stub.stats["connections"])
            finally:
                await backend.aclose()
            return seen

        after_first, after_second = asyncio.run(main())
    assert after_first <= 24
    assert after_second == after_first  # the second wave opened no connection: every one was kept
