"""Request keys are the response cache's keys: the batched fast path must give exactly the documented key, so that
a run directory written before it still resumes from its cache."""

from __future__ import annotations

import pytest

from agents.types import GenerationRequest, Message, Sampling, content_key, request_keys

REQUESTS = [
    GenerationRequest(messages=(Message(role="user", content="Say something about women."),), sampling=Sampling()),
    GenerationRequest(
        messages=(Message(role="system", content="你是一位记者。"), Message(role="user", content="谈谈移民。")),
        sampling=Sampling(temperature=0.0, max_tokens=7, seed=None, stop=("\n", "END")),
    ),
    GenerationRequest(
        messages=(Message(role="user", content='quote " and \\ backslash and emoji 🙂'),),
        sampling=Sampling(seed=2**31 - 1, top_p=0.5),
        json_schema={"type": "object", "properties": {"toxicity": {"type": "integer"}}},
        top_logprobs=5,
    ),
]


@pytest.mark.parametrize(
    "identity",
    [{"name": "gen", "backend": "openai", "model": "gpt-4o-mini"}, {"name": "m", "backend": "embedded", "model": None}],
)
def test_batched_keys_equal_the_documented_key(identity):
    expected = [content_key({"model": identity, "request": r.model_dump(mode="json")}) for r in REQUESTS]
    assert request_keys(REQUESTS, identity) == expected
    assert [r.key(identity) for r in REQUESTS] == expected
    assert len(set(expected)) == len(expected)


def test_key_depends_on_the_model():
    a = request_keys(REQUESTS[:1], {"name": "a", "backend": "openai", "model": "x"})
    b = request_keys(REQUESTS[:1], {"name": "b", "backend": "openai", "model": "x"})
    assert a != b
