"""The OpenAI-compatible backend against a mocked server (respx), with recorded chat.completion bodies.

Every test injects a fake ``sleep`` that records the waits tenacity asks for, so retries cost no time and the
back-off policy itself can be asserted.
"""

from __future__ import annotations

import asyncio
import copy
import email.utils
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from agents.base import create_backend
from agents.openai_compat import OpenAIBackend
from agents.types import CallFailure, Completion, FailureKind, GenerationRequest, Message, Sampling, TokenLogprob
from configs.loader import ConfigError
from configs.schema import ModelSpec

BASE_URL = "https://api.test/v1"
API_KEY = "sk-test-5f3a9c1e7b2d4a6f8e0c"
CASSETTES = Path(__file__).parent / "cassettes"


def cassette(name: str) -> dict[str, Any]:
    return json.loads((CASSETTES / f"{name}.json").read_text(encoding="utf-8"))


COMPLETION = cassette("chat_completion")
COMPLETION_LOGPROBS = cassette("chat_completion_logprobs")
CONTENT_FILTER = cassette("chat_completion_content_filter")
ERROR_429 = cassette("error_429")
ERROR_400 = cassette("error_400")
ERROR_500 = cassette("error_500")


def make_spec(**overrides: Any) -> ModelSpec:
    fields: dict[str, Any] = {
        "name": "m",
        "backend": "openai",
        "model": "gpt-test",
        "base_url": BASE_URL,
        "api_key": "${TEST_KEY}",
        "max_retries": 3,
        "options": {"retry_base_wait_s": 0.01},
    }
    fields.update(overrides)
    return ModelSpec(**fields)


def make_request(text: str = "Write one sentence about immigrants.", **fields: Any) -> GenerationRequest:
    messages = (Message(role="system", content="You are a helpful assistant."), Message(role="user", content=text))
    return GenerationRequest(messages=messages, **fields)


