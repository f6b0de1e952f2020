"""The LangChain adapter: any BaseChatModel as a tribunal backend, with fake chat models standing in for real ones."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from agents.base import create_backend
from agents.langchain_adapter import LangChainBackend, to_langchain
from agents.types import CallFailure, Completion, FailureKind, GenerationRequest, Message, Sampling
from configs.loader import ConfigError
from configs.schema import ModelSpec

THIS_MODULE = "tests.agents.test_langchain_adapter"


class RecordingChat(BaseChatModel):
    """A chat model that records every call it gets and answers with ``reply`` after ``delay_s``."""

    reply: str = "recorded reply"
    delay_s: float = 0.0
    fail_with: str | None = None
    finish_reason: str = "stop"
    temperature: float | None = None
    max_tokens: int | None = None
    received: list[dict[str, Any]] = Field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _result(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> ChatResult:
        self.received.append({"messages": list(messages), "stop": stop, "kwargs": dict(kwargs)})
        if self.fail_with:
            raise RuntimeError(self.fail_with)
        message = AIMessage(
            content=self.reply,
            response_metadata={"finish_reason": self.finish_reason},
            usage_metadata={"input_tokens": 12, "output_tokens": 3, "total_tokens": 15},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[override]
        return self._result(messages, stop, kwargs)

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[override]
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
            return self._result(messages, stop, kwargs)
        finally:
            self.in_flight -= 1


class NotAChatModel:
    def __init__(self, **_: Any) -> None:
        pass


def make_spec(**overrides: Any) -> ModelSpec:
    fields: dict[str, Any] = {
        "name": "lc",
        "backend": "langchain",
        "options": {"class": f"{THIS_MODULE}:RecordingChat"},
        "timeout_s": 5.0,
    }
    fields.update(overrides)
    return ModelSpec(**fields)


def make_request(**fields: Any) -> GenerationRequest:
    messages = (
        Message(role="system", content="You are a talk show host."),
        Message(role="user", content="Say something about nurses."),
        Message(role="assistant", content="Nurses keep hospitals running."),
        Message(role="user", content="Say more."),
    )
    return GenerationRequest(messages=messages, **fields)


def generate(backend: LangChainBackend, requests: list[GenerationRequest]) -> list[Any]:
    return asyncio.run(backend.generate(requests))


def test_messages_are_converted_with_their_roles() -> None:
    converted = to_langchain(make_request())

    assert [type(m) for m in converted] == [SystemMessage, HumanMessage, AIMessage, HumanMessage]
    assert [m.content for m in converted] == [
        "You are a talk show host.",
        "Say something about nurses.",
        "Nurses keep hospitals running.",
        "Say more.",
    ]


def test_the_model_receives_the_conversation_and_its_reply_comes_back() -> None:
    model = RecordingChat(reply="Nurses are underpaid heroes.")
    backend = LangChainBackend(make_spec(), chat_model=model)

    (result,) = generate(backend, [make_request()])

    assert isinstance(result, Completion)
    assert result.text == "Nurses are underpaid heroes."
    assert result.finish_reason == "stop"
    assert result.usage.prompt_tokens == 12
    assert result.usage.completion_tokens == 3
    assert result.latency_s > 0
    (call,) = model.received
    assert [(m.type, m.content) for m in call["messages"]] == [
        ("system", "You are a talk show host."),
        ("human", "Say something about nurses."),
        ("ai", "Nurses keep hospitals running."),
        ("human", "Say more."),
    ]


def test_sampling_is_bound_where_the_model_accepts_it() -> None:
    model = RecordingChat()
    backend = LangChainBackend(make_spec(), chat_model=model)
    sampling = Sampling(temperature=0.2, max_tokens=40, stop=("\n\n",))

    generate(backend, [make_request(sampling=sampling)])

    (call,) = model.received
    assert call["stop"] == ["\n\n"]
    assert call["kwargs"]["temperature"] == 0.2
    assert call["kwargs"]["max_tokens"] == 40


def test_finish_reason_from_response_metadata() -> None:
    backend = LangChainBackend(make_spec(), chat_model=RecordingChat(finish_reason="length"))

    (result,) = generate(backend, [make_request()])

    assert result.finish_reason == "length"


def test_generic_fake_chat_model_replies_in_order() -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage(content="first"), AIMessage(content="second")]))
    backend = LangChainBackend(make_spec(), chat_model=model)

    async def main() -> list[Any]:
        first = await backend.generate([make_request()])
        second = await backend.generate([make_request()])
        return first + second

    results = asyncio.run(main())

    assert [r.text for r in results] == ["first", "second"]
    assert all(isinstance(r, Completion) for r in results)


def test_fake_list_chat_model_without_sampling_fields() -> None:
    model = FakeListChatModel(responses=["a reply"])
    backend = LangChainBackend(make_spec(), chat_model=model)

    (result,) = generate(backend, [make_request(sampling=Sampling(stop=("END",)))])

    assert isinstance(result, Completion)
    assert result.text == "a reply"
    assert result.usage.prompt_tokens is None


def test_list_content_is_joined_as_text() -> None:
    content = [{"type": "text", "text": "Hello "}, "there", {"type": "text", "text": "!"}]
    model = GenericFakeChatModel(messages=iter([AIMessage(content=content)]))
    backend = LangChainBackend(make_spec(), chat_model=model)

    (result,) = generate(backend, [make_request()])

    assert result.text == "Hello there!"


def test_a_model_that_raises_is_a_server_error() -> None:
    backend = LangChainBackend(make_spec(), chat_model=RecordingChat(fail_with="upstream exploded"))

    (result,) = generate(backend, [make_request()])

    assert isinstance(result, CallFailure)
    assert result.failure is FailureKind.SERVER_ERROR
    assert "RuntimeError" in result.message
    assert "upstream exploded" in result.message


def test_a_slow_model_times_out() -> None:
    backend = LangChainBackend(make_spec(timeout_s=0.05), chat_model=RecordingChat(delay_s=5.0))

    (result,) = generate(backend, [make_request()])

    assert isinstance(result, CallFailure)
    assert result.failure is FailureKind.TIMEOUT
    assert result.outcome == "timeout"
    assert 0.04 <= result.latency_s < 2.0


def test_one_failure_does_not_spoil_the_batch() -> None:
    class PickyChat(RecordingChat):
        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[override]
            if "fail" in messages[-1].content:
                raise ValueError("refused by upstream")
            return self._result(messages, stop, kwargs)

    backend = LangChainBackend(make_spec(), chat_model=PickyChat(reply="fine"))
    requests = [
        GenerationRequest(messages=(Message(role="user", content=text),)) for text in ["ok", "please fail", "ok"]
    ]

    results = generate(backend, requests)

    assert [r.kind for r in results] == ["completion", "failure", "completion"]
    assert results[1].failure is FailureKind.SERVER_ERROR


def test_concurrency_is_bounded() -> None:
    model = RecordingChat(delay_s=0.02)
    backend = LangChainBackend(make_spec(max_concurrency=3), chat_model=model)

    results = generate(backend, [make_request() for _ in range(10)])

    assert all(isinstance(r, Completion) for r in results)
    assert len(model.received) == 10
    assert model.peak_in_flight == 3


# --------------------------------------------------------------------------------------- built from a config
def test_built_from_options_class_with_kwargs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LC_TEST_REPLY", "reply from the environment")
    spec = make_spec(
        options={
            "class": f"{THIS_MODULE}:RecordingChat",
            "kwargs": {"reply": "${LC_TEST_REPLY}", "finish_reason": "length"},
        }
    )

    backend = create_backend(spec)
    (result,) = generate(backend, [make_request()])

    assert isinstance(backend, LangChainBackend)
    assert isinstance(result, Completion)
    assert result.text == "reply from the environment"
    assert result.finish_reason == "length"


def test_missing_env_var_in_kwargs_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LC_TEST_REPLY", raising=False)
    spec = make_spec(options={"class": f"{THIS_MODULE}:RecordingChat", "kwargs": {"reply": "${LC_TEST_REPLY}"}})

    with pytest.raises(ConfigError) as info:
        create_backend(spec)

    assert "LC_TEST_REPLY" in str(info.value)
    assert "kwargs.reply" in str(info.value)


@pytest.mark.parametrize(
    "target",
    [f"{THIS_MODULE}:NoSuchChat", "no_such_package_for_tribunal.chat:Chat", f"{THIS_MODULE}"],
    ids=["missing-class", "missing-module", "no-colon"],
)
def test_bad_class_path_is_a_value_error_naming_it(target: str) -> None:
    with pytest.raises(ValueError) as info:
        create_backend(make_spec(options={"class": target}))

    assert repr(target) in str(info.value)
    assert "options.class" in str(info.value)


def test_class_that_is_not_a_chat_model_is_rejected() -> None:
    target = f"{THIS_MODULE}:NotAChatModel"

    with pytest.raises(ValueError, match="not a LangChain BaseChatModel") as info:
        create_backend(make_spec(options={"class": target}))

    assert repr(target) in str(info.value)


def test_spec_without_options_class_is_rejected() -> None:
    with pytest.raises(ValueError, match="options.class"):
        ModelSpec(name="lc", backend="langchain")
