"""A content-addressed response cache in front of any backend.

A call's key is a hash of the model's identity and the full request (messages, sampling parameters including the
seed, schema, logprobs), so the same call always has the same key. Completed replies go to the run directory's
store as they arrive: each request to a server backend (``openai``, ``langchain``: each request is its own call)
is sent on its own and its reply handed to the cache the moment it returns, while the rest of the batch is still
out; a backend that answers a batch at once (vLLM offline, the embedded model) hands over the batch's replies
when it returns. A run killed at any point and started again gets every completed call back from the cache
instead of paying for it twice; only calls in flight at the kill are repeated. Failures are never cached. A
reply served from the cache reports ``attempts == 0`` (no call was made).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from agents.base import Backend, GenerationOutput
from agents.types import Completion, GenerationRequest, request_keys


class ResponseCache(Protocol):
    def cache_get(self, keys: Sequence[str]) -> dict[str, str]: ...

    def cache_put(self, entries: Sequence[tuple[str, str]]) -> None: ...


#: Backend kinds whose requests are independent calls to a server; a backend class may also say so itself with
#: ``answers_each_request = True``.
PER_REQUEST_KINDS = frozenset({"openai", "langchain"})


class CachedBackend(Backend):
    """Wraps ``inner``; asks it only for requests whose replies are not cached yet.

    Tokens and cost count the calls actually made through it (cache hits are free), also with no cache attached.
    """

    def __init__(self, inner: Backend, cache: ResponseCache | None = None) -> None:
        super().__init__(inner.spec)
        self.inner = inner
        self.cache = cache
        self.kind = inner.kind
        self.description = inner.description
        self.supports_json_schema = inner.supports_json_schema
        self.supports_logprobs = inner.supports_logprobs
        self.supports_choices = inner.supports_choices
        self.hits = 0
        self.misses = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.per_request = bool(getattr(inner, "answers_each_request", inner.kind in PER_REQUEST_KINDS))

    @property
    def cost_usd(self) -> float:
        """Estimated cost of the calls actually made (cache hits are free), from the model's ``price``."""
        price = self.spec.price
        if price is None:
            return 0.0
        return (self.prompt_tokens * price.prompt + self.completion_tokens * price.completion) / 1e6

    def _count(self, replies: Sequence[GenerationOutput]) -> None:
        for reply in replies:
            if isinstance(reply, Completion):
                self.prompt_tokens += reply.usage.prompt_tokens or 0
                self.completion_tokens += reply.usage.completion_tokens or 0

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutput]:
        if self.cache is None:
            replies = await self.inner.generate(requests)
            self._count(replies)
            return replies
        keys = request_keys(requests, self.identity())
        stored = self.cache.cache_get(list(dict.fromkeys(keys)))
        results: list[GenerationOutput | None] = [None] * len(requests)
        missing: list[int] = []
        for index, key in enumerate(keys):
            if key in stored:
                hit = Completion.model_validate_json(stored[key])
                hit.attempts = 0
                results[index] = hit
                self.hits += 1
            else:
                missing.append(index)
        if missing:
            self.misses += len(missing)
            cache = self.cache

            def arrived(indices: Sequence[int], replies: Sequence[GenerationOutput]) -> None:
                self._count(replies)
                fresh = []
                for index, reply in zip(indices, replies, strict=True):
                    results[index] = reply
                    if isinstance(reply, Completion):
                        fresh.append((keys[index], reply.model_dump_json()))
                cache.cache_put(fresh)

            if self.per_request and len(missing) > 1:

                async def one(index: int) -> None:
                    arrived([index], await self.inner.generate([requests[index]]))

                await asyncio.gather(*(one(i) for i in missing))
            else:
                arrived(missing, await self.inner.generate([requests[i] for i in missing]))
        return [r for r in results if r is not None]

    async def aclose(self) -> None:
        await self.inner.aclose()