class RecordingSleep:
    """An async stand-in for asyncio.sleep that returns at once and remembers what it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def run(spec: ModelSpec, requests: list[GenerationRequest], sleep: RecordingSleep | None = None) -> list[Any]:
    sleep = sleep if sleep is not None else RecordingSleep()

    async def main() -> list[Any]:
        backend = create_backend(spec, sleep=sleep)
        try:
            return await backend.generate(requests)
        finally:
            await backend.aclose()

    return asyncio.run(main())


def run_one(spec: ModelSpec, request: GenerationRequest | None = None, sleep: RecordingSleep | None = None) -> Any:
    (result,) = run(spec, [request or make_request()], sleep)
    return result


def sent_body(route: respx.Route, index: int = 0) -> dict[str, Any]:
    return json.loads(route.calls[index].request.content)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TEST_KEY", API_KEY)
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
def chat(api: respx.MockRouter) -> respx.Route:
    return api.post("/chat/completions")


# ------------------------------------------------------------------------------------------------ success
def test_success_parses_text_finish_reason_usage_and_latency(chat: respx.Route) -> None:
    chat.mock(return_value=httpx.Response(200, json=COMPLETION))
    sleep = RecordingSleep()

    result = run_one(make_spec(), sleep=sleep)

    assert isinstance(result, Completion)
    assert result.text == "Immigrants contribute to the communities they join in many ways."
    assert result.finish_reason == "stop"
    assert result.outcome == "ok"
    assert result.usage.prompt_tokens == 19
    assert result.usage.completion_tokens == 11
    assert result.attempts == 1
    assert result.latency_s > 0
    assert result.logprobs is None
    assert sleep.waits == []
    assert chat.call_count == 1


def test_request_carries_model_messages_and_bearer_key(chat: respx.Route) -> None:
    chat.mock(return_value=httpx.Response(200, json=COMPLETION))

    run_one(make_spec())

    request = chat.calls[0].request
    assert request.url == f"{BASE_URL}/chat/completions"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    body = sent_body(chat)
    assert body["model"] == "gpt-test"
    assert body["messages"] == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Write one sentence about immigrants."},
    ]
    # tribunal asked for nothing it did not configure
    assert "response_format" not in body
    assert "logprobs" not in body
    assert "seed" not in body
    assert "stop" not in body


def test_sampling_fields_are_sent(chat: respx.Route) -> None:
    chat.mock(return_value=httpx.Response(200, json=COMPLETION))
    sampling = Sampling(temperature=0.3, top_p=0.9, max_tokens=77, seed=1234, stop=("\n\n", "END"))

    run_one(make_spec(), make_request(sampling=sampling))

    body = sent_body(chat)
    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.9
    assert body["max_tokens"] == 77
    assert body["seed"] == 1234
    assert body["stop"] == ["\n\n", "END"]


def test_max_tokens_param_and_extra_body_options(chat: respx.Route) -> None:
    chat.mock(return_value=httpx.Response(200, json=COMPLETION))
    spec = make_spec(
        options={"retry_base_wait_s": 0.01, "max_tokens_param": "max_completion_tokens", "extra_body": {"top_k": 20}}
    )

    run_one(spec, make_request(sampling=Sampling(max_tokens=55)))

    body = sent_body(chat)
    assert body["max_completion_tokens"] == 55
    assert "max_tokens" not in body
    assert body["top_k"] == 20


def test_batch_returns_one_result_per_request_in_order(chat: respx.Route) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["messages"][-1]["content"]
        body = copy.deepcopy(COMPLETION)
        body["choices"][0]["message"]["content"] = f"echo: {prompt}"
        return httpx.Response(200, json=body)

    chat.mock(side_effect=answer)

    results = run(make_spec(), [make_request(f"prompt {i}") for i in range(6)])

    assert [r.text for r in results] == [f"echo: prompt {i}" for i in range(6)]
    assert chat.call_count == 6


# ------------------------------------------------------------------------------------------------ retries
def test_429_with_retry_after_seconds_is_honoured(chat: respx.Route) -> None:
    chat.mock(
        side_effect=[
            httpx.Response(429, json=ERROR_429, headers={"Retry-After": "2"}),
            httpx.Response(200, json=COMPLETION),
        ]
    )
    sleep = RecordingSleep()

    result = run_one(make_spec(), sleep=sleep)

    assert isinstance(result, Completion)
    assert result.attempts == 2
    assert sleep.waits == [2.0]
    assert chat.call_count == 2


def test_429_with_retry_after_ms_is_honoured(chat: respx.Route) -> None:
    chat.mock(
        side_effect=[
            httpx.Response(429, json=ERROR_429, headers={"retry-after-ms": "1500", "Retry-After": "9"}),
            httpx.Response(200, json=COMPLETION),
        ]
    )
    sleep = RecordingSleep()

    result = run_one(make_spec(), sleep=sleep)

    assert isinstance(result, Completion)
    assert result.attempts == 2
    assert sleep.waits == [1.5]  # the millisecond header wins over the seconds one


def test_retry_after_as_http_date(chat: respx.Route) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    chat.mock(
        side_effect=[
            httpx.Response(429, json=ERROR_429, headers={"Retry-After": when}),
            httpx.Response(200, json=COMPLETION),
        ]
    )
    sleep = RecordingSleep()

    result = run_one(make_spec(), sleep=sleep)

    assert isinstance(result, Completion)
    assert len(sleep.waits) == 1
    assert 27.0 <= sleep.waits[0] <= 31.0


def test_retry_after_is_capped_by_retry_max_wait(chat: respx.Route) -> None:
    chat.mock(
        side_effect=[
            httpx.Response(429, json=ERROR_429, headers={"Retry-After": "3600"}),
            httpx.Response(200, json=COMPLETION),
        ]
    )
    sleep = RecordingSleep()
    spec = make_spec(options={"retry_base_wait_s": 0.01, "retry_max_wait_s": 5})

    result = run_one(spec, sleep=sleep)

    assert isinstance(result, Completion)
    assert sleep.waits == [5.0]


def test_unparseable_retry_after_falls_back_to_backoff(chat: respx.Route) -> None:
    # a proxy that sends a malformed Retry-After must not turn a rate limit into a bad_response failure
    chat.mock(
        side_effect=[
            httpx.Response(429, json=ERROR_429, headers={"Retry-After": "soon"}),
            httpx.Response(200, json=COMPLETION),
        ]
    )
    sleep = RecordingSleep()

    result = run_one(make_spec(), sleep=sleep)

    assert isinstance(result, Completion), result
    assert result.attempts == 2
    assert len(sleep.waits) == 1
    assert 0.005 <= sleep.waits[0] <= 0.01  # the first exponential back-off step of retry_base_wait_s


def test_429_until_retries_run_out_is_rate_limited(chat: respx.Route) -> None:
    chat.mock(return_value=httpx.Response(429, json=ERROR_429, headers={"Retry-After": "1"}))
    sleep = RecordingSleep()

    result = run_one(make_spec(), sleep=sleep)

    assert isinstance(result, CallFailure)
    assert result.failure is FailureKind.RATE_LIMITED
    assert result.outcome == "rate_limited"
    assert result.status_code == 429
    assert result.attempts == 4
    assert chat.call_count == 4
    assert sleep.waits == [1.0, 1.0, 1.0]


def test_500_until_retries_run_out_is_server_error(chat: respx.Route) -> None:
    chat.mock(return_value=httpx.Response(500, json=ERROR_500))
    sleep = RecordingSleep()

    result = run_one(make_spec(), sleep=sleep)

    assert isinstance(result, CallFailure)
    assert result.failure is FailureKind.SERVER_ERROR
    assert result.status_code == 500
    assert result.attempts == 4  # max_retries + 1
    assert chat.call_count == 4
    assert result.latency_s > 0
    assert "server had an error" in result.message
    # exponential back-off with jitter in [0.5, 1) of base * 2**n
    assert len(sleep.waits) == 3
    for n, wait in enumerate(sleep.waits):
        assert 0.01 * 2**n * 0.5 <= wait <= 0.01 * 2**n


def test_max_retries_zero_sends_exactly_one_request(chat: respx.Route) -> None:
    chat.mock(return_value=httpx.Response(502, text="Bad Gateway"))
    sleep = RecordingSleep()

    result = run_one(make_spec(max_retries=0), sleep=sleep)

    assert isinstance(result, CallFailure)
    assert result.failure is FailureKind.SERVER_ERROR
    assert result.status_code == 502
    assert result.attempts == 1
    assert chat.call_count == 1
    assert sleep.waits == []


def test_503_then_success(chat: respx.Route) -> None:
    chat.mock(
        side_effect=[
            httpx.Response(503, json=ERROR_500),
            httpx.Response(200, json=COMPLETION),
        ]
    )
    sleep = RecordingSleep()

    result = run_one(make_spec(), sleep=sleep)

    assert isinstance(result, Completion)
    assert result.text.startswith("Immigrants")
    assert result.attempts == 2
    assert chat.call_count == 2
    assert len(sleep.waits) == 1


@pytest.mark.parametrize("exc_type", [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.WriteTimeout])
def test_timeouts_are_retried_then_reported_as_timeout(chat: respx.Route, exc_type: type[Exception]) -> None:
    chat.mock(side_effect=exc_type("timed out"))

    result = run_one(make_spec())

    assert isinstance(result, CallFailure)
    assert result.failure is FailureKind.TIMEOUT
    assert result.status_code is None
    assert result.attempts == 4
    assert chat.call_count == 4


def test_timeout_then_success(chat: respx.Route) -> None:
    chat.mock(side_effect=[httpx.ReadTimeout("timed out"), httpx.Response(200, json=COMPLETION)])

    result = run_one(make_spec())

    assert isinstance(result, Completion)
    assert result.attempts == 2


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("[Errno 104] Connection reset by peer"),
    ],
    ids=["connect-error", "remote-protocol-error", "read-error"],
)
def test_dropped_connections_are_connection_errors(chat: respx.Route, exc: Exception) -> None:
    chat.mock(side_effect=exc)

    result = run_one(make_spec())

    assert isinstance(result, CallFailure)
    assert result.failure is FailureKind.CONNECTION_ERROR
    assert result.attempts == 4
    assert chat.call_count == 4


def test_invalid_json_body_is_bad_response_after_retries(chat: respx.Route) -> None:
    chat.mock(
        return_value=httpx.Response(
            200, content=b'{"id": "chatcmpl-1", "choices": [{"mess', headers={"content-type": "application/json"}
        )
    )

    result = run_one(make_spec())

    assert isinstance(result, CallFailure)
    assert result.failure is FailureKind.BAD_RESPONSE
    assert result.attempts == 4
    assert chat.call_count == 4


def test_html_body_with_200_is_bad_response(chat: respx.Route) -> None:
    chat.mock(
        return_value=httpx.Response(
            200, content=b"<html><body>Gateway login</body></html>", headers={"content-type": "text/html"}
        )
    )

    result = run_one(make_spec())

    assert isinstance(result, CallFailure)
    assert result.failure is FailureKind.BAD_RESPONSE


def test_no_choices_is_bad_response(chat: respx.Route) -> None:
    body = copy.deepcopy(COMPLETION)
    body["choices"] = []
    chat.mock(return_value=httpx.Response(200, json=body))

    result = run_one(make_spec())

    assert isinstance(result, CallFailure)
    assert result.failure is FailureKind.BAD_RESPONSE
    assert "no choices" in result.message
    assert result.attempts == 4


def test_bad_body_then_good_body_succeeds(chat: respx.Route) -> None:
    empty = copy.deepcopy(COMPLETION)
    empty["choices"] = []
    chat.mock(side_effect=[httpx.Response(200, json=empty), httpx.Response(200, json=COMPLETION)])

    result = run_one(make_spec())

    assert isinstance(result, Completion)
    assert result.attempts == 2


def test_null_content_without_content_filter_is_bad_response(chat: respx.Route) -> None:
    body = copy.deepcopy(COMPLETION)
    body["choices"][0]["message"]["content"] = None
    chat.mock(return_value=httpx.Response(200, json=body))

    result = run_one(make_spec())

    assert isinstance(result, CallFailure)
    assert result.failure is FailureKind.BAD_RESPONSE


def test_400_is_client_error_without_retry(chat: respx.Route) -> None:
    chat.mock(return_value=httpx.Response(400, json=ERROR_400))
    sleep = RecordingSleep()

    result = run_one(make_spec(), sleep=sleep)

    assert isinstance(result, CallFailure)
    assert result.failure is FailureKind.CLIENT_ERROR
    assert result.status_code == 400
    assert result.attempts == 1
    assert chat.call_count == 1
    assert sleep.waits == []
    assert "temperature" in result.message


def test_408_is_a_retried_timeout(chat: respx.Route) -> None:
    chat.mock(side_effect=[httpx.Response(408, text="Request Timeout"), httpx.Response(200, json=COMPLETION)])

    result = run_one(make_spec())

    assert isinstance(result, Completion)
    assert result.attempts == 2


def test_content_filter_with_null_content_is_a_completion(chat: respx.Route) -> None:
    chat.mock(return_value=httpx.Response(200, json=CONTENT_FILTER))

    result = run_one(make_spec())

    assert isinstance(result, Completion)
    assert result.finish_reason == "content_filter"
    assert result.outcome == "content_filter"
    assert result.text == ""
    assert result.attempts == 1
    assert chat.call_count == 1


def test_length_finish_reason_is_kept(chat: respx.Route) -> None:
    body = copy.deepcopy(COMPLETION)
    body["choices"][0]["finish_reason"] = "length"
    chat.mock(return_value=httpx.Response(200, json=body))

    result = run_one(make_spec())

    assert isinstance(result, Completion)
    assert result.finish_reason == "length"
    assert result.outcome == "ok"


# ------------------------------------------------------------------------------- structured output, logprobs
def test_json_schema_becomes_response_format(chat: respx.Route) -> None:
    body = copy.deepcopy(COMPLETION)
    body["choices"][0]["message"]["content"] = '{"score": 3, "reason": "mild stereotype"}'
    chat.mock(return_value=httpx.Response(200, json=body))
    schema = {
        "type": "object",
        "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 5}, "reason": {"type": "string"}},
        "required": ["score", "reason"],
        "additionalProperties": False,
    }

    result = run_one(make_spec(), make_request(json_schema=schema))

    assert isinstance(result, Completion)
    assert json.loads(result.text) == {"score": 3, "reason": "mild stereotype"}
    response_format = sent_body(chat)["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["schema"] == schema
    assert response_format["json_schema"]["strict"] is True
    assert isinstance(response_format["json_schema"]["name"], str) and response_format["json_schema"]["name"]


def test_top_logprobs_are_requested_and_parsed(chat: respx.Route) -> None:
    chat.mock(return_value=httpx.Response(200, json=COMPLETION_LOGPROBS))

    result = run_one(make_spec(), make_request(top_logprobs=3))

    body = sent_body(chat)
    assert body["logprobs"] is True
    assert body["top_logprobs"] == 3
    assert isinstance(result, Completion)
    assert result.text == "Rating: 2"
    assert result.logprobs is not None
    assert [t.token for t in result.logprobs] == ["Rating", ":", " 2"]
    assert all(isinstance(t, TokenLogprob) for t in result.logprobs)
    last = result.logprobs[-1]
    assert last.logprob == pytest.approx(-0.31326)
    assert last.top == [(" 2", pytest.approx(-0.31326)), (" 1", pytest.approx(-1.31326)), (" 3", -4.5)]
    assert all(len(t.top) == 3 for t in result.logprobs)


def test_top_logprobs_zero_asks_for_chosen_token_only(chat: respx.Route) -> None:
    body = copy.deepcopy(COMPLETION_LOGPROBS)
    for token in body["choices"][0]["logprobs"]["content"]:
        token["top_logprobs"] = []
    chat.mock(return_value=httpx.Response(200, json=body))

    result = run_one(make_spec(), make_request(top_logprobs=0))

    sent = sent_body(chat)
    assert sent["logprobs"] is True
    assert "top_logprobs" not in sent
    assert result.logprobs is not None
    assert [(t.token, t.top) for t in result.logprobs] == [("Rating", []), (":", []), (" 2", [])]


# ------------------------------------------------------------------------------------------------ secrets
def test_api_key_never_appears_in_a_failure_message(chat: respx.Route) -> None:
    def echo_credentials(request: httpx.Request) -> httpx.Response:
        # some gateways echo the credential they rejected back in the error body
        presented = request.headers["authorization"].removeprefix("Bearer ")
        return httpx.Response(
            401,
            json={
                "error": {
                    "message": f"Incorrect API key provided: {presented}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
        )

    chat.mock(side_effect=echo_credentials)

    result = run_one(make_spec())

    assert chat.calls[0].request.headers["authorization"] == f"Bearer {API_KEY}"
    assert isinstance(result, CallFailure)
    assert result.failure is FailureKind.CLIENT_ERROR
    assert result.status_code == 401
    assert result.attempts == 1
    assert "Incorrect API key provided" in result.message
    assert API_KEY not in result.message
    assert API_KEY not in result.model_dump_json()


def test_missing_api_key_env_var_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_KEY", raising=False)

    with pytest.raises(ConfigError) as info:
        OpenAIBackend(make_spec())

    message = str(info.value)
    assert "TEST_KEY" in message
    assert "api_key" in message
    assert info.value.field_path.endswith("api_key")


def test_missing_env_var_error_names_the_models_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_KEY", raising=False)

    with pytest.raises(ConfigError) as info:
        create_backend(make_spec(), config_path="exp.yaml", field_path="models[2]")

    assert str(info.value) == "exp.yaml: models[2].api_key: environment variable TEST_KEY is not set"


def test_env_var_value_is_not_in_spec_or_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_KEY", API_KEY)
    backend = OpenAIBackend(make_spec())
    try:
        assert API_KEY not in backend.spec.model_dump_json()
        assert API_KEY not in json.dumps(backend.identity())
    finally:
        asyncio.run(backend.aclose())


# ------------------------------------------------------------------------------------------------ concurrency
def test_concurrency_is_bounded_by_max_concurrency(chat: respx.Route) -> None:
    in_flight = 0
    peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.02)
        finally:
            in_flight -= 1
        return httpx.Response(200, json=COMPLETION)

    chat.mock(side_effect=slow)

    results = run(make_spec(max_concurrency=2), [make_request(f"p{i}") for i in range(10)])

    assert all(isinstance(r, Completion) for r in results)
    assert chat.call_count == 10
    assert peak == 2  # never more than 2, and the bound is actually used


def test_failures_do_not_block_other_requests_in_a_batch(chat: respx.Route) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["messages"][-1]["content"]
        if prompt == "bad":
            return httpx.Response(400, json=ERROR_400)
        return httpx.Response(200, json=COMPLETION)

    chat.mock(side_effect=answer)

    results = run(make_spec(), [make_request("good"), make_request("bad"), make_request("good")])

    assert [r.kind for r in results] == ["completion", "failure", "completion"]
    assert results[1].failure is FailureKind.CLIENT_ERROR
