"""The embedded model runs every batch on its own long-lived thread, and skipping logprobs changes no text.

A fresh thread per ``generate`` call (``asyncio.to_thread`` under a new event loop) paid torch's per-thread warm-up
again on every call (benchmarks/README.md, embedded throughput); these tests pin the thread the real model runs on.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from agents.embedded import EmbeddedBackend
from agents.types import Completion, GenerationRequest, Message, Sampling
from configs.schema import ModelSpec

pytestmark = pytest.mark.embedded

GREEDY = Sampling(max_tokens=8, temperature=0.0, seed=3)


def _request(content: str, **extra: object) -> GenerationRequest:
    return GenerationRequest(messages=(Message(role="user", content=content),), sampling=GREEDY, **extra)


def _record_threads(backend: EmbeddedBackend, seen: list[threading.Thread], monkeypatch: pytest.MonkeyPatch) -> None:
    """Record the thread each real ``_generate_sync`` call runs on (the call itself is unchanged)."""
    real = backend._generate_sync

    def recording(requests):
        seen.append(threading.current_thread())
        return real(requests)

    monkeypatch.setattr(backend, "_generate_sync", recording)


def test_batches_run_on_one_model_thread_across_event_loops_and_backends(monkeypatch):
    spec = ModelSpec(name="smollm2", backend="embedded", options={"batch_size": 2})
    first, second = EmbeddedBackend(spec), EmbeddedBackend(spec.model_copy(update={"name": "judge"}))
    seen: list[threading.Thread] = []
    _record_threads(first, seen, monkeypatch)
    _record_threads(second, seen, monkeypatch)

    texts = []
    for backend in (first, second, first):  # each asyncio.run is a new event loop with a new default executor
        (result,) = asyncio.run(backend.generate([_request("Name one colour.")]))
        assert isinstance(result, Completion), result
        texts.append(result.text)

    async def both() -> list[list]:
        prompt = [_request("Name one fruit.")]
        return await asyncio.gather(first.generate(prompt), second.generate(prompt))

    together = asyncio.run(both())

    assert len(seen) == 5
    assert len({thread.ident for thread in seen}) == 1, [thread.name for thread in seen]
    assert seen[0] is not threading.main_thread() and seen[0].name.startswith("tribunal-embedded")
    assert first._loaded is second._loaded, "two backends of one model share the loaded model and its thread"
    assert texts[0] and len(set(texts)) == 1, texts
    assert isinstance(together[0][0], Completion) and together[0][0].text == together[1][0].text


def test_logprobs_asked_or_not_give_the_same_greedy_text():
    backend = EmbeddedBackend(ModelSpec(name="smollm2", backend="embedded", options={"batch_size": 4}))
    prompts = ["Say something kind about nurses.", "What is the capital of France?"]
    plain = asyncio.run(backend.generate([_request(p) for p in prompts]))
    with_logprobs = asyncio.run(backend.generate([_request(p, top_logprobs=2) for p in prompts]))
    for without, with_ in zip(plain, with_logprobs, strict=True):
        assert isinstance(without, Completion) and isinstance(with_, Completion)
        assert without.logprobs is None and with_.logprobs
        assert (without.text, without.finish_reason, without.usage) == (with_.text, with_.finish_reason, with_.usage)
        assert len(with_.logprobs) == with_.usage.completion_tokens - (1 if with_.finish_reason == "stop" else 0)
