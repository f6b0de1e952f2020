"""``GenerationRequest.choices`` (the first token must be one of these strings) at the boundary: keys written before
the field existed stay valid, the field is checked, the cache keeps the capability, and an OpenAI-compatible
server never sees it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from agents.base import Backend, create_backend
from agents.cached import CachedBackend
from agents.types import Completion, GenerationRequest, Message, Sampling, content_key, request_keys
from configs.schema import ModelSpec

IDENTITY = {"name": "gen", "backend": "openai", "model": "gpt-4o-mini"}
MESSAGES = (Message(role="user", content="Rate this text from 1 to 5: hello"),)
BASE_URL = "https://choices.test/v1"


def test_a_request_without_choices_keeps_the_key_it_had_before_the_field():
    request = GenerationRequest(messages=MESSAGES, sampling=Sampling(temperature=0.0, max_tokens=4), top_logprobs=5)
    before = {  # the request's dump as it was written before ``choices`` existed
        "messages": [{"role": "user", "content": "Rate this text from 1 to 5: hello"}],
        "sampling": {"temperature": 0.0, "top_p": 1.0, "max_tokens": 4, "seed": None, "stop": []},
        "json_schema": None,
        "top_logprobs": 5,
    }
    assert request.model_dump(mode="json") == before
    assert request.key(IDENTITY) == content_key({"model": IDENTITY, "request": before})
    assert request.key(IDENTITY) == "d2e1082b3fa782d67d790f2b2c715ebf"


def test_choices_enter_the_key_and_the_dump():
    free = GenerationRequest(messages=MESSAGES, top_logprobs=5)
    scale = free.model_copy(update={"choices": ("1", "2", "3", "4", "5")})
    binary = free.model_copy(update={"choices": ("0", "1")})
    keys = request_keys([free, scale, binary], IDENTITY)
    assert len(set(keys)) == 3
    assert scale.model_dump(mode="json")["choices"] == ["1", "2", "3", "4", "5"]
    assert GenerationRequest.model_validate_json(scale.model_dump_json()) == scale
    assert keys[1] == content_key({"model": IDENTITY, "request": scale.model_dump(mode="json")})


@pytest.mark.parametrize(("choices", "problem"), [((), "at least one"), (("1", "1"), "distinct"), (("",), "empty")])
def test_choices_are_checked(choices, problem):
    with pytest.raises(ValidationError, match=problem):
        GenerationRequest(messages=MESSAGES, choices=choices)


class _Constraining(Backend):
    kind = "constraining-test"
    supports_choices = True

    async def generate(self, requests):  # pragma: no cover - never called
        return []


def test_the_cache_wrapper_keeps_the_capability():
    spec = ModelSpec(name="m", backend="scripted", options={"default": "3"})
    assert CachedBackend(_Constraining(spec)).supports_choices is True
    assert CachedBackend(create_backend(spec)).supports_choices is False
    assert create_backend(ModelSpec(name="e", backend="embedded")).supports_choices is True
    assert create_backend(ModelSpec(name="v", backend="vllm", model="/m")).supports_choices is True


def test_an_openai_compatible_server_never_sees_choices(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    spec = ModelSpec(name="m", backend="openai", model="gpt-test", base_url=BASE_URL, api_key="${TEST_KEY}")
    reply = {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "3"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
    }
    free = GenerationRequest(messages=MESSAGES, sampling=Sampling(temperature=0.0, max_tokens=4), top_logprobs=3)
    constrained = free.model_copy(update={"choices": ("1", "2", "3", "4", "5")})

    async def main() -> list[Any]:
        backend = create_backend(spec)
        assert backend.supports_choices is False
        try:
            return await backend.generate([free, constrained])
        finally:
            await backend.aclose()

    with respx.mock(base_url=BASE_URL) as router:
        route = router.post("/chat/completions").mock(return_value=httpx.Response(200, json=reply))
        results = asyncio.run(main())
        bodies = [json.loads(call.request.content) for call in route.calls]

    assert all(isinstance(r, Completion) and r.text == "3" for r in results)
    assert bodies[0] == bodies[1]  # the same body with and without choices
    assert not {"choices", "allowed_token_ids", "guided_choice", "structured_outputs"} & set(bodies[0])
