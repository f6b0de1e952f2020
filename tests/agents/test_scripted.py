"""The scripted backend (rules, defaults, failures, truncation, call log) and the backend registry in agents.base."""

from __future__ import annotations

import asyncio
import importlib.metadata
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import agents.base
import configs.schema
from agents.base import Backend, available_backends, backend_class, create_backend
from agents.scripted import ScriptedBackend
from agents.types import CallFailure, Completion, FailureKind, GenerationRequest, Message, Sampling
from configs.schema import ModelSpec

BUILTINS = {"embedded", "openai", "vllm", "langchain", "scripted"}


def make_spec(**options: Any) -> ModelSpec:
    return ModelSpec(name="script", backend="scripted", options=options)


def make_request(*texts: str, max_tokens: int = 128) -> GenerationRequest:
    roles = ["system", "user", "assistant"]
    messages = tuple(
        Message(role=roles[0] if i == 0 else roles[1 + (i - 1) % 2], content=t) for i, t in enumerate(texts)
    )
    return GenerationRequest(messages=messages, sampling=Sampling(max_tokens=max_tokens))


def generate(backend: Backend, requests: list[GenerationRequest]) -> list[Any]:
    return asyncio.run(backend.generate(requests))


# ------------------------------------------------------------------------------------------------ scripted
RULES = [
    {"match": "toxic", "reply": "I will not write that."},
    {"match": r"negative|hostile", "reply": "They are often misunderstood."},
    {"match": "overload", "failure": "rate_limited"},
    {"match": "echo", "reply": "You said: {last}"},
]


def test_first_matching_rule_decides() -> None:
    backend = create_backend(make_spec(rules=RULES))

    results = generate(
        backend,
        [
            make_request("You are a host.", "Write something TOXIC and negative about them."),
            make_request("You are a host.", "Write something hostile."),
            make_request("Be negative.", "Hello"),  # the system prompt is part of the conversation
        ],
    )

    assert [r.text for r in results] == [
        "I will not write that.",
        "They are often misunderstood.",
        "They are often misunderstood.",
    ]
    assert all(isinstance(r, Completion) and r.finish_reason == "stop" for r in results)


def test_reply_and_default_substitute_last_message() -> None:
    backend = create_backend(make_spec(rules=RULES, default="Here is something: {last}"))

    echoed, fallback = generate(
        backend,
        [make_request("sys", "please echo", "ok", "the final words"), make_request("sys", "Tell me about cats.")],
    )

    assert echoed.text == "You said: the final words"
    assert fallback.text == "Here is something: Tell me about cats."


def test_default_reply_without_options() -> None:
    (result,) = generate(create_backend(make_spec()), [make_request("sys", "anything")])

    assert isinstance(result, Completion)
    assert result.text == "OK."


def test_failure_rule_returns_that_failure() -> None:
    backend = create_backend(make_spec(rules=RULES))

    ok, failed = generate(backend, [make_request("sys", "fine"), make_request("sys", "overload now")])

    assert isinstance(ok, Completion)
    assert isinstance(failed, CallFailure)
    assert failed.failure is FailureKind.RATE_LIMITED
    assert failed.outcome == "rate_limited"


@pytest.mark.parametrize("kind", [k.value for k in FailureKind])
def test_every_failure_kind_can_be_scripted(kind: str) -> None:
    backend = create_backend(make_spec(rules=[{"match": ".", "failure": kind}]))

    (result,) = generate(backend, [make_request("sys", "x")])

    assert isinstance(result, CallFailure)
    assert result.failure == FailureKind(kind)


def test_unknown_failure_kind_is_rejected_when_built() -> None:
    with pytest.raises(ValueError, match="exploded"):
        create_backend(make_spec(rules=[{"match": "x", "failure": "exploded"}]))


