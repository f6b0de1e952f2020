"""The vLLM offline backend: ``vllm.LLM`` in-process on a GPU, whole chunks submitted as one batch.

vLLM is imported only when the first batch runs (install it with ``pip install 'tribunal[vllm]'``). Chats are
rendered with the model's own chat template by ``LLM.chat``; JSON schemas are enforced by vLLM's structured
outputs (``StructuredOutputsParams``; ``GuidedDecodingParams`` on releases before 0.12).

A request's ``choices`` become ``SamplingParams(allowed_token_ids=...)``, each choice mapped to one token of the
engine's tokenizer (:func:`agents.embedded.choice_token_ids`; a choice that is not one token fails that request as
a ``client_error``). vLLM applies that whitelist at every generated step, not only the first, so a constrained
request should ask for ``max_tokens: 1`` (the LLM judge does). The top logprobs asked for are at least one per
choice, and the first step's alternatives are cut to the choices and renormalised over them. vLLM's default
``logprobs_mode`` (``raw_logprobs``) takes the top-k before the whitelist, so a choice the model finds unlikely
can be missing from them (the sampled one never is); start the engine with ``logprobs_mode: processed_logprobs``
in ``options:`` to take them after it, where every choice is present.

Options (``options:`` in the model's config) are passed to ``vllm.LLM(...)`` as written, e.g.
``tensor_parallel_size``, ``gpu_memory_utilization``, ``max_model_len``, ``dtype``, ``enforce_eager``; the common
ones are typed (:class:`configs.options.VLLMOptions`, checked by ``tribunal validate``), a credential such as
``hf_token`` is a ``${ENV_VAR}`` reference resolved when the engine starts.
For a server, run ``vllm serve MODEL`` and use the ``openai`` backend with ``base_url`` instead.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import time
from collections.abc import Sequence
from typing import Any

from agents.base import Backend, GenerationOutput, register_backend, resolve_option_refs
from agents.embedded import choice_token_ids
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
    supports_choices = True
    Options = VLLMOptions
    options: VLLMOptions

    def __init__(self, spec: ModelSpec, *, llm: Any = None, **_: object) -> None:
        super().__init__(spec)
        self._llm = llm
        self._lock = asyncio.Lock()
        self._choice_ids: dict[tuple[str, ...], list[int] | str] = {}  # the token ids, or why there are none

    def _engine(self) -> Any:
        if self._llm is None:
            vllm = _import_vllm()
            options, _ = resolve_option_refs(dict(self.spec.options), "options")  # as written, ${ENV_VAR}s resolved
            options.pop("gpu_memory_gb", None)  # the card's size, for tribunal's own memory check only
            self._llm = vllm.LLM(model=self.spec.model, **options)
        return self._llm

    def sampling_params(self, request: GenerationRequest, allowed_token_ids: list[int] | None = None) -> Any:
        """The request's ``vllm.SamplingParams``; ``allowed_token_ids`` are its choices' token ids."""
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
            kwargs["logprobs"] = max(1, request.top_logprobs, len(allowed_token_ids or ()))
        if allowed_token_ids is not None:
            kwargs["allowed_token_ids"] = list(allowed_token_ids)
        if request.json_schema is not None:
            kwargs.update(_structured(vllm, request.json_schema))
        return vllm.SamplingParams(**kwargs)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutput]:
        if not requests:
            return []
        async with self._lock:
            return await asyncio.to_thread(self._generate_sync, list(requests))

    def _allowed(self, llm: Any, choices: tuple[str, ...]) -> list[int] | str:
        """The choices' token ids in the engine's tokenizer, or why they have none (once per set of choices)."""
        found = self._choice_ids.get(choices)
        if found is None:
            tokenizer = llm.get_tokenizer()  # an engine fault here fails the batch, as any other
            try:
                found = choice_token_ids(tokenizer, choices)
            except ValueError as exc:
                found = str(exc)
            self._choice_ids[choices] = found
        return found

    def _generate_sync(self, requests: list[GenerationRequest]) -> list[GenerationOutput]:
        started = time.perf_counter()
        results: list[GenerationOutput | None] = [None] * len(requests)
        try:
            llm = self._engine()
            allowed: dict[int, list[int]] = {}
            for index, request in enumerate(requests):
                if request.choices is None:
                    continue
                found = self._allowed(llm, request.choices)
                if isinstance(found, str):  # the request's fault: fail it, typed, and run the others
                    results[index] = CallFailure(failure=FailureKind.CLIENT_ERROR, message=found, attempts=0)
                else:
                    allowed[index] = found
            runnable = [i for i, result in enumerate(results) if result is None]
            outputs = []
            if runnable:
                conversations = [[m.model_dump() for m in requests[i].messages] for i in runnable]
                params = [self.sampling_params(requests[i], allowed.get(i)) for i in runnable]
                outputs = llm.chat(conversations, sampling_params=params, use_tqdm=False)
        except VLLMUnavailable:
            raise
        except Exception as exc:  # an engine fault fails the batch as a typed outcome
            message = f"{type(exc).__name__}: {exc}"[:500]
            elapsed = time.perf_counter() - started
            failure = CallFailure(failure=FailureKind.SERVER_ERROR, message=message, latency_s=elapsed)
            return [failure if result is None else result for result in results]
        elapsed = time.perf_counter() - started
        for index, output in zip(runnable, outputs, strict=True):
            results[index] = _completion(output, requests[index], elapsed, allowed.get(index))
        return [r for r in results if r is not None]


def _completion(
    output: Any, request: GenerationRequest, elapsed: float, allowed: list[int] | None = None
) -> Completion:
    choice = output.outputs[0]
    logprobs = None
    if request.top_logprobs is not None and choice.logprobs:
        logprobs = []
        for step, (token_id, alternatives) in enumerate(zip(choice.token_ids, choice.logprobs, strict=False)):
            if step == 0 and allowed is not None:
                assert request.choices is not None
                logprobs.append(_renormalised(token_id, alternatives, dict(zip(allowed, request.choices, strict=True))))
                continue
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


def _renormalised(token_id: int, alternatives: dict[int, Any], choice_of: dict[int, str]) -> TokenLogprob:
    """The first constrained step: its alternatives cut to the choices the engine returned (the sampled token
    always is one) and renormalised over them, most likely first; tokens are named by their choice."""
    kept = {tid: float(lp.logprob) for tid, lp in alternatives.items() if tid in choice_of and lp.logprob > -math.inf}
    if not kept:
        return TokenLogprob(token=choice_of.get(token_id, ""), logprob=float("-inf"))
    peak = max(kept.values())
    log_total = peak + math.log(sum(math.exp(lp - peak) for lp in kept.values()))
    ranked = sorted(kept.items(), key=lambda pair: -pair[1])
    return TokenLogprob(
        token=choice_of.get(token_id, ""),
        logprob=kept.get(token_id, -math.inf) - log_total,
        top=[(choice_of[tid], lp - log_total) for tid, lp in ranked],
    )
