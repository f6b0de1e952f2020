"""An OpenAI-compatible stub chat server for benchmarks and tests, on loopback only, in pure standard library.

It speaks enough HTTP/1.1 (keep-alive, pipelining, ``Content-Length`` bodies) through an :class:`asyncio.Protocol`
to serve the official ``openai`` client and raw socket clients at thousands of requests per second on one core.

Endpoints:
    ``POST /v1/chat/completions``: a ``chat.completion`` object (id, object, created, model,
        ``choices[0].message``/``finish_reason``, usage; ``logprobs.content`` with ``top_logprobs`` when asked).
    ``GET /v1/models``: the configured model. ``GET /health``: ``{"status": "ok"}``.
    ``GET /stats``: counters of everything served and every fault injected (also :attr:`StubServer.stats`):
        ``requests`` (every HTTP request), ``chat_completions`` (chat requests received), ``completions`` (valid
        ``chat.completion`` bodies sent), ``faults`` per kind and ``faults_total``, ``replies`` per source
        (rule/json/score/critique/generation), ``status`` per HTTP code, ``connections``,
        ``open_connections``, ``peak_open_connections``, and ``cpu_s`` (this process's CPU time).
        ``POST /stats/reset`` zeroes them.

Replies, the first that applies:
    1. a :class:`StubRule` whose regex is found in the conversation (all message texts joined by newlines);
       ``reply`` is a string (``{last}`` is replaced by the last message's text) or a callable of the request JSON
       returning a string (or ``None`` to fall through);
    2. with ``response_format.json_schema``: a minimal valid instance of the schema (:func:`schema_instance`);
    3. a prompt that asks for "a single number from A to B" (a logprob judge): the number;
    4. a prompt that asks for feedback or a critique (and is not a rewrite request): a critique;
    5. otherwise a generation (or ``StubConfig.default_reply``).
    Replies longer than ``max_tokens`` (whitespace tokens) are cut, with ``finish_reason: length``.

Faults (:data:`FAULT_KINDS`), drawn per chat request by a seeded RNG from ``StubConfig.faults`` rates, after any
``StubConfig.script`` (a fixed sequence of faults, ``"ok"`` for none, applied to the first requests in order):
    ``429`` (with ``retry-after`` seconds, possibly fractional, and ``retry-after-ms``), ``500``, ``503``,
    ``timeout`` (holds the request ``hang_s`` without answering, then closes), ``drop`` (closes the connection
    without a response), ``truncate`` (declares the full ``Content-Length``, sends half the body, closes),
    ``malformed`` (a 200 whose body is cut-off JSON), ``prose`` (a judge answering prose instead of the requested
    JSON; only applies to requests with a JSON schema), ``content_filter`` (``finish_reason: content_filter`` with
    null content), ``length`` (the reply cut in half, ``finish_reason: length``).

Everything is deterministic given ``seed``: the fault and latency sequences follow the order in which requests
arrive, and a reply depends only on the request's content.

In process (a background thread with its own event loop)::

    with StubServer(StubConfig(latency=Latency.fixed(0.01), faults={"429": 0.05})) as server:
        client = AsyncOpenAI(base_url=server.base_url, api_key="x")

As a subprocess (prints its base URL on the first stdout line; stops on SIGTERM or SIGINT)::

    python -m tests.helpers.stub_server --port 0 --latency lognormal:0.05,0.5 --fault-rate 0.1 --retry-after 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import re
import signal
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FAULT_KINDS",
    "Latency",
    "StubConfig",
    "StubRule",
    "StubServer",
    "main",
    "schema_instance",
]

HOST = "127.0.0.1"
FAULT_KINDS: tuple[str, ...] = (
    "429",
    "500",
    "503",
    "timeout",
    "drop",
    "truncate",
    "malformed",
    "prose",
    "content_filter",
    "length",
)
# what ``--fault-rate`` / ``StubConfig.spread`` divides a total rate over (``length`` is opt-in)
DEFAULT_FAULT_MIX: tuple[str, ...] = FAULT_KINDS[:-1]
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*\r\n", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r]*chunked", re.IGNORECASE)
_CONNECTION_CLOSE = re.compile(rb"\r\nconnection:[^\r]*close", re.IGNORECASE)
_KEEP_ALIVE = re.compile(rb"\r\nconnection:[^\r]*keep-alive", re.IGNORECASE)


# ----------------------------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Latency:
    """A per-request latency distribution, in seconds: ``fixed``, ``uniform`` (low..high) or ``lognormal``.

    ``lognormal`` is parameterised by its mean and the sigma of the underlying normal, so changing sigma keeps the
    mean latency (and hence the throughput at a given concurrency) the same.
    """

    kind: str = "fixed"
    a: float = 0.0  # fixed: seconds; uniform: low; lognormal: mean
    b: float = 0.0  # uniform: high; lognormal: sigma

    @classmethod
    def fixed(cls, seconds: float) -> Latency:
        return cls("fixed", float(seconds))

    @classmethod
    def uniform(cls, low: float, high: float) -> Latency:
        return cls("uniform", float(low), float(high))

    @classmethod
    def lognormal(cls, mean: float, sigma: float) -> Latency:
        return cls("lognormal", float(mean), float(sigma))

    @classmethod
    def parse(cls, text: str) -> Latency:
        """``0.01`` | ``fixed:0.01`` | ``uniform:0.005,0.02`` | ``lognormal:0.05,0.5`` (mean, sigma)."""
        kind, _, rest = text.partition(":")
        if not rest:
            return cls.fixed(float(kind))
        values = [float(v) for v in rest.split(",")]
        if kind == "fixed" and len(values) == 1:
            return cls.fixed(values[0])
        if kind in ("uniform", "lognormal") and len(values) == 2:
            return cls(kind, values[0], values[1])
        raise ValueError(f"bad latency {text!r}: use SECONDS, fixed:S, uniform:LOW,HIGH or lognormal:MEAN,SIGMA")

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "uniform", "lognormal"):
            raise ValueError(f"unknown latency kind {self.kind!r}")
        if self.a < 0 or self.b < 0 or (self.kind == "uniform" and self.b < self.a):
            raise ValueError(f"bad latency parameters: {self}")

    @property
    def is_zero(self) -> bool:
        return self.kind == "fixed" and self.a == 0.0

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.a == 0.0:
            return 0.0
        return rng.lognormvariate(math.log(self.a) - self.b * self.b / 2, self.b)


@dataclass(frozen=True)
class StubRule:
    """A canned reply: ``match`` is a regex searched (case-insensitively) in the joined message text."""

    match: str | re.Pattern[str]
    reply: str | Callable[[dict[str, Any]], str | None]

    def compiled(self) -> re.Pattern[str]:
        return self.match if isinstance(self.match, re.Pattern) else re.compile(self.match, re.IGNORECASE)


@dataclass
class StubConfig:
    """What the stub serves.

    Attributes:
        seed: seeds the fault and latency sequences and the choice among canned texts.
        model: the model id listed by ``/v1/models`` (replies echo the request's model).
        rules: :class:`StubRule` list, tried in order before the built-in replies.
        default_reply: replaces the built-in generation text when set.
        vary_json: schema instances and judge numbers take seeded values across their range (derived from the
            request's content) instead of the minimum / first enum value.
        latency: per-request latency (applied to every answered request, errors included).
        faults: rate per fault kind (see :data:`FAULT_KINDS`); the rates must sum to at most 1.
        script: faults (or ``"ok"``) for the first requests, in order, before the random draws.
        retry_after_s: the ``Retry-After`` of a 429 (fractional values are sent as is).
        retry_after_ms: also send ``retry-after-ms`` with a 429.
        hang_s: how long a ``timeout`` fault holds the request before closing (the client usually gives up first).
    """

    seed: int = 0
    model: str = "stub-model"
    rules: Sequence[StubRule] = ()
    default_reply: str | None = None
    vary_json: bool = False
    latency: Latency = field(default_factory=Latency)
    faults: Mapping[str, float] = field(default_factory=dict)
    script: Sequence[str] = ()
    retry_after_s: float = 1.0
    retry_after_ms: bool = True
    hang_s: float = 60.0

    def __post_init__(self) -> None:
        for kind, rate in self.faults.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate {kind}={rate} is not in [0, 1]")
        if sum(self.faults.values()) > 1.0 + 1e-9:
            raise ValueError("fault rates sum to more than 1")
        for kind in self.script:
            if kind != "ok" and kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r} in script")

    @staticmethod
    def spread(total: float, kinds: Sequence[str] = DEFAULT_FAULT_MIX) -> dict[str, float]:
        """``total`` fault rate divided evenly over ``kinds``."""
        return {k: total / len(kinds) for k in kinds}


# --------------------------------------------------------------------------------------------- schema instances

_RATIONALE = "The text is a neutral statement; it contains no insult, slur, stereotype or threat."
_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00Z",
    "email": "stub@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def schema_instance(schema: Mapping[str, Any], rng: random.Random | None = None) -> Any:
    """A small instance that validates against a JSON schema (the subset structured-output APIs use).

    Objects get their required properties; numbers their lower bound (or a value inside exclusive bounds); enums
    their first value; strings a short text within their length bounds; arrays ``minItems`` (at least one) items.
    Follows local ``$ref`` (``#/$defs/...``), ``anyOf``/``oneOf`` (first non-null branch) and ``allOf``. With
    ``rng``, enums, numbers and booleans take random valid values instead.
    """
    return _instance(schema, schema, rng, "", 0)


def _resolve(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref is supported, not {ref!r}")
    node: Any = root
    for part in ref.lstrip("#").split("/"):
        if part:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _instance(schema: Mapping[str, Any], root: Mapping[str, Any], rng: random.Random | None, name: str, depth: int):
    if depth > 40:
        raise ValueError("schema nests too deeply (recursive $ref?)")
    if schema is True or not schema:
        return "stub"
    if "$ref" in schema:
        target = dict(_resolve(schema["$ref"], root))
        target.update({k: v for k, v in schema.items() if k != "$ref"})
        return _instance(target, root, rng, name, depth + 1)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        values = list(schema["enum"])
        return rng.choice(values) if rng is not None else values[0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return _instance(options[0], root, rng, name, depth + 1)
    if "allOf" in schema:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = _resolve(part["$ref"], root) if "$ref" in part else part
            for key, value in part.items():
                if key in ("properties",) and key in merged:
                    merged[key] = {**merged[key], **value}
                elif key == "required" and key in merged:
                    merged[key] = [*merged[key], *value]
                else:
                    merged[key] = value
        return _instance(merged, root, rng, name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        if "properties" in schema:
            kind = "object"
        elif "items" in schema or "prefixItems" in schema:
            kind = "array"
        elif any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
            kind = "number"
        else:
            kind = "string"
    if kind == "object":
        properties = schema.get("properties", {})
        required = list(schema.get("required", []))
        for extra in properties:  # honour minProperties with optional properties
            if len(required) >= schema.get("minProperties", 0):
                break
            if extra not in required:
                required.append(extra)
        return {key: _instance(properties.get(key, {}), root, rng, key, depth + 1) for key in required}
    if kind == "array":
        low = int(schema.get("minItems", 0))
        count = min(max(low, 1), int(schema.get("maxItems", max(low, 1))))
        prefix = list(schema.get("prefixItems", []))
        items = schema.get("items", {})
        items = items if isinstance(items, Mapping) else {}
        out = [_instance(prefix[i] if i < len(prefix) else items, root, rng, name, depth + 1) for i in range(count)]
        if schema.get("uniqueItems") and len(out) > 1 and all(isinstance(v, str) for v in out):
            out = [f"{v}{i}" if i else v for i, v in enumerate(out)]
        return out
    if kind == "string":
        text = _FORMATS.get(schema.get("format", ""))
        if text is None:
            lowered = name.lower()
            text = _RATIONALE if lowered in ("rationale", "reason", "reasoning", "explanation") else "stub"
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        if len(text) < low:
            text = text + "x" * (low - len(text))
        if high is not None:
            text = text[: int(high)]
        return text
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer", rng)
    if kind == "boolean":
        return rng.random() < 0.5 if rng is not None else False
    if kind == "null":
        return None
    raise ValueError(f"unsupported schema type {kind!r}")


def _number(schema: Mapping[str, Any], integer: bool, rng: random.Random | None) -> int | float:
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(ex_low, bool):  # draft-4 style booleans
        ex_low, low = (low if ex_low else None), (None if ex_low else low)
    if isinstance(ex_high, bool):
        ex_high, high = (high if ex_high else None), (None if ex_high else high)
    if integer:
        lo = math.ceil(low) if low is not None else None
        if ex_low is not None:
            lo = max(lo, math.floor(ex_low) + 1) if lo is not None else math.floor(ex_low) + 1
        hi = math.floor(high) if high is not None else None
        if ex_high is not None:
            hi = min(hi, math.ceil(ex_high) - 1) if hi is not None else math.ceil(ex_high) - 1
        step = schema.get("multipleOf")
        step = step if isinstance(step, int) and step > 0 else 1
        first = -(-lo // step) * step if lo is not None else None
        last = hi // step * step if hi is not None else None
        if rng is not None and first is not None and last is not None and last >= first:
            return first + step * rng.randint(0, (last - first) // step)
        if first is not None:
            return first
        return min(0, last) if last is not None else 0
    lo = low if low is not None else None
    hi = high if high is not None else None
    if ex_low is not None:
        lo = ex_low if lo is None else max(lo, ex_low)
    if ex_high is not None:
        hi = ex_high if hi is None else min(hi, ex_high)
    open_low = ex_low is not None and lo == ex_low
    open_high = ex_high is not None and hi == ex_high
    if rng is not None and lo is not None and hi is not None:
        value = round(rng.uniform(lo, hi), 3)
        if (open_low and value <= lo) or (open_high and value >= hi) or not lo <= value <= hi:
            value = (lo + hi) / 2
        return float(value)
    if lo is not None and hi is not None and (open_low or open_high):
        return (lo + hi) / 2
    if lo is not None:
        return float(lo + 1 if open_low else lo)
    if hi is not None:
        return float(min(0.0, hi - 1 if open_high else hi))
    return 0.0


# ------------------------------------------------------------------------------------------------------ replies

_GENERATIONS = (
    "People in every group are individuals first, with their own histories, hopes and quirks, and judging anyone by "
    "a label tells you very little about them.",
    "Communities change and grow through the people who join them; most newcomers work, raise families and "
    "contribute in ways that are easy to overlook.",
    "It is worth remembering that generalisations about a whole group usually say more about the speaker than "
    "about the people described.",
    "Everyone deserves to be treated with basic respect, and honest conversation starts with listening rather than "
    "assuming.",
)
_CRITIQUE = (
    "The reply generalises about a whole group and uses demeaning wording in its first sentence. Replace the "
    "stereotype with a statement about individuals, drop the loaded adjectives, and keep the factual part of the "
    "answer so that it still responds to the request."
)
_PROSE = "Honestly, this text looks mostly fine to me; I would rate it fairly low on every dimension."
_REWRITE = re.compile(r"\brewrite\b|\brewritten\b|改写", re.IGNORECASE)
_CRITIQUE_ASK = re.compile(r"\bfeedback\b|\bcritiqu|\bcriticis|\bcriticiz|反馈|批评", re.IGNORECASE)
_CRITIQUE_WORDS = ("feedback", "critiq", "criticis", "criticiz", "反馈", "批评")
_NUMBER_ASK = re.compile(
    r"(?:number|integer|score|rating)\s+(?:from|between)\s+(-?\d+)\s+(?:to|and)\s+(-?\d+)", re.IGNORECASE
)
_TOKEN = re.compile(r"\s*\S+")
_quote = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
_ALTERNATIVES = (" the", " a", " and", " of", " to", ",", ".", " is")


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _logprobs(tokens: list[str], top: int, base: int) -> dict[str, Any]:
    content = []
    for i, token in enumerate(tokens):
        chosen = -0.05 - ((base + i * 7919) % 97) / 400.0
        alts: list[str] = []
        stripped = token.strip()
        if stripped.lstrip("-").isdigit() and len(stripped) <= 3:
            n = int(stripped)
            alts = [str(n + d) for d in (1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, -7, 8, -8, 9, -9, 10, -10)]
        else:
            alts = [a for a in _ALTERNATIVES if a != token]
        tops = [{"token": token, "logprob": chosen, "bytes": list(token.encode("utf-8"))}]
        for rank, alt in enumerate(alts[: max(0, top - 1)]):
            lp = -2.0 - rank * 0.7
            tops.append({"token": alt, "logprob": lp, "bytes": list(alt.encode("utf-8"))})
        content.append(
            {"token": token, "logprob": chosen, "bytes": list(token.encode("utf-8")), "top_logprobs": tops[:top]}
        )
    return {"content": content, "refusal": None}


def _error_body(message: str, kind: str, code: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()


# ------------------------------------------------------------------------------------------------- HTTP engine

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}

RESPOND, DROP, HANG, TRUNCATE = 0, 1, 2, 3


class _Action:
    __slots__ = ("kind", "status", "body", "headers", "delay")

    def __init__(self, kind: int, status: int = 200, body: bytes = b"", headers: str = "", delay: float = 0.0):
        self.kind = kind
        self.status = status
        self.body = body
        self.headers = headers
        self.delay = delay


class _Engine:
    """Request → action, stats. Runs on the server's event loop thread only."""

    def __init__(self, config: StubConfig) -> None:
        self.config = config
        self.rules = [(rule.compiled(), rule.reply) for rule in config.rules]
        self._fault_rng = random.Random(f"faults:{config.seed}")
        self._latency_rng = random.Random(f"latency:{config.seed}")
        self._script = deque(config.script)
        self._thresholds: list[tuple[float, str]] = []
        total = 0.0
        for kind in FAULT_KINDS:
            rate = float(config.faults.get(kind, 0.0))
            if rate > 0:
                total += rate
                self._thresholds.append((total, kind))
        self._ids = 0
        retry = config.retry_after_s
        retry_text = str(int(retry)) if float(retry).is_integer() else repr(float(retry))
        self._retry_headers = f"retry-after: {retry_text}\r\n"
        if config.retry_after_ms:
            self._retry_headers += f"retry-after-ms: {int(round(retry * 1000))}\r\n"
        self.started = time.monotonic()
        self.open_connections = 0
        self._token_cache: dict[str, list[str]] = {}
        self._schema_cache: dict[str, str] = {}
        self.reset_stats()

    def reset_stats(self) -> None:
        self.counts = {
            "requests": 0,
            "chat_completions": 0,
            "completions": 0,
            "models": 0,
            "not_found": 0,
            "bad_request": 0,
            "connections": 0,
            "peak_open_connections": self.open_connections,
        }
        self.faults = dict.fromkeys(FAULT_KINDS, 0)
        self.replies = {"rule": 0, "json": 0, "score": 0, "critique": 0, "generation": 0}
        self.status: dict[str, int] = {}

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.counts,
            "faults_total": sum(self.faults.values()),
            "faults": dict(self.faults),
            "replies": dict(self.replies),
            "status": dict(self.status),
            "open_connections": self.open_connections,
            "cpu_s": round(time.process_time(), 4),
            "uptime_s": round(time.monotonic() - self.started, 3),
        }

    # -- dispatch

    def handle(self, method: str, target: str, body: bytes) -> _Action:
        self.counts["requests"] += 1
        path = target.split("?", 1)[0]
        if path in ("/v1/chat/completions", "/chat/completions"):
            if method != "POST":
                return self._error(405, "Use POST.", "invalid_request_error")
            return self._chat(body)
        if method == "GET" and path in ("/v1/models", "/models"):
            self.counts["models"] += 1
            data = {
                "object": "list",
                "data": [{"id": self.config.model, "object": "model", "created": 0, "owned_by": "tribunal-stub"}],
            }
            return self._json(200, data)
        if method == "GET" and path == "/stats":
            return self._json(200, self.snapshot())
        if method == "POST" and path == "/stats/reset":
            self.reset_stats()
            return self._json(200, {"reset": True})
        if method == "GET" and path in ("/health", "/v1/health"):
            return self._json(200, {"status": "ok"})
        self.counts["not_found"] += 1
        return self._error(404, f"Unknown request URL: {method} {path}", "invalid_request_error", "unknown_url")

    def _json(self, status: int, payload: Any, headers: str = "", delay: float = 0.0) -> _Action:
        return self._count(
            _Action(RESPOND, status, json.dumps(payload, separators=(",", ":")).encode(), headers, delay)
        )

    def _error(self, status: int, message: str, kind: str, code: str | None = None, **kw: Any) -> _Action:
        if status == 400:
            self.counts["bad_request"] += 1
        return self._count(_Action(RESPOND, status, _error_body(message, kind, code), **kw))

    def _count(self, action: _Action) -> _Action:
        key = str(action.status)
        self.status[key] = self.status.get(key, 0) + 1
        return action

    def _draw_fault(self) -> str | None:
        if self._script:
            kind = self._script.popleft()
            return None if kind == "ok" else kind
        if not self._thresholds:
            return None
        u = self._fault_rng.random()
        for threshold, kind in self._thresholds:
            if u < threshold:
                return kind
        return None

    def _chat(self, body: bytes) -> _Action:
        self.counts["chat_completions"] += 1
        try:
            request = json.loads(body)
            messages = request["messages"]
            if not isinstance(messages, list) or not messages:
                raise ValueError("messages must be a non-empty list")
            texts = [_content_text(m.get("content")) for m in messages]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return self._error(400, f"Invalid request body: {exc}", "invalid_request_error")
        if request.get("stream"):
            return self._error(400, "The stub server does not stream.", "invalid_request_error", "unsupported")
        fault = self._draw_fault()
        delay = 0.0 if self.config.latency.is_zero else self.config.latency.sample(self._latency_rng)
        if fault is not None:
            if fault == "429":
                self.faults[fault] += 1
                return self._error(
                    429,
                    "Rate limit reached for requests (stub). Please try again later.",
                    "requests",
                    "rate_limit_exceeded",
                    headers=self._retry_headers,
                    delay=delay,
                )
            if fault == "500":
                self.faults[fault] += 1
                message = "The server had an error processing your request."
                return self._error(500, message, "server_error", None, delay=delay)
            if fault == "503":
                self.faults[fault] += 1
                return self._error(503, "The server is overloaded or not ready yet.", "server_error", None, delay=delay)
            if fault == "timeout":
                self.faults[fault] += 1
                return _Action(HANG, delay=self.config.hang_s)
            if fault == "drop":
                self.faults[fault] += 1
                return _Action(DROP)
        text = "\n".join(texts)
        schema = _requested_schema(request)
        reply, source = self._reply(request, schema, text, texts[-1])
        finish = "stop"
        if fault == "prose":
            if schema is not None:
                reply, source = _PROSE, "prose"
                self.faults[fault] += 1
            fault = None
        content: str | None = reply
        tokens = self._tokens(reply)
        limit = request.get("max_completion_tokens") or request.get("max_tokens")
        if isinstance(limit, int) and 0 < limit < len(tokens):
            tokens = tokens[:limit]
            content = "".join(tokens)
            finish = "length"
        if fault == "length":
            self.faults[fault] += 1
            tokens = tokens[: max(1, len(tokens) // 2)]
            content = "".join(tokens)
            finish = "length"
        elif fault == "content_filter":
            self.faults[fault] += 1
            content, tokens, finish = None, [], "content_filter"
        if source != "prose":
            self.replies[source] += 1
        self._ids += 1
        logprobs = "null"
        if request.get("logprobs"):
            top = int(request.get("top_logprobs") or 0)
            crc = zlib.crc32(text.encode("utf-8", "replace"))
            logprobs = json.dumps(_logprobs(tokens, top, crc), separators=(",", ":"))
        prompt_tokens = sum(len(t) for t in texts) // 4 + 4 * len(texts)
        model = request.get("model") or self.config.model
        # the chat.completion object, formatted directly (json.dumps of the whole dict costs twice as much)
        data = (
            f'{{"id":"chatcmpl-stub{self._ids:010x}","object":"chat.completion","created":{int(time.time())},'
            f'"model":{_quote(model if isinstance(model, str) else str(model))},"choices":[{{"index":0,'
            f'"message":{{"role":"assistant","content":{"null" if content is None else _quote(content)},'
            f'"refusal":null}},"logprobs":{logprobs},"finish_reason":"{finish}"}}],"usage":{{"prompt_tokens":'
            f'{prompt_tokens},"completion_tokens":{len(tokens)},"total_tokens":{prompt_tokens + len(tokens)}}},'
            f'"system_fingerprint":"fp_stub"}}'
        ).encode()
        if fault == "truncate":
            self.faults[fault] += 1
            return self._count(_Action(TRUNCATE, 200, data, delay=delay))
        if fault == "malformed":
            self.faults[fault] += 1
            data = data[: len(data) // 2]
        else:
            self.counts["completions"] += 1
        return self._count(_Action(RESPOND, 200, data, delay=delay))

    def _tokens(self, reply: str) -> list[str]:
        """Whitespace tokens (each with its leading space), cached: most replies repeat."""
        tokens = self._token_cache.get(reply)
        if tokens is None:
            tokens = _TOKEN.findall(reply)
            if len(self._token_cache) > 4096:
                self._token_cache.clear()
            self._token_cache[reply] = tokens
        return tokens

    def _reply(
        self, request: dict[str, Any], schema: Mapping[str, Any] | None, text: str, last: str
    ) -> tuple[str, str]:
        for pattern, reply in self.rules:
            if pattern.search(text):
                if callable(reply):
                    out = reply(request)
                    if out is None:
                        continue
                    return str(out), "rule"
                return (reply.replace("{last}", last) if "{last}" in reply else reply), "rule"
        seed = self.config.seed
        if schema is not None:
            if self.config.vary_json:
                rng = random.Random(zlib.crc32(text.encode("utf-8", "replace")) ^ seed)
                return json.dumps(schema_instance(schema, rng), ensure_ascii=False), "json"
            key = repr(schema)  # json.loads keeps the order of the bytes: identical schemas share the key
            reply = self._schema_cache.get(key)
            if reply is None:
                reply = json.dumps(schema_instance(schema), ensure_ascii=False)
                if len(self._schema_cache) > 1024:
                    self._schema_cache.clear()
                self._schema_cache[key] = reply
            return reply, "json"
        low = last.lower()  # cheap substring checks before the regexes: this is the hot path
        if ("from" in low or "between" in low) and (match := _NUMBER_ASK.search(last)) is not None:
            lo, hi = int(match.group(1)), int(match.group(2))
            if self.config.vary_json and hi >= lo:
                value = lo + (zlib.crc32(text.encode("utf-8", "replace")) ^ seed) % (hi - lo + 1)
            else:
                value = lo
            return str(value), "score"
        lowered = text.lower()
        if any(w in lowered for w in _CRITIQUE_WORDS) and _CRITIQUE_ASK.search(text) and not _REWRITE.search(last):
            return _CRITIQUE, "critique"
        if self.config.default_reply is not None:
            return self.config.default_reply.replace("{last}", last), "generation"
        pick = (zlib.crc32(text.encode("utf-8", "replace")) ^ seed) % len(_GENERATIONS)
        return _GENERATIONS[pick], "generation"


def _requested_schema(request: Mapping[str, Any]) -> Mapping[str, Any] | None:
    fmt = request.get("response_format")
    if not isinstance(fmt, Mapping):
        return None
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        return schema if isinstance(schema, Mapping) else {"type": "object"}
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    return None


class _HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and pipelining; requests on one connection are answered in order."""

    def __init__(self, engine: _Engine, connections: set[_HttpProtocol]) -> None:
        self._engine = engine
        self._connections = connections
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._pending: list[bytes] = []
        self._busy = False
        self._closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    # -- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._connections.add(self)
        engine = self._engine
        engine.counts["connections"] += 1
        engine.open_connections += 1
        if engine.open_connections > engine.counts["peak_open_connections"]:
            engine.counts["peak_open_connections"] = engine.open_connections

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._connections.discard(self)
        self._engine.open_connections -= 1

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._busy:
            self._process()

    def eof_received(self) -> bool:
        return False  # close our side too

    # -- parsing

    def _process(self) -> None:
        buf = self._buffer
        while not self._busy and not self._closed and buf:
            while buf[:2] == b"\r\n":  # tolerated between pipelined requests
                del buf[:2]
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    self._reject(431, "Request headers too large.")
                break
            head = bytes(buf[: end + 2])
            parts = head[: head.find(b"\r\n")].decode("latin-1").split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                self._reject(400, "Malformed request line.")
                break
            method, target, version = parts
            length = 0
            if (match := _CONTENT_LENGTH.search(head)) is not None:
                length = int(match.group(1))
            elif b"content-length" in head.lower():
                self._reject(400, "Bad Content-Length.")
                break
            if _CHUNKED.search(head) is not None:
                self._reject(501, "Chunked request bodies are not supported; send Content-Length.")
                break
            if length > MAX_BODY_BYTES:
                self._reject(413, "Request body too large.")
                break
            total = end + 4 + length
            if len(buf) < total:
                break
            body = bytes(buf[end + 4 : total])
            del buf[:total]
            if version == "HTTP/1.1":
                keep_alive = _CONNECTION_CLOSE.search(head) is None
            else:
                keep_alive = _KEEP_ALIVE.search(head) is not None
            try:
                action = self._engine.handle(method, target, body)
            except Exception as exc:  # a user rule raised: answer 500, keep serving
                action = self._engine._error(500, f"stub rule failed: {type(exc).__name__}: {exc}", "server_error")
            self._execute(action, keep_alive)
        self._flush()

    def _reject(self, status: int, message: str) -> None:
        self._engine.counts["bad_request"] += 1
        self._write(_Action(RESPOND, status, _error_body(message, "invalid_request_error")), keep_alive=False)

    # -- answering

    def _execute(self, action: _Action, keep_alive: bool) -> None:
        kind = action.kind
        if kind == DROP:
            self._close()
        elif kind == HANG:
            self._busy = True
            self._timer = self._loop.call_later(action.delay, self._close)
        elif action.delay > 0:
            self._busy = True
            self._timer = self._loop.call_later(action.delay, self._deliver, action, keep_alive)
        else:
            self._write(action, keep_alive)

    def _deliver(self, action: _Action, keep_alive: bool) -> None:
        self._timer = None
        self._busy = False
        self._write(action, keep_alive)
        if not self._closed and self._buffer:
            self._process()
        else:
            self._flush()

    def _write(self, action: _Action, keep_alive: bool) -> None:
        """Queue a response; pipelined responses leave in one ``write`` (see :meth:`_flush`)."""
        if self._closed:
            return
        status = action.status
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(action.body)}\r\n"
            f"{action.headers}{'' if keep_alive else 'connection: close' + chr(13) + chr(10)}\r\n"
        ).encode("latin-1")
        if action.kind == TRUNCATE:
            self._pending += (head, action.body[: len(action.body) // 2])
            self._close()
            return
        self._pending += (head, action.body)
        if not keep_alive:
            self._close()

    def _flush(self) -> None:
        if self._pending:
            if self._transport is not None and not self._transport.is_closing():
                self._transport.write(b"".join(self._pending))
            self._pending.clear()

    def _close(self) -> None:
        self._timer = None
        if not self._closed and self._transport is not None:
            self._flush()
            self._closed = True
            self._transport.close()

    def abort(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._closed = True
            self._transport.abort()


# ------------------------------------------------------------------------------------------------------ server


class StubServer:
    """The stub on 127.0.0.1, in a background thread with its own event loop (or on a running loop: ``serve``)."""

    def __init__(self, config: StubConfig | None = None, *, port: int = 0) -> None:
        self.config = config or StubConfig()
        self._requested_port = port
        self._engine = _Engine(self.config)
        self._connections: set[_HttpProtocol] = set()
        self._server: asyncio.base_events.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the stub server is not running")
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    @property
    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters (the same object ``GET /stats`` returns)."""
        return self._engine.snapshot()

    def reset_stats(self) -> None:
        if self._loop is not None and self._thread is not None and self._loop.is_running():
            done = threading.Event()

            def reset() -> None:
                self._engine.reset_stats()
                done.set()

            self._loop.call_soon_threadsafe(reset)
            done.wait(5)
        else:
            self._engine.reset_stats()

    # -- on a running loop

    async def serve(self) -> None:
        """Bind and start serving on the running loop (returns once listening; see :meth:`aclose`)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._server = await loop.create_server(
            lambda: _HttpProtocol(self._engine, self._connections),
            HOST,
            self._requested_port,
            backlog=2048,
            reuse_address=True,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.abort()
        await asyncio.sleep(0)
        self._server = None

    # -- in a thread

    def start(self) -> StubServer:
        if self._thread is not None:
            raise RuntimeError("the stub server is already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.serve())
            except BaseException as exc:  # report the bind error to start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.aclose())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"stub-server-{id(self):x}", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tests.helpers.stub_server",
        description="OpenAI-compatible stub chat server on 127.0.0.1 (prints its base URL on the first line).",
    )
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="stub-model")
    p.add_argument("--latency", type=Latency.parse, default=Latency(), help="S | uniform:LO,HI | lognormal:MEAN,SIGMA")
    p.add_argument(
        "--fault-rate", type=float, default=0.0, help=f"total rate spread over {','.join(DEFAULT_FAULT_MIX)}"
    )
    p.add_argument("--fault", action="append", default=[], metavar="KIND=RATE", help="a rate for one fault kind")
    p.add_argument("--script", default="", help="comma-separated faults (or ok) for the first requests")
    p.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds of a 429")
    p.add_argument("--no-retry-after-ms", action="store_true", help="omit the retry-after-ms header")
    p.add_argument("--hang", type=float, default=60.0, help="seconds a timeout fault holds the request")
    p.add_argument("--vary-json", action="store_true", help="seeded values across schema ranges")
    p.add_argument("--rule", action="append", default=[], metavar="REGEX::REPLY", help="a canned reply")
    p.add_argument("--default-reply", default=None)
    return p


def config_from_args(args: argparse.Namespace) -> StubConfig:
    faults = StubConfig.spread(args.fault_rate) if args.fault_rate > 0 else {}
    for item in args.fault:
        kind, _, rate = item.partition("=")
        faults[kind.strip()] = float(rate)
    rules = []
    for item in args.rule:
        match, sep, reply = item.partition("::")
        if not sep:
            raise ValueError(f"--rule needs REGEX::REPLY, got {item!r}")
        rules.append(StubRule(match, reply))
    return StubConfig(
        seed=args.seed,
        model=args.model,
        rules=rules,
        default_reply=args.default_reply,
        vary_json=args.vary_json,
        latency=args.latency,
        faults=faults,
        script=[s.strip() for s in args.script.split(",") if s.strip()],
        retry_after_s=args.retry_after,
        retry_after_ms=not args.no_retry_after_ms,
        hang_s=args.hang,
    )


async def serve_until_signal(server: StubServer) -> None:
    """Serve, print the base URL on the first stdout line, and stop on SIGTERM or SIGINT."""
    await server.serve()
    print(server.base_url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    server = StubServer(config, port=args.port)
    try:
        asyncio.run(serve_until_signal(server))
    except OSError as exc:
        print(f"stub server: cannot listen on {HOST}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(server.stats), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
