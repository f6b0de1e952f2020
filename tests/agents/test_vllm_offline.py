"""The vLLM offline backend against a fake ``vllm`` module shaped like vLLM's own objects.

The fake records the engine's construction, every ``LLM.chat`` call and every ``SamplingParams``; its outputs
have the shape of vLLM's ``RequestOutput`` / ``CompletionOutput`` / ``Logprob``. One opt-in test
(``TRIBUNAL_TEST_VLLM=1``, model path in ``TRIBUNAL_VLLM_MODEL``) runs the real engine.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from agents.base import create_backend
from agents.types import CallFailure, Completion, FailureKind, GenerationRequest, Message, Sampling
from agents.vllm_offline import VLLMBackend, VLLMUnavailable
from configs.schema import ModelSpec, RaterSpec
from raters import RatingItem, RatingOutcome, create_rater

SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer"}, "reason": {"type": "string"}},
    "required": ["score", "reason"],
}


# ------------------------------------------------------------------------------------------- fake vLLM
@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool = True


class SamplingParams:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["kwargs"][name]
        except KeyError:
            raise AttributeError(name) from None


class StructuredOutputsParams:
    def __init__(self, json: Any = None, **kwargs: Any) -> None:
        self.json = json
        self.kwargs = kwargs


class GuidedDecodingParams:
    def __init__(self, json: Any = None, **kwargs: Any) -> None:
        self.json = json
        self.kwargs = kwargs


class FakeTokenizer:
    """One token per character (id ``1000 + ord(c)``), so ``"3"`` is one token and ``"10"`` two."""

    unk_token_id = 0

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [1000 + ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i - 1000) for i in ids)

    def convert_tokens_to_ids(self, token: str) -> int:
        return 1000 + ord(token) if len(token) == 1 else self.unk_token_id


def default_responder(conversation: list[dict[str, str]], params: SamplingParams) -> CompletionOutput:
    """Reply ``echo: <last message>`` in three tokens; logprobs when the params ask for them."""
    token_ids = [101, 102, 103]
    logprobs = None
    if params.kwargs.get("logprobs"):
        logprobs = [
            # vLLM puts the sampled token first, then the top-k by rank
            {tid: Logprob(-0.1 * (i + 1), 1, f"t{tid}"), 900 + i: Logprob(-3.0, 2, f"alt{i}")}
            for i, tid in enumerate(token_ids)
        ]
    return CompletionOutput(
        index=0,
        text=f"echo: {conversation[-1]['content']}",
        token_ids=token_ids,
        cumulative_logprob=None,
        logprobs=logprobs,
        finish_reason="stop",
    )


@dataclass
class FakeVLLM:
    """State of one installed fake vllm module."""

    module: types.ModuleType
    sampling_module: types.ModuleType
    engines: list[Any] = field(default_factory=list)
    chat_calls: list[dict[str, Any]] = field(default_factory=list)
    responder: Any = default_responder
    chat_error: Exception | None = None
    chat_delay_s: float = 0.0
    in_flight: int = 0
    peak_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def install_fake_vllm(monkeypatch: pytest.MonkeyPatch, *, structured_outputs: bool = True) -> FakeVLLM:
    vllm = types.ModuleType("vllm")
    sampling_module = types.ModuleType("vllm.sampling_params")
    sampling_module.SamplingParams = SamplingParams
    if structured_outputs:
        sampling_module.StructuredOutputsParams = StructuredOutputsParams
    else:
        sampling_module.GuidedDecodingParams = GuidedDecodingParams
    fake = FakeVLLM(module=vllm, sampling_module=sampling_module)

    class LLM:
        def __init__(self, model: str, **kwargs: Any) -> None:
            self.model = model
            self.kwargs = kwargs
            fake.engines.append(self)

        def chat(self, messages: Any, sampling_params: Any = None, use_tqdm: bool = True, **kwargs: Any) -> Any:
            with fake.lock:
                fake.in_flight += 1
                fake.peak_in_flight = max(fake.peak_in_flight, fake.in_flight)
            try:
                fake.chat_calls.append(
                    {"messages": messages, "sampling_params": sampling_params, "use_tqdm": use_tqdm, **kwargs}
                )
                if fake.chat_delay_s:
                    time.sleep(fake.chat_delay_s)
                if fake.chat_error is not None:
                    raise fake.chat_error
                return [
                    RequestOutput(
                        request_id=str(i),
                        prompt=None,
                        prompt_token_ids=list(range(5 + i)),
                        outputs=[fake.responder(conversation, params)],
                    )
                    for i, (conversation, params) in enumerate(zip(messages, sampling_params, strict=True))
                ]
            finally:
                with fake.lock:
                    fake.in_flight -= 1

    LLM.get_tokenizer = lambda self: FakeTokenizer()
    vllm.LLM = LLM
    vllm.SamplingParams = SamplingParams
    vllm.sampling_params = sampling_module
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling_module)
    return fake


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> FakeVLLM:
    return install_fake_vllm(monkeypatch)


def make_spec(**overrides: Any) -> ModelSpec:
    fields: dict[str, Any] = {"name": "local", "backend": "vllm", "model": "/models/smollm2-135m-instruct"}
    fields.update(overrides)
    return ModelSpec(**fields)


def make_request(text: str = "Describe teachers.", **fields: Any) -> GenerationRequest:
    messages = (Message(role="system", content="You are a journalist."), Message(role="user", content=text))
    return GenerationRequest(messages=messages, **fields)


def generate(backend: VLLMBackend, requests: list[GenerationRequest]) -> list[Any]:
    return asyncio.run(backend.generate(requests))


# ------------------------------------------------------------------------------------------------ tests
def test_a_batch_is_one_chat_call(fake_vllm: FakeVLLM) -> None:
    backend = create_backend(make_spec())
    requests = [make_request(f"prompt {i}") for i in range(5)]

    results = generate(backend, requests)

    assert len(fake_vllm.chat_calls) == 1
    call = fake_vllm.chat_calls[0]
    assert call["use_tqdm"] is False
    assert len(call["messages"]) == 5
    assert len(call["sampling_params"]) == 5
    assert [r.text for r in results] == [f"echo: prompt {i}" for i in range(5)]


def test_chat_messages_are_role_content_dicts(fake_vllm: FakeVLLM) -> None:
    backend = create_backend(make_spec())

    generate(backend, [make_request("first"), make_request("second")])

    assert fake_vllm.chat_calls[0]["messages"] == [
        [{"role": "system", "content": "You are a journalist."}, {"role": "user", "content": "first"}],
        [{"role": "system", "content": "You are a journalist."}, {"role": "user", "content": "second"}],
    ]


def test_engine_is_built_lazily_once_with_options(fake_vllm: FakeVLLM) -> None:
    spec = make_spec(options={"gpu_memory_utilization": 0.5, "max_model_len": 2048, "enforce_eager": True})
    backend = create_backend(spec)
    assert fake_vllm.engines == []  # constructing the backend loads nothing

    async def main() -> None:
        await backend.generate([make_request()])
        await backend.generate([make_request()])

    asyncio.run(main())

    (engine,) = fake_vllm.engines
    assert engine.model == "/models/smollm2-135m-instruct"
    assert engine.kwargs == {"gpu_memory_utilization": 0.5, "max_model_len": 2048, "enforce_eager": True}
    assert len(fake_vllm.chat_calls) == 2


def test_an_injected_engine_is_used(fake_vllm: FakeVLLM) -> None:
    engine = fake_vllm.module.LLM(model="preloaded")
    backend = VLLMBackend(make_spec(), llm=engine)

    generate(backend, [make_request()])

    assert fake_vllm.engines == [engine]
    assert len(fake_vllm.chat_calls) == 1


def test_empty_batch_needs_no_engine(fake_vllm: FakeVLLM) -> None:
    backend = create_backend(make_spec())

    assert generate(backend, []) == []
    assert fake_vllm.engines == []
    assert fake_vllm.chat_calls == []


def test_per_request_sampling_params(fake_vllm: FakeVLLM) -> None:
    backend = create_backend(make_spec())
    requests = [
        make_request(sampling=Sampling(temperature=0.0, top_p=0.5, max_tokens=12, seed=7, stop=("\n",))),
        make_request(sampling=Sampling(temperature=1.1, top_p=0.95, max_tokens=300), top_logprobs=4),
        make_request(top_logprobs=0),
    ]

    generate(backend, requests)

    first, second, third = (p.kwargs for p in fake_vllm.chat_calls[0]["sampling_params"])
    assert first == {"temperature": 0.0, "top_p": 0.5, "max_tokens": 12, "seed": 7, "stop": ["\n"]}
    assert second["temperature"] == 1.1
    assert second["top_p"] == 0.95
    assert second["max_tokens"] == 300
    assert second["seed"] is None
    assert "stop" not in second
    assert second["logprobs"] == 4
    assert third["logprobs"] >= 1  # the chosen token's logprob needs at least one
    assert all("structured_outputs" not in p and "guided_decoding" not in p for p in (first, second, third))


def test_json_schema_uses_structured_outputs(fake_vllm: FakeVLLM) -> None:
    backend = create_backend(make_spec())

    generate(backend, [make_request(json_schema=SCHEMA), make_request()])

    constrained, free = (p.kwargs for p in fake_vllm.chat_calls[0]["sampling_params"])
    assert isinstance(constrained["structured_outputs"], StructuredOutputsParams)
    assert constrained["structured_outputs"].json == SCHEMA
    assert "guided_decoding" not in constrained
    assert "structured_outputs" not in free


def test_json_schema_uses_guided_decoding_on_older_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_fake_vllm(monkeypatch, structured_outputs=False)
    backend = create_backend(make_spec())

    generate(backend, [make_request(json_schema=SCHEMA)])

    (params,) = fake.chat_calls[0]["sampling_params"]
    assert isinstance(params.kwargs["guided_decoding"], GuidedDecodingParams)
    assert params.kwargs["guided_decoding"].json == SCHEMA
    assert "structured_outputs" not in params.kwargs


def test_outputs_become_completions(fake_vllm: FakeVLLM) -> None:
    def responder(conversation: list[dict[str, str]], params: SamplingParams) -> CompletionOutput:
        long = conversation[-1]["content"] == "long"
        return CompletionOutput(
            index=0,
            text="Teachers shape" if long else "Teachers shape minds.",
            token_ids=[1, 2] if long else [1, 2, 3, 4],
            cumulative_logprob=None,
            logprobs=None,
            finish_reason="length" if long else "stop",
        )

    fake_vllm.responder = responder
    backend = create_backend(make_spec())

    short, long = generate(backend, [make_request("short"), make_request("long")])

    assert isinstance(short, Completion)
    assert (short.text, short.finish_reason) == ("Teachers shape minds.", "stop")
    assert short.usage.prompt_tokens == 5
    assert short.usage.completion_tokens == 4
    assert short.logprobs is None
    assert (long.text, long.finish_reason) == ("Teachers shape", "length")
    assert long.usage.prompt_tokens == 6
    assert long.usage.completion_tokens == 2
    assert short.latency_s > 0


def test_logprobs_are_mapped_with_ranked_alternatives(fake_vllm: FakeVLLM) -> None:
    def responder(conversation: list[dict[str, str]], params: SamplingParams) -> CompletionOutput:
        return CompletionOutput(
            index=0,
            text=" 2",
            token_ids=[17, 5],
            cumulative_logprob=-2.3,
            logprobs=[
                # sampled token inside the top-k, dict not in rank order
                {17: Logprob(-0.2, 1, "Score"), 18: Logprob(-4.0, 3, "Rating"), 19: Logprob(-1.9, 2, "The")},
                # sampled token outside the top-2: vLLM adds it with its own rank
                {5: Logprob(-2.1, 4, " 2"), 6: Logprob(-0.4, 1, " 1"), 7: Logprob(-1.5, 2, " 3")},
            ],
            finish_reason="stop",
        )

    fake_vllm.responder = responder
    backend = create_backend(make_spec())

    (result,) = generate(backend, [make_request(top_logprobs=2)])

    assert result.logprobs is not None
    first, second = result.logprobs
    assert (first.token, first.logprob) == ("Score", pytest.approx(-0.2))
    assert first.top == [("Score", pytest.approx(-0.2)), ("The", pytest.approx(-1.9))]
    assert (second.token, second.logprob) == (" 2", pytest.approx(-2.1))
    assert second.top == [(" 1", pytest.approx(-0.4)), (" 3", pytest.approx(-1.5))]


def test_no_logprobs_unless_asked(fake_vllm: FakeVLLM) -> None:
    fake_vllm.responder = lambda conversation, params: CompletionOutput(
        index=0,
        text="x",
        token_ids=[1],
        cumulative_logprob=None,
        logprobs=[{1: Logprob(-0.1, 1, "x")}],
        finish_reason="stop",
    )
    backend = create_backend(make_spec())

    (result,) = generate(backend, [make_request()])

    assert result.logprobs is None


def test_an_engine_exception_fails_every_request(fake_vllm: FakeVLLM) -> None:
    fake_vllm.chat_error = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    backend = create_backend(make_spec())

    results = generate(backend, [make_request(f"p{i}") for i in range(3)])

    assert len(results) == 3
    for result in results:
        assert isinstance(result, CallFailure)
        assert result.failure is FailureKind.SERVER_ERROR
        assert "CUDA out of memory" in result.message
        assert "RuntimeError" in result.message


def test_an_engine_that_cannot_start_fails_the_batch_and_is_retried_next_time(fake_vllm: FakeVLLM) -> None:
    real_llm = fake_vllm.module.LLM
    starts: list[str] = []

    def failing_llm(model: str, **kwargs: Any) -> Any:
        starts.append(model)
        if len(starts) == 1:
            raise ValueError("max_model_len 99999 is larger than the model's 8192")
        return real_llm(model=model, **kwargs)

    fake_vllm.module.LLM = failing_llm
    backend = create_backend(make_spec())

    async def main() -> tuple[list[Any], list[Any]]:
        return await backend.generate([make_request()]), await backend.generate([make_request()])

    first, second = asyncio.run(main())

    assert first[0].failure is FailureKind.SERVER_ERROR
    assert "max_model_len" in first[0].message
    assert isinstance(second[0], Completion)
    assert len(starts) == 2


def test_concurrent_batches_do_not_overlap_on_the_engine(fake_vllm: FakeVLLM) -> None:
    fake_vllm.chat_delay_s = 0.03
    backend = create_backend(make_spec())

    async def main() -> list[list[Any]]:
        return await asyncio.gather(*(backend.generate([make_request(f"b{i}")]) for i in range(4)))

    batches = asyncio.run(main())

    assert [b[0].text for b in batches] == [f"echo: b{i}" for i in range(4)]
    assert len(fake_vllm.chat_calls) == 4
    assert fake_vllm.peak_in_flight == 1


def test_without_vllm_the_backend_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail
    backend = create_backend(make_spec())  # building the backend imports nothing

    with pytest.raises(VLLMUnavailable) as info:
        generate(backend, [make_request()])

    message = str(info.value)
    assert "pip install 'tribunal[vllm]'" in message
    assert "vllm serve" in message


def test_spec_needs_a_model() -> None:
    with pytest.raises(ValueError, match="needs 'model'"):
        ModelSpec(name="local", backend="vllm")


# ------------------------------------------------------------------------------------------ constrained choices
SCALE = ("1", "2", "3", "4", "5")
SCALE_IDS = [1000 + ord(c) for c in SCALE]


def scale_responder(conversation: list[dict[str, str]], params: SamplingParams) -> CompletionOutput:
    """Answer "4" with raw (pre-whitelist) logprobs: a token outside the scale ranks first and "1" is missing."""
    first = {
        SCALE_IDS[3]: Logprob(-1.0, 2, "4"),
        900: Logprob(-0.7, 1, "The"),
        SCALE_IDS[2]: Logprob(-2.0, 3, "3"),
        SCALE_IDS[4]: Logprob(-3.0, 4, "5"),
        SCALE_IDS[1]: Logprob(-4.0, 5, "2"),
    }
    return CompletionOutput(
        index=0,
        text="4",
        token_ids=[SCALE_IDS[3]],
        cumulative_logprob=-1.0,
        logprobs=[first] if params.kwargs.get("logprobs") else None,
        finish_reason="length",
    )


def test_choices_become_allowed_token_ids_with_a_logprob_per_choice(fake_vllm: FakeVLLM) -> None:
    backend = create_backend(make_spec())
    assert backend.supports_choices
    greedy = Sampling(temperature=0.0, max_tokens=1)

    generate(
        backend,
        [
            make_request(sampling=greedy, top_logprobs=2, choices=SCALE),
            make_request(sampling=greedy, top_logprobs=20, choices=SCALE),
            make_request(top_logprobs=2),
        ],
    )

    few, many, free = (p.kwargs for p in fake_vllm.chat_calls[0]["sampling_params"])
    assert few["allowed_token_ids"] == SCALE_IDS
    assert few["logprobs"] == 5  # at least one per choice, so that the top can hold every choice
    assert few["max_tokens"] == 1
    assert many["allowed_token_ids"] == SCALE_IDS and many["logprobs"] == 20
    assert "allowed_token_ids" not in free and free["logprobs"] == 2


def test_the_first_constrained_step_is_renormalised_over_the_choices(fake_vllm: FakeVLLM) -> None:
    fake_vllm.responder = scale_responder
    backend = create_backend(make_spec())

    (result,) = generate(
        backend, [make_request(sampling=Sampling(temperature=0.0, max_tokens=1), top_logprobs=2, choices=SCALE)]
    )

    assert isinstance(result, Completion) and result.text == "4"
    (first,) = result.logprobs
    assert [token for token, _ in first.top] == ["4", "3", "5", "2"]  # "The" is cut; "1" the engine did not return
    assert sum(math.exp(lp) for _, lp in first.top) == pytest.approx(1.0)
    total = math.exp(-1.0) + math.exp(-2.0) + math.exp(-3.0) + math.exp(-4.0)
    assert (first.token, first.logprob) == ("4", pytest.approx(-1.0 - math.log(total)))


def test_a_choice_of_several_tokens_fails_that_request_only(fake_vllm: FakeVLLM) -> None:
    backend = create_backend(make_spec())

    bad, good = generate(backend, [make_request("bad", choices=("1", "10")), make_request("good", choices=SCALE)])

    assert isinstance(bad, CallFailure) and bad.failure is FailureKind.CLIENT_ERROR
    assert "'10'" in bad.message and "single token" in bad.message
    assert isinstance(good, Completion)
    (call,) = fake_vllm.chat_calls
    assert [c[-1]["content"] for c in call["messages"]] == ["good"]  # the bad request never reached the engine


def test_a_batch_of_only_bad_choices_makes_no_engine_call(fake_vllm: FakeVLLM) -> None:
    backend = create_backend(make_spec())

    (bad,) = generate(backend, [make_request(choices=("yes", "no"))])

    assert isinstance(bad, CallFailure) and bad.failure is FailureKind.CLIENT_ERROR
    assert fake_vllm.chat_calls == []


def test_an_llm_judge_on_vllm_constrains_its_scale(fake_vllm: FakeVLLM) -> None:
    fake_vllm.responder = scale_responder
    judge = create_rater(
        RaterSpec(
            name="vllm-judge",
            kind="llm",
            model=make_spec(),
            rubric="toxicity",
            dimensions=["toxicity"],
            options={"mode": "logprobs"},
        )
    )
    item = RatingItem(key="g1", text="They are often misunderstood.")

    (rating,) = asyncio.run(judge.rate([item]))

    (params,) = fake_vllm.chat_calls[0]["sampling_params"]
    assert params.kwargs["allowed_token_ids"] == SCALE_IDS and params.kwargs["max_tokens"] == 1
    assert rating.outcome == RatingOutcome.SCORED and rating.scale == "1-5 logprob-weighted, constrained"
    distribution = json.loads(rating.rationale)
    assert set(distribution) == {"2", "3", "4", "5"} and sum(distribution.values()) == pytest.approx(1.0, abs=1e-5)


# ------------------------------------------------------------------------------------------ real vLLM, opt-in
@pytest.mark.vllm
@pytest.mark.skipif(os.environ.get("TRIBUNAL_TEST_VLLM") != "1", reason="set TRIBUNAL_TEST_VLLM=1 to run vLLM")
def test_real_vllm_generates_a_batch() -> None:
    model = os.environ.get("TRIBUNAL_VLLM_MODEL")
    if not model:
        pytest.skip("set TRIBUNAL_VLLM_MODEL to a model id or a local safetensors folder")
    options = json.loads(os.environ.get("TRIBUNAL_VLLM_OPTIONS", '{"max_model_len": 2048}'))
    backend = create_backend(ModelSpec(name="real", backend="vllm", model=model, options=options))
    greedy = Sampling(temperature=0.0, max_tokens=48, seed=1)
    requests = [
        GenerationRequest(messages=(Message(role="user", content="Name a colour."),), sampling=greedy),
        GenerationRequest(
            messages=(Message(role="user", content="Rate this text from 1 to 5 and explain: 'hello'. Reply in JSON."),),
            sampling=greedy,
            json_schema=SCHEMA,
        ),
        GenerationRequest(
            messages=(Message(role="user", content="Say yes."),),
            sampling=Sampling(temperature=0.0, max_tokens=4),
            top_logprobs=2,
        ),
    ]

    async def main() -> tuple[list[Any], list[Any]]:
        try:
            return await backend.generate(requests), await backend.generate(requests[:1])
        finally:
            await backend.aclose()

    results, again = asyncio.run(main())

    assert all(isinstance(r, Completion) for r in results), results
    plain, constrained, scored = results
    assert plain.text.strip()
    assert plain.usage.prompt_tokens and plain.usage.completion_tokens
    assert again[0].text == plain.text  # greedy decoding is deterministic
    reply = json.loads(constrained.text)
    assert isinstance(reply["score"], int) and isinstance(reply["reason"], str)
    assert scored.logprobs is not None
    assert len(scored.logprobs) == scored.usage.completion_tokens
    assert all(1 <= len(t.top) <= 2 for t in scored.logprobs)
