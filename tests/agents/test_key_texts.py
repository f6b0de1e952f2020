"""The keys and stored texts that tribunal writes directly (issue #19) equal the plain computation, byte for byte.

Each fast path (request keys, rating keys, generation keys, a generation's stored messages and params) is compared
with the documented formula (``content_key`` of the payload, ``json.dumps`` of the pydantic dump) on random
inputs: unicode, escapes, control characters, line and paragraph separators, quotes and backslashes, empty strings,
choices, schemas and sampling values of every kind, including the values the fast paths hand to the exact path
(a set or a NaN in a schema, an int temperature set through ``model_copy``).
"""

from __future__ import annotations

import json
import random

import pytest

from agents.types import GenerationRequest, Message, Sampling, content_key, request_keys
from graphs.records import generation_key
from graphs.store import messages_json, params_json
from raters.types import RaterIdentity, rating_key

ALPHABET = 'aZ "\\/\n\t\x00\x1f\x7féü你🙂\u2028\u2029{},:'  # escapes, controls, separators, non-BMP


def text(rng: random.Random, longest: int = 40) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, longest)))


def schema(rng: random.Random) -> object:
    kind = rng.randrange(6)
    if kind == 0:
        return None
    if kind == 1:
        return {"type": "object", "properties": {text(rng, 5): {"type": "integer", "minimum": 1, "maximum": 5}}}
    if kind == 2:
        return {"b": [1, 2.5, -0.0, True, None, text(rng, 5)], "a": {"z": 1e300, "é": "ü"}, "n": 2**70}
    if kind == 3:
        return {"a": (1, 2), "b": [{"c": ()}]}  # tuples dump as lists on both paths
    if kind == 4:
        return rng.choice([{"values": {3, 1}}, {"x": float("nan"), "y": float("inf")}])  # not plain JSON
    # keys that pydantic's dump turns into strings ("2", "None"), which then sort differently: the exact path
    return rng.choice([{"a": {2: "x", 10: "y"}}, {"a": [{None: 1}]}, {"a": ({1.5: 1, "b": 2},)}, {"a": {True: 1}}])


def request(rng: random.Random) -> GenerationRequest:
    roles = ["system", "user", "assistant"]
    messages = tuple(Message(role=rng.choice(roles), content=text(rng)) for _ in range(rng.randint(1, 4)))
    sampling = Sampling(
        temperature=rng.choice([0.0, 0.7, 1.0, 1e-7, 2.0]),
        top_p=rng.choice([1.0, 0.95, 0.5]),
        max_tokens=rng.choice([1, 64, 4096]),
        seed=rng.choice([None, 0, 7, 2**31 - 1, 2**40]),
        stop=tuple(text(rng, 4) for _ in range(rng.randint(0, 2))),
    )
    if rng.random() < 0.2:  # model_copy does not validate: an int where a float is declared
        sampling = sampling.model_copy(update={"temperature": 1})
    choices = rng.choice([None, ("1", "2", "3"), ("0", "1"), ("é", "🙂")])
    return GenerationRequest(
        messages=messages,
        sampling=sampling,
        json_schema=schema(rng),
        top_logprobs=rng.choice([None, 0, 5, 20]),
        choices=choices,
    )


IDENTITIES = [
    {"name": "gen", "backend": "openai", "model": "gpt-4o-mini", "base_url": "http://127.0.0.1:8000/v1"},
    {"name": "m", "backend": "embedded", "model": None},
    {"name": "ü", "backend": "scripted", "model": "scripted:ü", "options": {"rules": [{"match": "."}]}},
]


@pytest.mark.parametrize("seed", range(4))
def test_request_keys_equal_the_documented_key(seed: int) -> None:
    rng = random.Random(seed)
    requests = [request(rng) for _ in range(300)]
    for identity in IDENTITIES:
        expected = [content_key({"model": identity, "request": r.model_dump(mode="json")}) for r in requests]
        assert request_keys(requests, identity) == expected
    assert len({r.key(IDENTITIES[0]) for r in requests}) == len(
        {json.dumps(r.model_dump(mode="json")) for r in requests}
    )


def test_a_request_that_cannot_be_keyed_fails_the_same_way() -> None:
    lone = GenerationRequest(messages=(Message(role="user", content="half a pair \ud800"),))
    with pytest.raises(UnicodeEncodeError):
        content_key({"model": IDENTITIES[0], "request": lone.model_dump(mode="json")})
    with pytest.raises(UnicodeEncodeError):
        request_keys([lone], IDENTITIES[0])


def test_rating_and_generation_keys_equal_the_documented_key() -> None:
    rng = random.Random(11)
    rater = RaterIdentity(
        name="judge", kind="llm", model="openai:x", rubric="toxicity", rubric_version="1", settings="ab"
    )
    for _ in range(500):
        item, dimension, label = text(rng), text(rng, 10), text(rng, 20)
        assert rating_key(item, rater, dimension) == content_key(
            {"item": item, "rater": str(rater), "dimension": dimension}
        )
        assert rating_key(item, label, dimension) == content_key({"item": item, "rater": label, "dimension": dimension})
        round_ = rng.randrange(5)
        assert generation_key(item, round_) == content_key({"cell": item, "round": round_})
        assert generation_key(item, round_, None) == generation_key(item, round_)
        assert generation_key(item, round_, label) == content_key({"cell": item, "round": round_, "rewriter": label})


def test_stored_messages_and_params_equal_json_dumps() -> None:
    rng = random.Random(5)
    for _ in range(500):
        r = request(rng)
        assert messages_json(r.messages) == json.dumps([m.model_dump() for m in r.messages], ensure_ascii=False)
        assert params_json(r.sampling) == json.dumps(r.sampling.model_dump(mode="json"))
    assert messages_json(()) == "[]"


def test_a_batch_sharing_one_schema_is_keyed_by_its_content_at_each_call() -> None:
    properties = {"toxicity": {"type": "integer", "minimum": 1, "maximum": 5}}
    schema = {"type": "object", "properties": properties, "required": ["toxicity"]}
    system = Message(role="system", content="You rate texts. " * 50)
    batch = [
        GenerationRequest(messages=(system, Message(role="user", content=f"text {i}")), json_schema=schema)
        for i in range(5)
    ]  # each request holds its own copy of the schema dict, sharing its values
    identity = IDENTITIES[0]

    def documented() -> list[str]:
        return [content_key({"model": identity, "request": r.model_dump(mode="json")}) for r in batch]

    first = request_keys(batch, identity)
    assert first == documented()
    properties["toxicity"]["maximum"] = 7  # the shared value changes between two calls
    assert request_keys(batch, identity) == documented() != first
