"""What crosses the backend boundary: requests in, typed results out.

A backend never raises for a failed call: it returns a :class:`CallFailure` with a :class:`FailureKind`, so the
runner can store the failure as what it is and no failure is ever mistaken for a reply.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    """

    model_config = ConfigDict(frozen=True)

    messages: tuple[Message, ...]
    sampling: Sampling = Sampling()
    json_schema: dict[str, Any] | None = None
    top_logprobs: int | None = None

    def key(self, model_identity: dict[str, Any]) -> str:
        """Content-addressed key of this call on a given model (the response cache's key)."""
        payload = {"model": model_identity, "request": self.model_dump(mode="json")}
        return content_key(payload)


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


def content_key(payload: Any) -> str:
    """A stable 32-hex-digit key of any JSON-serialisable payload."""
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]
