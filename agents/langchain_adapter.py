"""Adapter that makes any LangChain ``BaseChatModel`` a tribunal backend.

From a config: ``backend: langchain`` with ``options.class: "package.module:ChatClass"`` and optional
``options.kwargs`` passed to its constructor (:class:`configs.options.LangChainOptions`; ``${ENV_VAR}`` values, anywhere
in ``kwargs``, are resolved at run time, and a credential must be one). From code:
``LangChainBackend(spec, chat_model=my_model)``.

Sampling parameters are bound per call where the model accepts them (``temperature``, ``max_tokens``, ``stop``);
an exception from the model becomes a typed failure, never a reply.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from agents.base import Backend, GenerationOutput, register_backend, resolve_option_refs
from agents.types import CallFailure, Completion, FailureKind, GenerationRequest, Usage
from configs.options import LangChainOptions
from configs.schema import ModelSpec

_ROLE = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


def to_langchain(request: GenerationRequest) -> list[BaseMessage]:
    return [_ROLE[m.role](content=m.content) for m in request.messages]


def _build(options: LangChainOptions) -> BaseChatModel:
    target = options.class_
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"options.class {target!r} cannot be imported: {exc}") from None
    # credentials are ${ENV_VAR} references (configs refuses literal ones), resolved here and never stored
    kwargs, _ = resolve_option_refs(dict(options.kwargs), "options.kwargs")
    model = cls(**kwargs)
    if not isinstance(model, BaseChatModel):
        raise ValueError(f"options.class {target!r} is not a LangChain BaseChatModel")
    return model


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts = [p if isinstance(p, str) else p.get("text", "") for p in content]
    return "".join(parts)


@register_backend("langchain")
class LangChainBackend(Backend):
    description = "any LangChain BaseChatModel (options.class = 'module:Class')"
    Options = LangChainOptions
    options: LangChainOptions

    def __init__(self, spec: ModelSpec, *, chat_model: BaseChatModel | None = None, **_: object) -> None:
        super().__init__(spec)
        self._model = chat_model if chat_model is not None else _build(self.options)
        self._semaphore = asyncio.Semaphore(spec.max_concurrency)

    def _bound(self, request: GenerationRequest) -> Any:
        s = request.sampling
        kwargs: dict[str, Any] = {}
        fields = getattr(type(self._model), "model_fields", {})
        if "temperature" in fields:
            kwargs["temperature"] = s.temperature
        if "max_tokens" in fields:
            kwargs["max_tokens"] = s.max_tokens
        if s.stop:
            kwargs["stop"] = list(s.stop)
        return self._model.bind(**kwargs) if kwargs else self._model

    async def _one(self, request: GenerationRequest) -> GenerationOutput:
        started = time.perf_counter()
        async with self._semaphore:
            try:
                reply = await asyncio.wait_for(
                    self._bound(request).ainvoke(to_langchain(request)), timeout=self.spec.timeout_s
                )
            except TimeoutError:
                return CallFailure(
                    failure=FailureKind.TIMEOUT, message="timed out", latency_s=time.perf_counter() - started
                )
            except Exception as exc:  # the chat model's own error becomes a typed failure
                return CallFailure(
                    failure=FailureKind.SERVER_ERROR,
                    message=f"{type(exc).__name__}: {exc}"[:500],
                    latency_s=time.perf_counter() - started,
                )
        usage = getattr(reply, "usage_metadata", None) or {}
        metadata = getattr(reply, "response_metadata", None) or {}
        return Completion(
            text=_text(reply),
            finish_reason=str(metadata.get("finish_reason") or "stop"),
            usage=Usage(prompt_tokens=usage.get("input_tokens"), completion_tokens=usage.get("output_tokens")),
            latency_s=time.perf_counter() - started,
        )

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutput]:
        return list(await asyncio.gather(*(self._one(r) for r in requests)))