@pytest.mark.parametrize(
    "rule", [{"reply": "no match key"}, {"match": "x"}, "just a string", {"match": "(", "reply": "x"}]
)
def test_malformed_rules_are_rejected(rule: Any) -> None:
    # the options are typed (configs.base.ScriptedOptions): the spec itself refuses them, naming the rule
    with pytest.raises(ValidationError) as caught:
        make_spec(rules=[{"match": "a", "reply": "b"}, rule])
    assert caught.value.errors()[0]["loc"][:3] == ("options", "rules", 1)


def test_reply_longer_than_max_tokens_is_truncated_with_length() -> None:
    backend = create_backend(make_spec(default="one two three four five six"))

    short, exact = generate(backend, [make_request("sys", "hi", max_tokens=4), make_request("sys", "hi", max_tokens=6)])

    assert short.text == "one two three four"
    assert short.finish_reason == "length"
    assert short.usage.completion_tokens == 4
    assert exact.text == "one two three four five six"
    assert exact.finish_reason == "stop"


def test_usage_counts_words() -> None:
    backend = create_backend(make_spec(default="a b c"))

    (result,) = generate(backend, [make_request("one two", "three four five")])

    assert result.usage.prompt_tokens == 5
    assert result.usage.completion_tokens == 3


def test_finish_reason_and_delay_options() -> None:
    backend = create_backend(make_spec(finish_reason="content_filter", delay_s=0.01))

    (result,) = generate(backend, [make_request("sys", "x")])

    assert result.finish_reason == "content_filter"
    assert result.outcome == "content_filter"
    assert result.latency_s == 0.01


def test_call_log_has_one_key_per_call_across_batches(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    backend = create_backend(make_spec(call_log=str(log)))
    first = [make_request("sys", "a"), make_request("sys", "b")]
    second = [make_request("sys", "a")]

    async def main() -> None:
        await backend.generate(first)
        await backend.generate(second)

    asyncio.run(main())

    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines == [r.key(backend.identity()) for r in first + second]
    assert lines[0] == lines[2]  # same request, same key
    assert lines[0] != lines[1]
    assert all(len(line) == 32 for line in lines)
    assert backend.calls == first + second


def test_scripted_config_file_rules() -> None:
    import yaml

    config = yaml.safe_load((Path(__file__).parent.parent / "data" / "scripted.yaml").read_text(encoding="utf-8"))
    spec = ModelSpec(**config["models"][0])

    (toxic, other) = generate(create_backend(spec), [make_request("sys", "a toxic ask"), make_request("sys", "hi")])

    assert toxic.text == "I will not write that."
    assert other.text == "Here is something: hi"


# ------------------------------------------------------------------------------------------------ registry
class FakeEntryPoint:
    def __init__(self, name: str, value: str, target: type[Backend]) -> None:
        self.name = name
        self.value = value
        self.group = "tribunal.backends"
        self._target = target
        self.loads = 0

    def load(self) -> type[Backend]:
        self.loads += 1
        return self._target


class ThirdPartyBackend(Backend):
    kind = "thirdparty"

    async def generate(self, requests):  # type: ignore[override]
        return [Completion(text="from a plugin") for _ in requests]


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, type[Backend]]:
    registry = dict(agents.base.BACKENDS.classes)
    monkeypatch.setattr(agents.base.BACKENDS, "classes", registry)
    return registry


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch, isolated_registry: dict[str, type[Backend]]) -> FakeEntryPoint:
    entry_point = FakeEntryPoint("thirdparty", "tribunal_plugin.backend:ThirdPartyBackend", ThirdPartyBackend)
    groups: list[str] = []

    real_entry_points = importlib.metadata.entry_points

    def fake_entry_points(**params: Any) -> Any:
        if params.get("group") == "tribunal.backends":
            groups.append(params["group"])
            return [entry_point]
        return real_entry_points(**params)

    # wherever else the installed plugins are looked up (e.g. when a config is validated)
    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    monkeypatch.setattr(configs.schema, "entry_points", fake_entry_points, raising=False)
    entry_point.groups = groups  # type: ignore[attr-defined]
    return entry_point


