"""A request that cannot leave the machine is the caller's fault: ``client_error``, tried once, never retried
(issue 17, item 10). Config validation keeps such values out of configs; these tests feed them to a backend
directly, the way a library caller or a plugin could."""

from __future__ import annotations

import asyncio
import datetime

import respx

from agents.base import create_backend, unsendable
from agents.types import CallFailure, FailureKind, GenerationRequest, Message, Sampling
from configs.schema import ModelSpec

BASE_URL = "https://api.test/v1"


def test_unsendable_names_what_json_cannot_carry():
    assert unsendable({"temperature": 0.5, "messages": [{"role": "user", "content": "hi"}]}) is None
    assert "JSON" in (unsendable({"temperature": float("nan")}) or "")
    assert "JSON" in (unsendable({"extra": datetime.date(2024, 1, 1)}) or "")


class _Sleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_a_nan_temperature_is_a_client_error_that_is_never_retried():
    spec = ModelSpec(name="m", backend="openai", model="x", base_url=BASE_URL, max_retries=3)
    request = GenerationRequest(
        messages=(Message(role="user", content="hi"),), sampling=Sampling(temperature=float("nan"))
    )
    sleep = _Sleep()

    async def main() -> list:
        backend = create_backend(spec, sleep=sleep)
        try:
            return await backend.generate([request])
        finally:
            await backend.aclose()

    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        route = router.post("/chat/completions")
        (result,) = asyncio.run(main())
    assert isinstance(result, CallFailure) and result.failure is FailureKind.CLIENT_ERROR
    assert route.call_count == 0 and sleep.waits == []
