"""The vLLM offline backend: ``vllm.LLM`` in-process on a GPU, whole chunks submitted as one batch.

vLLM is imported only when the first batch runs (install it with ``pip install 'tribunal[vllm]'``). Chats are
rendered with the model's own chat template by ``LLM.chat``; JSON schemas are enforced by vLLM's structured
outputs (``StructuredOutputsParams``; ``GuidedDecodingParams`` on releases before 0.12).

Options (``options:`` in the model's config) are passed to ``vllm.LLM(...)`` as written, e.g.
``tensor_parallel_size``, ``gpu_memory_utilization``, ``max_model_len``, ``dtype``, ``enforce_eager``; the common
ones are typed (:class:`configs.options.VLLMOptions`, checked by ``tribunal validate``), a credential such as
``hf_token`` is a ``${ENV_VAR}`` reference resolved when the engine starts.
For a server, run ``vllm serve MODEL`` and use the ``openai`` backend with ``base_url`` instead.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Sequence
from typing import Any

from agents.base import Backend, GenerationOutput, register_backend, resolve_option_refs
from agents.types import CallFailure, Completion, FailureKind, GenerationRequest, TokenLogprob, Usage
from configs.options import VLLMOptions
from configs.schema import ModelSpec


class VLLMUnavailable(RuntimeError):
    """vLLM is not installed or cannot start here."""


def _import_vllm() -> Any:
    try:
        return importlib.import_module("vllm")
    except ImportError as exc:
        raise VLLMUnavailable(
            f"the vllm backend needs vLLM and a GPU ({exc}); install it with: pip install 'tribunal[vllm]', "
            "or point the openai backend at a `vllm serve` server"
        ) from None


def _structured(vllm: Any, schema: dict[str, Any]) -> dict[str, Any]:
    """SamplingParams keyword for a JSON schema, across vLLM releases."""
    sampling_params = importlib.import_module("vllm.sampling_params")
    if hasattr(sampling_params, "StructuredOutputsParams"):
        return {"structured_outputs": sampling_params.StructuredOutputsParams(json=schema)}
    return {"guided_decoding": sampling_params.GuidedDecodingParams(json=schema)}


@register_backend("vllm")
class VLLMBackend(Backend):
    description = "vLLM offline (vllm.LLM) on a local GPU; whole chunks per batch"
    supports_json_schema = True
    supports_logprobs = True
    Options = VLLMOptions
    options: VLLMOptions

    def __init__(self, spec: ModelSpec, *, llm: Any = None, **_: object) -> None:
        super().__init__(spec)
        self._llm = llm
        self._lock = asyncio.Lock()

    def _engine(self) -> Any:
        if self._llm is None:
            vllm = _import_vllm()
            options, _ = resolve_option_refs(dict(self.spec.options), "options")  # as written, ${ENV_VAR}s resolved
            self._llm = vllm.LLM(model=self.spec.model, **options)
        return self._llm

    def sampling_params(self, request: GenerationRequest) -> Any:
        vllm = _import_vllm()
        s = request.sampling
        kwargs: dict[str, Any] = {
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
            "seed": s.seed,
        }
        if s.stop:
            kwargs["stop"] = list(s.stop)
        if request.top_logprobs is not None:
            kwargs["logprobs"] = max(1, request.top_logprobs)
        if request.json_schema is not None:
            kwargs.update(_structured(vllm, request.json_schema))
        return vllm.SamplingParams(**kwargs)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutput]:
        if not requests:
            return []
        async with self._lock:
            return await asyncio.to_thread(self._generate_sync, list(requests))

    def _generate_sync(self, requests: list[GenerationRequest]) -> list[GenerationOutput]:
        started = time.perf_counter()
        try:
            llm = self._engine()
            conversations = [[m.model_dump() for m in r.messages] for r in requests]
            params = [self.sampling_params(r) for r in requests]
            outputs = llm.chat(conversations, sampling_params=params, use_tqdm=False)
        except VLLMUnavailable:
            raise
        except Exception as exc:  # an engine fault fails the batch as a typed outcome
            message = f"{type(exc).__name__}: {exc}"[:500]
            elapsed = time.perf_counter() - started
            return [CallFailure(failure=FailureKind.SERVER_ERROR, message=message, latency_s=elapsed) for _ in requests]
        elapsed = time.perf_counter() - started
        return [_completion(out, req, elapsed) for out, req in zip(outputs, requests, strict=True)]


def _completion(output: Any, request: GenerationRequest, elapsed: float) -> Completion:
    choice = output.outputs[0]
    logprobs = None
    if request.top_logprobs is not None and choice.logprobs:
        logprobs = []
        for token_id, alternatives in zip(choice.token_ids, choice.logprobs, strict=False):
            chosen = alternatives.get(token_id)
            ranked = sorted(alternatives.values(), key=lambda lp: lp.rank or 0)
            logprobs.append(
                TokenLogprob(
                    token=(chosen.decoded_token if chosen else "") or "",
                    logprob=float(chosen.logprob) if chosen else float("-inf"),
                    top=[(lp.decoded_token or "", float(lp.logprob)) for lp in ranked[: request.top_logprobs]],
                )
            )
    return Completion(
        text=choice.text,
        finish_reason=choice.finish_reason or "stop",
        usage=Usage(prompt_tokens=len(output.prompt_token_ids or []), completion_tokens=len(choice.token_ids)),
        latency_s=elapsed,
        logprobs=logprobs,
    )
