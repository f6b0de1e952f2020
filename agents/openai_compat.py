"""Backend for any OpenAI-compatible chat server: OpenAI itself, ``vllm serve``, llama.cpp's server, gateways.

Built on the official ``openai`` AsyncOpenAI client with its own retries switched off: tenacity retries 429,
5xx, timeouts, dropped connections and malformed bodies, honouring ``Retry-After``/``retry-after-ms`` (else
exponential back-off with jitter), up to ``max_retries`` times; then the call is returned as a typed
:class:`~agents.types.CallFailure`. The first attempt runs outside tenacity, whose ``AsyncRetrying`` is built only
once a call has failed: the calls that succeed at once (nearly all) pay none of its set-up.

Backends on one server (equal ``base_url`` and resolved key) share its clients (httpx pools of at most 2
connections each) and one in-flight limit, the largest ``max_concurrency`` among them; each also stays within its
own (:mod:`agents.servers`).

The request body is built here, in the key order ``chat.completions.create`` sends, and posted with the client's
public low-level ``post`` (``cast_to=ChatCompletion``, the same options ``create`` passes: bearer auth, the
per-request timeout, ``extra_body`` as ``extra_json``). That skips ``create``'s walk of the request's ``TypedDict``
annotations (``async_maybe_transform``), which does nothing to a body of plain JSON values but costs about a
third of the client's CPU per request; the bytes on the wire are the same (``tests/agents/test_openai_pool.py``
compares them), and so are the response parsing and the error classes.

Options (``options:`` in the model's config; :class:`configs.options.OpenAIOptions`, checked by ``tribunal validate``):
    ``max_tokens_param``: ``max_tokens`` (default) or ``max_completion_tokens`` (OpenAI reasoning models).
    ``retry_base_wait_s`` / ``retry_max_wait_s``: exponential back-off bounds (defaults 0.5 s and 60 s; at least 0).
    ``extra_body``: extra JSON fields sent with every request (e.g. vLLM's ``top_k``); a credential in it is
    written as a ``${ENV_VAR}`` reference, resolved when the backend is built and masked in stored messages.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import json
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from agents import servers
from agents.base import Backend, GenerationOutput, register_backend, resolve_option_refs, spec_value, unsendable
from agents.servers import Server, ServerAddress
from agents.types import CallFailure, Completion, FailureKind, GenerationRequest, TokenLogprob, Usage
from configs.options import OpenAIOptions
from configs.schema import ModelSpec


class BadResponse(Exception):
    """The server answered 2xx with a body that is not a usable chat completion."""


def classify(exc: BaseException) -> tuple[FailureKind, bool, int | None]:
    """Map an exception to (failure kind, retryable, HTTP status)."""
    if isinstance(exc, openai.APITimeoutError):
        return FailureKind.TIMEOUT, True, None
    if isinstance(exc, openai.APIConnectionError):
        return FailureKind.CONNECTION_ERROR, True, None
    if isinstance(exc, openai.RateLimitError):
        return FailureKind.RATE_LIMITED, True, 429
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status >= 500:
            return FailureKind.SERVER_ERROR, True, status
        if status == 408:
            return FailureKind.TIMEOUT, True, status
        return FailureKind.CLIENT_ERROR, False, status
    if isinstance(exc, (BadResponse, openai.APIResponseValidationError, json.JSONDecodeError, ValueError)):
        return FailureKind.BAD_RESPONSE, True, None
    if isinstance(exc, asyncio.TimeoutError):
        return FailureKind.TIMEOUT, True, None
    return FailureKind.BAD_RESPONSE, False, None


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server's requested wait, from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None  # unparseable: fall back to exponential back-off
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return max(0.0, parsed.timestamp() - time.time())


#: where the ``openai`` client sends requests when neither the spec nor ``OPENAI_BASE_URL`` names a server
DEFAULT_BASE_URL = "https://api.openai.com/v1"


def server_address(spec: ModelSpec) -> ServerAddress:
    """The server a spec's requests go to, resolved the way ``AsyncOpenAI`` resolves it (the spec's
    ``${ENV_VAR}`` references, then ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``).

    Raises:
        ConfigError: a referenced variable is unset.
    """
    api_key = spec_value(spec.api_key, "api_key") or os.environ.get("OPENAI_API_KEY") or "not-needed"
    base_url = spec_value(spec.base_url, "base_url") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    return ServerAddress(base_url=base_url.rstrip("/"), api_key=api_key)


def _message_payload(request: GenerationRequest) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in request.messages]


@register_backend("openai")
class OpenAIBackend(Backend):
    description = "any OpenAI-compatible chat server (OpenAI, vllm serve, llama.cpp server) via the openai client"
    supports_json_schema = True
    supports_logprobs = True
    Options = OpenAIOptions
    options: OpenAIOptions

    def __init__(
        self,
        spec: ModelSpec,
        *,
        client: AsyncOpenAI | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(spec)
        options = self.options
        self._max_tokens_param = options.max_tokens_param
        self._base_wait = options.retry_base_wait_s
        self._max_wait = options.retry_max_wait_s
        # credentials in extra_body are ${ENV_VAR} references (configs refuses literal ones): resolved only here
        self._extra_body, extra_secrets = resolve_option_refs(dict(options.extra_body), "options.extra_body")
        self._sleep = sleep
        # the options chat.completions.create passes to post; timeout_s per request, as models on one server differ
        self._request_options: dict[str, Any] = {"timeout": spec.timeout_s, "security": {"bearer_auth": True}}
        if self._extra_body:
            self._request_options["extra_json"] = self._extra_body
        self._extra_problem = unsendable(self._extra_body)
        # a backend given client= (tests) uses it unshared; the others share their server's (agents.servers)
        self._client = client
        self._address = server_address(spec) if client is None else None
        self._bound: dict[asyncio.AbstractEventLoop, tuple[asyncio.Semaphore, Server]] = {}
        # a server may echo the key back in an error body; it must never reach a stored message
        key = self._address.api_key if self._address is not None else getattr(client, "api_key", None)
        self._secrets = tuple(k for k in {key, *extra_secrets} if k and k != "not-needed")
        if self._address is not None:
            servers.join(self._address, self, spec.max_concurrency)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.spec.name!r}, model={self.spec.model!r})"

    def current_server(self) -> Server:
        """The :class:`~agents.servers.Server` (clients and in-flight limit) this backend's requests use on the
        running event loop; joins the server again if :meth:`aclose` left it."""
        return self._bind()[1]

    def _bind(self) -> tuple[asyncio.Semaphore, Server]:
        """This backend's own limiter and its server's, on the running loop (made on the loop's first request)."""
        loop = asyncio.get_running_loop()
        bound = self._bound.get(loop)
        if bound is None or bound[1].closed:
            for gone in [other for other in self._bound if other.is_closed()]:
                del self._bound[gone]
            own = asyncio.Semaphore(self.spec.max_concurrency)
            if self._address is None:
                address = ServerAddress(base_url=str(getattr(self._client, "base_url", "")), api_key="")
                server = Server(address, self.spec.max_concurrency, client=self._client)
            else:
                if not servers.is_member(self._address, self):
                    servers.join(self._address, self, self.spec.max_concurrency)
                server = servers.server_for(self._address)
            bound = self._bound[loop] = (own, server)
        return bound

    def _wait(self, exc: BaseException, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt``: the server's ``Retry-After``, else back-off."""
        requested = retry_after_seconds(exc)
        if requested is not None:
            return min(requested, self._max_wait)
        backoff = self._base_wait * (2 ** (attempt - 1))
        return min(self._max_wait, backoff * (0.5 + random.random() / 2))

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        """The request's JSON body, keys in the order ``chat.completions.create`` writes them (its parameter
        order); ``extra_body`` is merged by the client, after them, as ``create`` has it merged."""
        s = request.sampling
        body: dict[str, Any] = {"messages": _message_payload(request), "model": self.spec.model}
        if request.top_logprobs is not None:
            body["logprobs"] = True
        body[self._max_tokens_param] = s.max_tokens
        if request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": request.json_schema, "strict": True},
            }
        if s.seed is not None:
            body["seed"] = s.seed
        if s.stop:
            body["stop"] = list(s.stop)
        body["temperature"] = s.temperature
        if request.top_logprobs is not None and request.top_logprobs > 0:
            body["top_logprobs"] = request.top_logprobs
        body["top_p"] = s.top_p
        return body

    def _send(self, client: AsyncOpenAI, body: dict[str, Any]) -> Awaitable[ChatCompletion]:
        return client.post("/chat/completions", body=body, cast_to=ChatCompletion, options=self._request_options)

    @staticmethod
    def _parse(response: Any) -> Completion:
        choices = getattr(response, "choices", None)
        if not choices:
            raise BadResponse("the reply has no choices")
        choice = choices[0]
        message = getattr(choice, "message", None)
        finish = choice.finish_reason or "stop"
        text = getattr(message, "content", None)
        if text is None and finish != "content_filter":
            raise BadResponse("the reply's message has no content")
        logprobs = None
        content_logprobs = getattr(getattr(choice, "logprobs", None), "content", None)
        if content_logprobs:
            logprobs = [
                TokenLogprob(
                    token=t.token,
                    logprob=t.logprob,
                    top=[(alt.token, alt.logprob) for alt in (t.top_logprobs or [])],
                )
                for t in content_logprobs
            ]
        usage = getattr(response, "usage", None)
        return Completion(
            text=text or "",
            finish_reason=finish,
            usage=Usage(
                prompt_tokens=getattr(usage, "prompt_tokens", None),
                completion_tokens=getattr(usage, "completion_tokens", None),
            ),
            logprobs=logprobs,
        )

    async def _one(self, request: GenerationRequest) -> GenerationOutput:
        body = self._body(request)
        # a local fault: not the server's, and no retry fixes it
        if (problem := self._extra_problem or unsendable(body)) is not None:
            return CallFailure(failure=FailureKind.CLIENT_ERROR, message=problem, attempts=0)
        start = time.perf_counter()
        own, server = self._bind()
        async with own, server.limiter:  # its own limit first: a backend waiting on itself holds no server slot
            client = server.checkout()
            try:
                try:  # the first attempt runs bare: most calls succeed at once and need no retry state
                    completion = self._parse(await self._send(client, body))
                    attempts = 1
                except Exception as exc:  # every failure becomes a typed outcome, never a reply
                    outcome = await self._retry(client, body, exc)
                    if isinstance(outcome, CallFailure):
                        outcome.latency_s = time.perf_counter() - start
                        return outcome
                    completion, attempts = outcome
            finally:
                await server.checkin(client)
        completion.latency_s = time.perf_counter() - start
        completion.attempts = attempts
        return completion

    async def _retry(
        self, client: AsyncOpenAI, body: dict[str, Any], first: Exception
    ) -> tuple[Completion, int] | CallFailure:
        """Retries after a failed first attempt (tenacity), up to ``max_retries`` more; a typed failure at the end."""
        kind, retryable, status = classify(first)
        if not retryable or self.spec.max_retries == 0:
            return CallFailure(failure=kind, message=_describe(first, self._secrets), status_code=status, attempts=1)
        attempts = 1
        await self._sleep(self._wait(first, 1))
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.spec.max_retries),
            wait=lambda state: self._wait(state.outcome.exception(), state.attempt_number + 1),
            retry=retry_if_exception(lambda e: classify(e)[1]),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts = 1 + attempt.retry_state.attempt_number
                    completion = self._parse(await self._send(client, body))
        except Exception as exc:
            kind, _, status = classify(exc)
            message = _describe(exc, self._secrets)
            return CallFailure(failure=kind, message=message, status_code=status, attempts=attempts)
        return completion, attempts

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutput]:
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    async def aclose(self) -> None:
        """Leave the server (the last backend on it closes its clients); a given ``client=`` is closed."""
        self._bound.clear()
        if self._address is None:
            await self._client.close()
        else:
            await servers.leave(self._address, self)


def _describe(exc: BaseException, secrets: Sequence[str] = ()) -> str:
    """A one-line description of a failure, with any secret the server echoed masked."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    for secret in secrets:
        text = text.replace(secret, "***")
    return f"{type(exc).__name__}: {text}"[:500]