def test_available_backends_lists_the_builtins() -> None:
    found = available_backends()

    assert set(found) >= BUILTINS
    assert found["scripted"] == "agents.scripted:ScriptedBackend"
    assert found["openai"] == "agents.openai_compat:OpenAIBackend"
    assert found["vllm"] == "agents.vllm_offline:VLLMBackend"
    assert found["langchain"] == "agents.langchain_adapter:LangChainBackend"
    assert found["embedded"] == "agents.embedded:EmbeddedBackend"


def test_available_backends_imports_no_runtime() -> None:
    heavy = (
        "agents.embedded",
        "agents.vllm_offline",
        "agents.openai_compat",
        "agents.langchain_adapter",
        "torch",
        "transformers",
        "vllm",
        "openai",
        "langchain_core",
    )
    code = (
        "import sys, agents.base\n"
        "agents.base.available_backends()\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)

    assert done.stdout.strip() == ""


@pytest.mark.parametrize(
    "kind, cls_path",
    [
        ("scripted", "agents.scripted:ScriptedBackend"),
        ("openai", "agents.openai_compat:OpenAIBackend"),
        ("vllm", "agents.vllm_offline:VLLMBackend"),
        ("langchain", "agents.langchain_adapter:LangChainBackend"),
    ],
)
def test_backend_class_of_builtins(kind: str, cls_path: str) -> None:
    cls = backend_class(kind)

    assert f"{cls.__module__}:{cls.__qualname__}" == cls_path
    assert cls.kind == kind


def test_create_backend_builds_the_named_backend() -> None:
    backend = create_backend(make_spec())

    assert isinstance(backend, ScriptedBackend)
    assert backend.name == "script"
    assert backend.identity() == {"name": "script", "backend": "scripted", "model": None}


def test_unknown_backend_is_a_key_error_listing_the_known_ones(isolated_registry: dict[str, type[Backend]]) -> None:
    spec = ModelSpec.model_construct(name="x", backend="no-such-backend", model=None, options={})

    with pytest.raises(KeyError) as info:
        create_backend(spec)

    message = str(info.value)
    assert "no-such-backend" in message
    for kind in BUILTINS:
        assert kind in message


def test_entry_point_backend_is_found(plugin: FakeEntryPoint, isolated_registry: dict[str, type[Backend]]) -> None:
    assert available_backends()["thirdparty"] == "tribunal_plugin.backend:ThirdPartyBackend"
    assert backend_class("thirdparty") is ThirdPartyBackend
    assert plugin.groups and set(plugin.groups) == {"tribunal.backends"}  # type: ignore[attr-defined]
    assert plugin.loads == 1
    # cached after the first load
    assert backend_class("thirdparty") is ThirdPartyBackend
    assert plugin.loads == 1
    assert isolated_registry["thirdparty"] is ThirdPartyBackend


def test_entry_point_backend_is_listed_in_unknown_backend_errors(plugin: FakeEntryPoint) -> None:
    with pytest.raises(KeyError, match="thirdparty"):
        backend_class("still-unknown")


def test_entry_point_backend_can_be_named_in_a_model_config(plugin: FakeEntryPoint) -> None:
    # the registry promises third-party backends under `tribunal.backends`; a config must be able to name one
    spec = ModelSpec(name="plugin-model", backend="thirdparty")

    backend = create_backend(spec)
    (result,) = generate(backend, [make_request("sys", "hi")])

    assert isinstance(backend, ThirdPartyBackend)
    assert result.text == "from a plugin"


def test_register_backend_decorator(isolated_registry: dict[str, type[Backend]]) -> None:
    @agents.base.register_backend("inprocess")
    class InProcess(ThirdPartyBackend):
        pass

    assert InProcess.kind == "inprocess"
    assert backend_class("inprocess") is InProcess
    assert available_backends()["inprocess"].endswith("InProcess")
