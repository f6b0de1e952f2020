"""LLM judges on any backend: schema-constrained JSON, or a probability-weighted rating scale from logprobs.

``mode: json`` (default)
    One request per text asks for ``{"rationale": ..., <dimension>: <value>, ...}``. The rubric's JSON schema is
    sent with the request (``response_format`` on OpenAI-compatible servers, guided decoding on vLLM); backends that
    cannot constrain output ignore it, so every reply is parsed and validated with pydantic here. A reply that does
    not validate is re-asked once, quoting the validation error; a second failure is ``parse_error``.
``mode: logprobs`` (G-Eval style)
    One request per text and dimension asks for a single number on the rubric's scale, with ``top_logprobs``. The
    score is the probability-weighted mean over the scale's tokens at the first scale token of the reply,
    :math:`E = \\sum_v p(v)\\,v / \\sum_v p(v)`, normalised to 0–1 (Liu et al. 2023, "G-Eval"). When the backend
    returns no logprobs the number in the text is used as is.

    On a backend that can constrain decoding (``supports_choices``: the embedded model, vLLM offline) the request
    also sends the scale's values as ``choices`` (``"1"`` … ``"5"``) with ``max_tokens`` 1: the first token is
    always a scale value and its alternatives are all of them, so the judge always scores (``scale`` says
    ``constrained``), even a small model that would otherwise write prose. OpenAI-compatible servers are sent
    the same request as before (``choices`` never goes on the wire) and the number is read from the reply.
    ``constrain: false`` turns this off, to audit the model as a free-form judge.

Outcomes are typed: a backend timeout is ``timeout``; 5xx, rate limiting, dropped connections, malformed bodies
and client errors are ``server_error``; a ``content_filter`` finish is ``content_filter``; a reply cut at
``max_tokens`` that does not parse is ``truncated``; a judge that declines to rate is ``refusal``.

The rated text is wrapped in ``<data>…</data>`` and the request it answers in ``<request>…</request>``, both
quoted with :func:`agents.model_text.quote_as_data` (no spelling of a block tag inside them survives), and the
system prompt says that nothing inside either block is an instruction. Placeholders are filled in one pass, so a
request holding ``{text}`` stays as written.

Options (:class:`configs.options.LLMJudgeOptions`, checked by ``tribunal validate``):
    ``mode``: ``json`` or ``logprobs``.
    ``temperature`` (default 0), ``max_tokens`` (default 256 for json, 4 for logprobs, 1 constrained), ``seed``
    (default 0).
    ``top_logprobs``: alternatives per token in logprobs mode (default 20).
    ``constrain``: in logprobs mode, constrain the first token to the scale on backends that can (default true;
    ``max_tokens`` then defaults to 1).
    ``threshold``: δ of a multilabel rubric (default: the rubric's).
    ``context``: include the request the text answers (default true).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from agents.model_text import first_json_object, quote_as_data
from agents.types import CallFailure, Completion, FailureKind, GenerationRequest, Message, Sampling, content_key
from configs.base import fill_placeholders
from configs.options import LLMJudgeOptions
from configs.schema import RaterSpec
from raters.base import Rater
from raters.judge_replies import any_label_rating, one_line, weighted_scale_value
from raters.refusal_patterns import looks_like_refusal
from raters.registry import register_rater
from raters.rubric import Rubric
from raters.types import PROFILE_FRAMING, Framing, Rating, RatingItem, RatingOutcome, profile_label

PROMPTS_FILE = Path(__file__).parent / "prompts" / "llm_judge.yaml"
PROFILE_PROMPTS_FILE = Path(__file__).parent / "prompts" / "profile_framing.yaml"

FAILURE_OUTCOMES = {
    FailureKind.TIMEOUT: RatingOutcome.TIMEOUT,
    FailureKind.SERVER_ERROR: RatingOutcome.SERVER_ERROR,
    FailureKind.RATE_LIMITED: RatingOutcome.SERVER_ERROR,
    FailureKind.CONNECTION_ERROR: RatingOutcome.SERVER_ERROR,
    FailureKind.BAD_RESPONSE: RatingOutcome.SERVER_ERROR,
    FailureKind.CLIENT_ERROR: RatingOutcome.SERVER_ERROR,
}


@cache
def load_prompts() -> dict[str, Any]:
    with PROMPTS_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@cache
def load_profile_prompts() -> dict[str, Any]:
    with PROFILE_PROMPTS_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


#: json-mode user messages by (prompts, keys, context setting, text, prompt, language): see
#: :meth:`LLMJudge._json_user`; the prompts dict itself is in the key (held there), so a reloaded prompts file
#: never meets a message rendered from the old one
_JSON_USERS: dict[tuple[int, str, bool, str, str | None, str], tuple[dict[str, Any], Message]] = {}
_MEMO_SIZE = 1024


@dataclass
class _Call:
    """Cost of the calls spent on one verdict (``attempts``: every attempt of every call, as the backend counts)."""

    attempts: int = 0
    latency_s: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def add(self, result: Completion | CallFailure) -> None:
        self.attempts += result.attempts  # HTTP attempts, retries included; 0 when the cache answered
        self.latency_s += result.latency_s
        if isinstance(result, Completion):
            if result.usage.prompt_tokens is not None:
                self.prompt_tokens = (self.prompt_tokens or 0) + result.usage.prompt_tokens
            if result.usage.completion_tokens is not None:
                self.completion_tokens = (self.completion_tokens or 0) + result.usage.completion_tokens

    def fields(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "latency_s": self.latency_s,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


@register_rater("llm")
class LLMJudge(Rater):
    description = "an LLM judge on any backend: schema-constrained JSON or a logprob-weighted scale"
    Options = LLMJudgeOptions
    default_rubric = "toxicity"
    needs_model = True
    supports_framing = True

    def __init__(self, spec: RaterSpec, **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        assert self.rubric is not None
        options = self.options = LLMJudgeOptions.model_validate(spec.options)
        self.mode = options.mode
        if self.mode == "logprobs" and self.rubric.kind == "multilabel":
            raise ValueError("a multilabel rubric needs mode 'json' (logprobs rate a single scale)")
        #: the first token is constrained to the scale's values (the backend must support ``choices``)
        self.constrained = (
            self.mode == "logprobs" and options.constrain and bool(getattr(self.backend, "supports_choices", False))
        )
        lo, hi = self.rubric.bounds
        self.scale_tokens = tuple(str(v) for v in range(int(lo), int(hi) + 1)) if self.constrained else None
        default_tokens = 256 if self.mode == "json" else 1 if self.constrained else 4
        self.sampling = Sampling(
            temperature=options.temperature,
            max_tokens=options.max_tokens or default_tokens,
            seed=options.seed,
        )
        self.top_logprobs = options.top_logprobs
        self.threshold = self.rubric.threshold if options.threshold is None else options.threshold
        self.with_context = options.context
        any_label = self.rubric.any_label
        wanted = set(self.dimensions)
        self.asked = tuple(
            d.id for d in self.rubric.dimensions if d.id in wanted or (any_label is not None and any_label in wanted)
        )
        self.schema = self.rubric.reply_schema(self.asked)
        self.reply_model = self._reply_model(self.rubric, self.asked)

    def settings(self) -> dict[str, Any]:
        settings = {
            "mode": self.mode,
            "sampling": self.sampling.model_dump(mode="json"),
            "top_logprobs": self.top_logprobs if self.mode == "logprobs" else None,
            "threshold": self.threshold if self.rubric and self.rubric.kind == "multilabel" else None,
            "context": self.with_context,
            "dimensions": list(self.dimensions),
            "prompts": content_key(load_prompts())[:8],
        }
        if self.constrained:  # only then, so that the identities of unconstrained judges stay as they were
            settings["choices"] = list(self.scale_tokens or ())
        if self.framed_by_profile:
            settings["profile_framing"] = content_key(load_profile_prompts())[:8]
        return settings

    @staticmethod
    def _reply_model(rubric: Rubric, dimensions: tuple[str, ...]) -> type[BaseModel]:
        lo, hi = rubric.bounds
        value_type: Any = float if rubric.kind == "multilabel" else int
        fields: dict[str, Any] = {"rationale": (str, "")}
        for d in dimensions:
            fields[d] = (Annotated[value_type, Field(ge=lo, le=hi)], ...)
        return create_model("JudgeReply", __config__=ConfigDict(extra="ignore"), **fields)

    # ------------------------------------------------------------------------------------------ prompts
    def system_prompt(self) -> str:
        """The judge's system prompt (rendered once: rubric, dimensions and framing are fixed at construction)."""
        cached: str | None = self.__dict__.get("_system_prompt")
        if cached is None:
            cached = self._system_prompt = self._render_system_prompt()
        return cached

    def _system_message(self) -> Message:
        cached: Message | None = self.__dict__.get("_system")
        if cached is None:
            cached = self._system = Message(role="system", content=self.system_prompt())
        return cached

    def _system_for(self, item: RatingItem) -> Message:
        """The system message for an item: the judge's own, or (``framing: profile``) one per demographic profile."""
        if not self.framed_by_profile:
            return self._system_message()
        label = profile_label(item.profile or {})
        by_profile: dict[str, Message] = self.__dict__.setdefault("_by_profile", {})
        if label not in by_profile:
            by_profile[label] = Message(role="system", content=self._render_system_prompt(item.profile or {}))
        return by_profile[label]

    def _profile_framing(self, profile: dict[str, str]) -> str:
        names, wording = load_prompts()["attribute_names"], load_profile_prompts()
        parts = [
            fill_placeholders(wording["part"], attribute=names.get(k, k), value=v)
            for k, v in (pair.split("=", 1) for pair in profile_label(profile).split("|") if pair)
        ]
        joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        return fill_placeholders(wording["framing"], profile=joined)

    def _render_system_prompt(self, profile: dict[str, str] | None = None) -> str:
        prompts, rubric = load_prompts(), self.rubric
        assert rubric is not None
        framing = ""
        if profile is not None:
            framing = self._profile_framing(profile)
        elif self.framing is not None and not self.framed_by_profile:
            attribute = prompts["attribute_names"].get(self.framing.attribute, self.framing.attribute)
            framing = fill_placeholders(prompts["framing"], attribute=attribute, value=self.framing.value)
        anchors = ""
        if rubric.anchors:
            anchors = " (" + "; ".join(f"{k} = {v}" for k, v in sorted(rubric.anchors.items())) + ")"
        scale = fill_placeholders(
            prompts["scale"][rubric.kind], min=str(rubric.scale_min), max=str(rubric.scale_max), anchors=anchors
        )
        described = {d.id: d.description for d in rubric.dimensions}
        dimensions = "\n".join(f"- {d}: {described[d]}" for d in self.asked)
        return fill_placeholders(
            prompts["system"], framing=framing, instructions=rubric.instructions, dimensions=dimensions, scale=scale
        )

    def _context(self, item: RatingItem) -> str:
        """The request the text answers, quoted as data in its own block, and the text's language."""
        prompts = load_prompts()
        context = ""
        if self.with_context and item.prompt:
            context += fill_placeholders(prompts["context"], prompt=quote_as_data(item.prompt))
        if item.language != "en":
            context += fill_placeholders(prompts["language"], language=item.language)
        return context

    def json_request(self, item: RatingItem) -> GenerationRequest:
        messages = (self._system_for(item), self._json_user(item))
        return GenerationRequest(messages=messages, sampling=self.sampling, json_schema=self.schema)

    def _json_user(self, item: RatingItem) -> Message:
        """The user message of a json-mode request. The judges of a panel that ask for the same keys with the same
        context setting send the same message about an item: it is rendered (and quoted) once and shared."""
        keys, prompts = self._keys(), load_prompts()
        memo = (id(prompts), keys, self.with_context, item.text, item.prompt, item.language)
        found = _JSON_USERS.get(memo)
        if found is None or found[0] is not prompts:
            user = fill_placeholders(  # one pass: a request holding "{text}" is not filled with the text
                prompts["json_user"], context=self._context(item), text=quote_as_data(item.text), keys=keys
            )
            if len(_JSON_USERS) >= _MEMO_SIZE:
                _JSON_USERS.clear()
            found = _JSON_USERS[memo] = (prompts, Message(role="user", content=user))
        return found[1]

    def score_request(self, item: RatingItem, dimension: str) -> GenerationRequest:
        assert self.rubric is not None
        described = {d.id: d.description for d in self.rubric.dimensions}
        lo, hi = self.rubric.bounds
        user = fill_placeholders(
            load_prompts()["score_user"],
            context=self._context(item),
            text=quote_as_data(item.text),
            dimension=dimension,
            description=described[dimension],
            min=str(int(lo)),
            max=str(int(hi)),
        )
        messages = (self._system_for(item), Message(role="user", content=user))
        return GenerationRequest(
            messages=messages, sampling=self.sampling, top_logprobs=self.top_logprobs, choices=self.scale_tokens
        )

    def _keys(self) -> str:
        cached: str | None = self.__dict__.get("_key_list")
        if cached is None:
            cached = self._key_list = ", ".join(f'"{k}"' for k in ("rationale", *self.asked))
        return cached

    # ------------------------------------------------------------------------------------------- rating
    async def rate(self, items: Sequence[RatingItem]) -> list[Rating]:
        if not items:
            return []
        if self.framed_by_profile:
            return await self._rate_profiles(items)
        if self.mode == "logprobs":
            return await self._rate_logprobs(items)
        return await self._rate_json(items)

    async def _rate_profiles(self, items: Sequence[RatingItem]) -> list[Rating]:
        """``framing: profile``: each item rated as its own profile, which each rating records as its framing."""
        bare = [item.key for item in items if not item.profile]
        if bare:
            raise ValueError(
                f"{len(bare)} item(s) have no demographic profile (first {bare[0]}); `framing: profile` rates the "
                "given-text cells of a profile source (grid.prompts kind stage1 with rate: prompt on DICES)"
            )
        ratings = await (self._rate_logprobs(items) if self.mode == "logprobs" else self._rate_json(items))
        framings = {i.key: Framing(attribute=PROFILE_FRAMING, value=profile_label(i.profile or {})) for i in items}
        return [r.model_copy(update={"framing": framings[r.item_key]}) for r in ratings]

    async def _rate_json(self, items: Sequence[RatingItem]) -> list[Rating]:
        assert self.backend is not None
        requests = [self.json_request(item) for item in items]
        costs = [_Call() for _ in items]
        verdicts: list[list[Rating] | None] = [None] * len(items)
        reask: dict[int, GenerationRequest] = {}
        first = await self.backend.generate(requests)
        for index, (item, request, result) in enumerate(zip(items, requests, first, strict=True)):
            costs[index].add(result)
            outcome = self._interpret(item, result, costs[index], last_try=False)
            if isinstance(outcome, str):
                assert isinstance(result, Completion)
                messages = (
                    *request.messages,
                    Message(role="assistant", content=result.text),
                    Message(
                        role="user",
                        content=fill_placeholders(load_prompts()["reask"], error=outcome, keys=self._keys()),
                    ),
                )
                reask[index] = request.model_copy(update={"messages": messages})
            else:
                verdicts[index] = outcome
        if reask:
            second = await self.backend.generate(list(reask.values()))
            for index, result in zip(reask, second, strict=True):
                costs[index].add(result)
                outcome = self._interpret(items[index], result, costs[index], last_try=True)
                assert not isinstance(outcome, str)
                verdicts[index] = outcome
        return [rating for verdict in verdicts if verdict is not None for rating in verdict]

    def _interpret(
        self, item: RatingItem, result: Completion | CallFailure, cost: _Call, *, last_try: bool
    ) -> list[Rating] | str:
        """Ratings for a reply, or (before the last try) the validation error to re-ask with."""
        if isinstance(result, CallFailure):
            note = f"{result.failure.value}: {result.message}"
            return self._all_unscored(item, FAILURE_OUTCOMES[result.failure], cost, rationale=note)
        if result.finish_reason == "content_filter":
            return self._all_unscored(item, RatingOutcome.CONTENT_FILTER, cost, raw=result.text or None)
        try:
            reply = self.reply_model.model_validate(first_json_object(result.text))
        except (ValueError, ValidationError) as exc:
            error = one_line(exc)
            if result.finish_reason == "length":
                return self._all_unscored(item, RatingOutcome.TRUNCATED, cost, raw=result.text, rationale=error)
            if "{" not in result.text and looks_like_refusal(result.text):
                return self._all_unscored(item, RatingOutcome.REFUSAL, cost, raw=result.text)
            if not last_try:
                return error
            return self._all_unscored(item, RatingOutcome.PARSE_ERROR, cost, raw=result.text, rationale=error)
        values = reply.model_dump()
        return self._from_values(item, values, cost)

    def _from_values(self, item: RatingItem, values: dict[str, Any], cost: _Call) -> list[Rating]:
        rubric = self.rubric
        assert rubric is not None
        scale = rubric.scale_label(self.threshold)
        rationale = str(values.get("rationale") or "") or None
        by_dim = {
            d: self.scored(
                item,
                d,
                rubric.normalise(float(values[d]), self.threshold),
                raw=f"{values[d]:g}",
                scale=scale,
                rationale=rationale,
                **cost.fields(),
            )
            for d in self.asked
        }
        if rubric.any_label and rubric.any_label in self.dimensions:
            by_dim[rubric.any_label] = any_label_rating(self, item, list(by_dim.values()), rubric.any_label, scale)
        return [by_dim[d] for d in self.dimensions]

    def _all_unscored(self, item: RatingItem, outcome: RatingOutcome, cost: _Call, **fields: Any) -> list[Rating]:
        return [self.unscored(item, d, outcome, **fields, **cost.fields()) for d in self.dimensions]

    async def _rate_logprobs(self, items: Sequence[RatingItem]) -> list[Rating]:
        assert self.backend is not None and self.rubric is not None
        pairs = [(item, d) for item in items for d in self.dimensions]
        results = await self.backend.generate([self.score_request(item, d) for item, d in pairs])
        ratings = []
        lo, hi = self.rubric.bounds
        for (item, dimension), result in zip(pairs, results, strict=True):
            cost = _Call()
            cost.add(result)
            if isinstance(result, CallFailure):
                note = f"{result.failure.value}: {result.message}"
                if self.constrained and result.failure is FailureKind.CLIENT_ERROR:
                    note += " (options.constrain: false reads the number from the reply instead)"
                ratings.append(
                    self.unscored(item, dimension, FAILURE_OUTCOMES[result.failure], rationale=note, **cost.fields())
                )
                continue
            if result.finish_reason == "content_filter":
                ratings.append(self.unscored(item, dimension, RatingOutcome.CONTENT_FILTER, **cost.fields()))
                continue
            expected = weighted_scale_value(result, int(lo), int(hi))
            if expected is not None:
                value, distribution = expected
                ratings.append(
                    self.scored(
                        item,
                        dimension,
                        (value - lo) / (hi - lo),
                        raw=f"{value:.4f}",
                        scale=f"{int(lo)}-{int(hi)} logprob-weighted" + (", constrained" if self.constrained else ""),
                        rationale=json.dumps(distribution),
                        **cost.fields(),
                    )
                )
                continue
            found = re.search(r"-?\d+(?:\.\d+)?", result.text)
            if found and lo <= float(found.group()) <= hi:
                value = float(found.group())
                ratings.append(
                    self.scored(
                        item,
                        dimension,
                        (value - lo) / (hi - lo),
                        raw=found.group(),
                        scale=f"{int(lo)}-{int(hi)}",
                        **cost.fields(),
                    )
                )
                continue
            if result.finish_reason == "length" and not found:
                outcome = RatingOutcome.TRUNCATED
            elif looks_like_refusal(result.text):
                outcome = RatingOutcome.REFUSAL
            else:
                outcome = RatingOutcome.PARSE_ERROR
            ratings.append(self.unscored(item, dimension, outcome, raw=result.text, **cost.fields()))
        return ratings
