"""What crosses the backend boundary: requests in, typed results out.

A backend never raises for a failed call: it returns a :class:`CallFailure` with a :class:`FailureKind`, so the
runner can store the failure as what it is and no failure is ever mistaken for a reply.
"""

from __future__ import annotations

import hashlib
import json
import math
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


def _refuse(value: Any) -> Any:
    raise TypeError(f"not plain JSON: {type(value).__name__}")


#: The same text as :data:`_KEY_ENCODER` for plain JSON data; anything that is not plain JSON (a set, bytes, a
#: NaN, an object) raises instead, and the caller takes the exact path (pydantic's dump, then the key encoder).
_PLAIN_ENCODER = json.JSONEncoder(
    sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_refuse
)
#: ``json``'s own string encoder (C), the one :data:`_KEY_ENCODER` applies to every string (``ensure_ascii=False``)
_quote = json.encoder.encode_basestring


def content_key(payload: Any) -> str:
    """A stable 32-hex-digit key of any JSON-serialisable payload."""
    return text_key(_KEY_ENCODER.encode(payload))


def text_key(text: str) -> str:
    """:func:`content_key` of a payload whose key text is already written (sorted keys, no spaces, as
    :data:`_KEY_ENCODER` writes it): the fast paths that write a key's text directly hash it here."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def plain_sampling(sampling: Sampling) -> bool:
    """Every value of ``sampling`` has its plain type (finite floats, ints, a tuple of str): the fast paths that
    write its JSON directly (request keys, the stored ``params``) may; otherwise they take pydantic's dump."""
    temperature, top_p, stop = sampling.temperature, sampling.top_p, sampling.stop
    return (
        type(temperature) is float
        and type(top_p) is float
        and math.isfinite(temperature)
        and math.isfinite(top_p)
        and type(sampling.max_tokens) is int
        and (sampling.seed is None or type(sampling.seed) is int)
        and type(stop) is tuple
        and all(type(s) is str for s in stop)
    )


def _message_text(message: Message) -> str:
    """The key text of one message, ``{"content":…,"role":…}`` (exact path for values that are not plain str)."""
    role, content = message.role, message.content
    if type(role) is not str or type(content) is not str:
        return _KEY_ENCODER.encode(message.model_dump(mode="json"))
    return f'{{"content":{_quote(content)},"role":{_quote(role)}}}'


def _messages(messages: tuple[Message, ...], seen: dict[int, str]) -> list[str]:
    """The key texts of ``messages``; ``seen`` (one batch's, whose requests are all alive meanwhile, so an id
    names one object) keeps a text per message object: a judge's system message is shared by its whole batch."""
    texts = []
    for message in messages:
        text = seen.get(id(message))
        if text is None:
            text = seen[id(message)] = _message_text(message)
        texts.append(text)
    return texts


def _sampling_text(sampling: Sampling) -> str | None:
    """The key text of ``sampling`` (as :meth:`Sampling.model_dump` then the key encoder give it), or ``None``
    when a value is not of its plain type (then the caller takes the exact path)."""
    if not plain_sampling(sampling):
        return None
    temperature, top_p, max_tokens, seed, stop = (
        sampling.temperature, sampling.top_p, sampling.max_tokens, sampling.seed, sampling.stop
    )  # fmt: skip
    return (
        f'{{"max_tokens":{max_tokens},"seed":{"null" if seed is None else seed},'
        f'"stop":[{",".join(map(_quote, stop))}],"temperature":{temperature!r},"top_p":{top_p!r}}}'
    )


_LEAVES = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> bool:
    """Whether ``value`` is JSON made of exactly dicts with ``str`` keys, lists, tuples, str, int, float, bool and
    None. Anything else takes the exact path: pydantic's dump turns other keys into strings (``2`` → ``"2"``,
    ``None`` → ``"None"``, which sort and read differently from what the encoder writes) and other values into
    what it chooses."""
    if type(value) is not dict and type(value) is not list and type(value) is not tuple:
        return type(value) in _LEAVES
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            for key in item:
                if type(key) is not str:
                    return False
            item = item.values()
        for inner in item:
            kind = type(inner)
            if kind is dict or kind is list or kind is tuple:
                stack.append(inner)
            elif kind not in _LEAVES:
                return False
    return True


def _schema_text(schema: dict[str, Any] | None, schemas: dict[tuple[tuple[str, int], ...], str | None]) -> str | None:
    """The key text of a plain schema, else ``None``. ``schemas`` (one batch's) keeps it by the schema's entries
    and the ids of their values: a judge's requests each hold a shallow copy of its one schema (pydantic copies
    the dict), so their values are the same objects, alive and unchanged while the batch is keyed."""
    if schema is None:
        return "null"
    entries = tuple((key, id(value)) for key, value in schema.items())
    if entries in schemas:
        return schemas[entries]
    try:
        text = _PLAIN_ENCODER.encode(schema) if _plain(schema) else None
    except (TypeError, ValueError):  # a NaN or an infinity
        text = None
    schemas[entries] = text
    return text


def _request_text(
    request: GenerationRequest, seen: dict[int, str], schemas: dict[tuple[tuple[str, int], ...], str | None]
) -> str:
    """``_KEY_ENCODER.encode(request.model_dump(mode="json"))``, without building the dump.

    With sorted keys the text is ``{["choices":…,]"json_schema":…,"messages":[…],"sampling":{…},
    "top_logprobs":…}``; each part is written directly where its values are plain, else the exact path is taken
    for the whole request, so the text is the same in every case (checked in ``tests/agents/test_request_keys.py``).
    """
    sampling = _sampling_text(request.sampling)
    top, choices, schema = request.top_logprobs, request.choices, request.json_schema
    if (
        sampling is not None
        and (top is None or type(top) is int)
        and (choices is None or (type(choices) is tuple and all(type(c) is str for c in choices)))
        and type(request.messages) is tuple
    ):
        schema_text = _schema_text(schema, schemas)
        if schema_text is not None:
            head = "{" if choices is None else f'{{"choices":[{",".join(map(_quote, choices))}],'
            return (
                f'{head}"json_schema":{schema_text},"messages":[{",".join(_messages(request.messages, seen))}],'
                f'"sampling":{sampling},"top_logprobs":{"null" if top is None else top}}}'
            )
    return _KEY_ENCODER.encode(request.model_dump(mode="json"))


def request_keys(requests: Sequence[GenerationRequest], model_identity: dict[str, Any]) -> list[str]:
    """``[r.key(model_identity) for r in requests]``, serialising and hashing the model's identity once.

    The key is ``content_key({"model": model_identity, "request": request.model_dump(mode="json")})``; with sorted
    keys that text is ``{"model":<identity>,"request":<request>}``, so the hash of the common prefix is computed
    once and copied for each request, and each request's text is written without building its dump
    (:func:`_request_text`).
    """
    prefix = hashlib.sha256(f'{{"model":{_KEY_ENCODER.encode(model_identity)},"request":'.encode())
    keys: list[str] = []
    seen: dict[int, str] = {}
    schemas: dict[tuple[tuple[str, int], ...], str | None] = {}
    for request in requests:
        digest = prefix.copy()
        digest.update(_request_text(request, seen, schemas).encode("utf-8"))
        digest.update(b"}")
        keys.append(digest.hexdigest()[:32])
    return keys
