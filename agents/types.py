"""What crosses the backend boundary: requests in, typed results out.

A backend never raises for a failed call: it returns a :class:`CallFailure` with a :class:`FailureKind`, so the
runner can store the failure as what it is and no failure is ever mistaken for a reply.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, field_validator, model_serializer


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class Sampling(BaseModel):
    """Sampling parameters of one call. ``seed`` makes sampling reproducible where the backend supports it."""

    model_config = ConfigDict(frozen=True)

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 128
    seed: int | None = None
    stop: tuple[str, ...] = ()


class GenerationRequest(BaseModel):
    """One chat call.

    Attributes:
        messages: the conversation, system prompt first.
        sampling: sampling parameters.
        json_schema: constrain the reply to this JSON schema (``response_format`` on OpenAI-compatible servers,
            guided decoding on vLLM); backends that cannot constrain ignore it and callers validate.
        top_logprobs: return this many alternatives per generated token (0 = only the chosen token's);
            ``None`` asks for no logprobs.
        choices: the first generated token must be one of these strings, each a single token of the model's
            vocabulary (a rating scale's ``"1"`` … ``"5"``). Only backends with ``supports_choices`` constrain
            (the embedded model masks the first step; vLLM offline whitelists the tokens with
            ``allowed_token_ids``, at every step); with logprobs asked for, the first token's alternatives are
            every choice, renormalised over the choices. A choice that is not one token fails the call as a
            ``client_error``. Other backends ignore the field (it is never sent to an OpenAI-compatible server),
            so callers still read the answer from the text. Left out of the request's dump, and so of its
            key, when unset: keys written before the field existed stay valid.
    """

    model_config = ConfigDict(frozen=True)

    messages: tuple[Message, ...]
    sampling: Sampling = Sampling()
    json_schema: dict[str, Any] | None = None
    top_logprobs: int | None = None
    choices: tuple[str, ...] | None = None

    @field_validator("choices")
    @classmethod
    def _distinct_nonempty_choices(cls, choices: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if choices is not None:
            if not choices:
                raise ValueError("choices must name at least one string (or be None for no constraint)")
            if any(not c for c in choices):
                raise ValueError("a choice cannot be the empty string")
            if len(set(choices)) != len(choices):
                raise ValueError(f"choices must be distinct, got {list(choices)}")
        return choices

    @model_serializer(mode="wrap")
    def _leave_out_unset_choices(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if self.choices is None:
            data.pop("choices", None)
        return data

    def key(self, model_identity: dict[str, Any]) -> str:
        """Content-addressed key of this call on a given model (the response cache's key)."""
        return request_keys([self], model_identity)[0]


class Usage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class TokenLogprob(BaseModel):
    token: str
    logprob: float
    top: list[tuple[str, float]] = Field(default_factory=list)


class Completion(BaseModel):
    """A reply. ``finish_reason`` is ``stop``, ``length`` or ``content_filter`` (as the server said)."""

    kind: Literal["completion"] = "completion"
    text: str
    finish_reason: str = "stop"
    usage: Usage = Usage()
    latency_s: float = 0.0
    attempts: int = 1
    logprobs: list[TokenLogprob] | None = None

    @property
    def outcome(self) -> str:
        return "content_filter" if self.finish_reason == "content_filter" else "ok"


class FailureKind(StrEnum):
    TIMEOUT = "timeout"
    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"
    CONNECTION_ERROR = "connection_error"
    BAD_RESPONSE = "bad_response"
    CLIENT_ERROR = "client_error"


class CallFailure(BaseModel):
    """A call that produced no usable reply, after the configured retries."""

    kind: Literal["failure"] = "failure"
    failure: FailureKind
    message: str
    status_code: int | None = None
    latency_s: float = 0.0
    attempts: int = 1

    @property
    def outcome(self) -> str:
        return self.failure.value


GenerationResult = Annotated[Completion | CallFailure, Field(discriminator="kind")]


# ``json.dumps`` with these arguments builds a new encoder per call; one shared encoder gives the same text
_KEY_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def content_key(payload: Any) -> str:
    """A stable 32-hex-digit key of any JSON-serialisable payload."""
    blob = _KEY_ENCODER.encode(payload)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def request_keys(requests: Sequence[GenerationRequest], model_identity: dict[str, Any]) -> list[str]:
    """``[r.key(model_identity) for r in requests]``, serialising and hashing the model's identity once.

    The key is ``content_key({"model": model_identity, "request": request.model_dump(mode="json")})``; with sorted
    keys that text is ``{"model":<identity>,"request":<request>}``, so the hash of the common prefix is computed
    once and copied for each request.
    """
    prefix = hashlib.sha256(f'{{"model":{_KEY_ENCODER.encode(model_identity)},"request":'.encode())
    keys = []
    for request in requests:
        digest = prefix.copy()
        digest.update(_KEY_ENCODER.encode(request.model_dump(mode="json")).encode("utf-8"))
        digest.update(b"}")
        keys.append(digest.hexdigest()[:32])
    return keys
