"""The ``options`` of backends and raters, and the checks that every free-form part of a config passes.

Each built-in backend and rater kind declares its options as a pydantic model here (:data:`BACKEND_OPTIONS`,
:data:`RATER_OPTIONS`); the backend or rater class names the same model as its ``Options``. The config schema
validates a spec's ``options`` against its kind's model, so ``tribunal validate`` refuses a ``temperature: .nan``
or a negative ``retry_max_wait_s`` with the usual one-line error; a third-party kind's options are checked by its
own ``Options`` when it is built.

Free-form data (``extra_body``, LangChain ``kwargs``, vLLM engine arguments) must be JSON with finite numbers, and
anything that looks like a credential (a key named like ``api_key``, ``token``, ``secret``, ``password`` or
``authorization``; a value shaped like ``sk-…``) must be a ``${ENV_VAR}`` reference, resolved at run time and
never stored. This module imports nothing from the rest of ``configs``: :mod:`configs.base` builds on it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails

#: The only way a secret may appear in a config: a reference to an environment variable.
ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


# ------------------------------------------------------------------------------------ free-form data
Loc = tuple[str | int, ...]


def invalid_at(loc: Loc, problem: str, title: str = "options") -> ValidationError:
    """A validation error at ``loc`` inside the field being validated; pydantic puts the field's own place in
    front. The input is shown as ``***``: it may be a secret."""
    return ValidationError.from_exception_data(
        title, [InitErrorDetails(type="value_error", loc=loc, input="***", ctx={"error": ValueError(problem)})]
    )


def _leaves(data: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str | int | None, Any]]:
    """Every scalar of nested dicts and lists: ``(where, its key when in a dict, value)``."""
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, dict | list | tuple):
                yield from _leaves(value, (*loc, str(key)))
            else:
                yield (*loc, str(key)), key, value
    elif isinstance(data, list | tuple):
        for index, value in enumerate(data):
            if isinstance(value, dict | list | tuple):
                yield from _leaves(value, (*loc, index))
            else:
                yield (*loc, index), None, value
    else:
        yield loc, None, data


def check_json_data(data: Any) -> Any:
    """Free-form data that goes into a request body as is: JSON types only, and no ``nan`` or infinite number
    (which a client would refuse, or a server mis-read, at every call)."""
    for loc, _, value in _leaves(data):
        if isinstance(value, float) and not math.isfinite(value):
            raise invalid_at(loc, "Input should be a finite number")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise invalid_at(loc, f"a {type(value).__name__} cannot be sent as JSON; write text or a number")
    return data


# words that name a credential wherever they appear in a key, and the last words that do after a qualifier
_CREDENTIAL_WORDS = {"password", "passwd", "passphrase", "secret", "authorization", "credential", "credentials"}
_KEY_QUALIFIERS = {"api", "access", "secret", "private", "subscription", "auth", "client", "service", "account"}
_NON_SECRET_TOKENS = {"stop", "eos", "bos", "pad", "unk", "sep", "cls", "mask", "end", "start", "special", "max"}
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
#: Values shaped like well-known API keys and auth headers, wherever they are written.
SECRET_VALUE = re.compile(
    r"^bearer\s+[A-Za-z0-9._~+/=\-]{16,}$"  # an Authorization header's value
    r"|\bsk-[A-Za-z0-9_\-]{16,}"  # OpenAI / Anthropic style (sk-…, sk-proj-…, sk-ant-…)
    r"|\b(?:hf|gsk|xai)_[A-Za-z0-9]{20,}"  # Hugging Face, Groq, xAI
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}|\bxox[abprs]-[A-Za-z0-9-]{10,}"  # GitHub, Slack
    r"|\bAKIA[0-9A-Z]{16}\b|\bAIza[0-9A-Za-z_\-]{35}",  # AWS access key id, Google API key
    re.IGNORECASE,
)


def looks_like_credential_key(key: str) -> bool:
    """Whether an option named ``key`` holds a credential: ``api_key``, ``apiKey``, ``X-Api-Key``, ``hf_token``,
    ``Authorization``, ``password``, ``client_secret``… but not ``max_tokens``, ``stop_token`` or ``tokenizer``."""
    words = [w.lower() for w in _WORD.findall(key)]
    if not words:
        return False
    if _CREDENTIAL_WORDS & set(words) or words in (["auth"], ["apikey"]):
        return True
    last, before = words[-1], (words[-2] if len(words) > 1 else "")
    if last == "key" and before in _KEY_QUALIFIERS or last == "apikey":
        return True
    return last == "token" and before not in _NON_SECRET_TOKENS


def check_no_literal_credentials(data: Any) -> Any:
    """Free-form data in which every credential-looking entry is a ``${ENV_VAR}`` reference."""
    for loc, key, value in _leaves(data):
        if not isinstance(value, str) or not value.strip() or ENV_REF.match(value):
            continue
        named = isinstance(key, str) and looks_like_credential_key(key)
        if named or SECRET_VALUE.search(value):
            why = f"{key!r} names a credential" if named else "this looks like a credential"
            raise invalid_at(
                loc, f"{why}; write it as an environment reference such as ${{MY_API_KEY}}, never literally"
            )
    return data


def resolve_env_refs(data: Any, resolve: Any, root: str = "options") -> Any:
    """``data`` with every ``${ENV_VAR}`` string replaced by ``resolve(value, where)``, ``where`` being its path
    below ``root`` (run time only: the resolved data is never stored)."""

    def walk(node: Any, where: str) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, f"{where}.{k}") for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [walk(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, str) and ENV_REF.match(node):
            return resolve(node, where)
        return node

    return walk(data, root)


def format_loc(loc: Loc) -> str:
    """A pydantic error location as a config path: ``extra_body.top_k``, ``rules[0].match``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def first_problem(exc: ValidationError) -> tuple[str, str]:
    """The first error of a :class:`ValidationError` as ``(field path, problem)``, in the config's words."""
    first = exc.errors(include_url=False)[0]
    problem = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        problem = "unknown field (check its spelling)"
    return format_loc(tuple(first["loc"])), problem


def check_options(value: dict[str, Any], model: type[BaseModel] | None) -> dict[str, Any]:
    """``options`` as written, once ``model`` (a kind's options, when known) accepts them and no credential is
    written literally."""
    if model is not None:
        model.model_validate(value)
    check_no_literal_credentials(value)
    return value


# ------------------------------------------------------------------------------------------ backend options
class Options(BaseModel):
    """The options of one backend or rater kind (``options:`` in its spec): unknown options are errors, and no
    float may be ``nan`` or infinite (the same rules as every config model)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, hide_input_in_errors=True)


class OpenAIOptions(Options):
    """``backend: openai``."""

    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = Field(
        "max_tokens", description="max_completion_tokens for OpenAI reasoning models"
    )
    retry_base_wait_s: float = Field(0.5, ge=0, le=600, description="first exponential back-off step")
    retry_max_wait_s: float = Field(60.0, ge=0, le=3600, description="longest wait, Retry-After included")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="extra JSON fields of every request")

    _json = field_validator("extra_body")(lambda value: check_json_data(value))


class EmbeddedOptions(Options):
    """``backend: embedded``."""

    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    batch_size: int = Field(16, ge=1, le=4096, description="prompts per generate call")
    threads: int | None = Field(None, ge=1, le=1024, description="torch intra-op threads")


class VLLMOptions(Options):
    """``backend: vllm``: passed to ``vllm.LLM(...)`` as written; the common engine arguments are typed here,
    others are passed through (JSON values, finite numbers)."""

    model_config = ConfigDict(extra="allow")

    tensor_parallel_size: int | None = Field(None, ge=1, le=1024)
    pipeline_parallel_size: int | None = Field(None, ge=1, le=1024)
    data_parallel_size: int | None = Field(None, ge=1, le=1024)
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    gpu_memory_gb: float | None = Field(
        None,
        gt=0,
        le=100_000,
        description="the GPU's memory in GB (default 80) for the check of configs.gpu_memory; not passed to vLLM",
    )
    max_model_len: int | None = Field(None, ge=1)
    max_num_seqs: int | None = Field(None, ge=1)
    dtype: str | None = None
    quantization: str | None = None
    enforce_eager: bool | None = None
    trust_remote_code: bool | None = None
    seed: int | None = None

    @model_validator(mode="after")
    def _extras_are_json(self) -> VLLMOptions:
        check_json_data(self.model_extra or {})
        return self


class LangChainOptions(Options):
    """``backend: langchain``: the chat model's class and its constructor's keyword arguments."""

    model_config = ConfigDict(populate_by_name=True)

    class_: str = Field(alias="class", description="module:Class of a LangChain BaseChatModel")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="${ENV_VAR} values are resolved at run time")

    @field_validator("class_")
    @classmethod
    def _module_and_class(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", value):
            raise ValueError(f"options.class must be 'module:Class', e.g. 'langchain_openai:ChatOpenAI', not {value!r}")
        return value

    _json = field_validator("kwargs")(lambda value: check_json_data(value))


#: The failure kinds a scripted rule may return (``agents.types.FailureKind``'s values).
SCRIPTED_FAILURES = ("timeout", "server_error", "rate_limited", "connection_error", "bad_response", "client_error")


class ScriptedRule(Options):
    match: str = Field(description="a regular expression searched in the conversation")
    reply: str | None = None
    failure: str | None = Field(None, description="a failure kind: timeout, server_error, rate_limited, ...")

    @field_validator("failure")
    @classmethod
    def _known_failure(cls, value: str | None) -> str | None:
        if value is not None and value not in SCRIPTED_FAILURES:
            raise ValueError(f"unknown failure kind {value!r}; one of {', '.join(SCRIPTED_FAILURES)}")
        return value

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_outcome(self) -> ScriptedRule:
        if (self.reply is None) == (self.failure is None):
            raise ValueError("a rule needs 'match' and one of 'reply' or 'failure'")
        return self


class ScriptedOptions(Options):
    """``backend: scripted``."""

    rules: list[ScriptedRule] = Field(default_factory=list)
    default: str = "OK."
    finish_reason: str = Field("stop", min_length=1)
    delay_s: float = Field(0.0, ge=0, le=600)
    call_log: Path | None = None


#: The options model of each built-in backend kind (its class's ``Options``); plugins declare their own.
BACKEND_OPTIONS: dict[str, type[Options]] = {
    "openai": OpenAIOptions,
    "embedded": EmbeddedOptions,
    "vllm": VLLMOptions,
    "langchain": LangChainOptions,
    "scripted": ScriptedOptions,
}


# ------------------------------------------------------------------------------------------ rater options
class LLMJudgeOptions(Options):
    """``kind: llm``."""

    mode: Literal["json", "logprobs"] = "json"
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int | None = Field(
        None, ge=1, le=32768, description="default 256 for json, 4 for logprobs, 1 constrained"
    )
    seed: int = Field(0, ge=0, lt=2**31)
    top_logprobs: int = Field(20, ge=0, le=20, description="alternatives per token in logprobs mode")
    constrain: bool = Field(
        True, description="logprobs mode, on backends that can (embedded, vllm): the first token is a scale value"
    )
    threshold: float | None = Field(None, ge=0, le=1, description="δ of a multilabel rubric (default: the rubric's)")
    context: bool = Field(True, description="show the judge the request the text answers")


class RefusalPatternsOptions(Options):
    """``kind: refusal-patterns``."""

    patterns: Path | None = Field(None, description="a YAML file of the built-in list's shape")


#: A scorer's training languages (``languages`` of a classifier rater): what its scores can be trusted on.
_LANGUAGES_DESCRIPTION = (
    "the language codes the classifier was trained on; the PolygloToxicityPrompts report flags every language "
    "outside them"
)


def _language_codes(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    codes = [str(code).strip().lower() for code in value]
    pattern = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})*")
    bad = [raw for raw, code in zip(value, codes, strict=True) if not pattern.fullmatch(code)]
    if bad:
        raise ValueError(f"{', '.join(map(repr, bad))}: not a language code such as 'en' or 'zh'")
    if len(set(codes)) != len(codes):
        raise ValueError("a language is listed twice")
    return codes


class ProfanityCheckOptions(Options):
    """``kind: profanity-check``: only ``languages``, English (the wheel's classifier was trained on English
    text) unless told otherwise."""

    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1, description=_LANGUAGES_DESCRIPTION)

    _codes = field_validator("languages")(_language_codes)


class PrototypeOptions(Options):
    """``kind: prototype``."""

    examples: Path | None = Field(None, description="a YAML file of the built-in examples' shape")
    k: int = Field(3, ge=1, le=1000, description="nearest examples averaged per set")
    temperature: float = Field(0.05, gt=0, le=100)
    batch_size: int = Field(64, ge=1, le=4096)
    model_path: Path | None = Field(None, description="a local sentence-embedding model folder")


class HFClassifierOptions(Options):
    """``kind: hf-classifier``."""

    path: str | None = Field(None, min_length=1, description="a local model folder or a cached model id")
    labels: dict[str, str] = Field(min_length=1, description="model label → dimension, e.g. {toxic: toxicity}")
    device: str = Field("cpu", min_length=1)
    batch_size: int = Field(32, ge=1, le=4096)
    max_length: int = Field(512, ge=1, le=1_000_000)
    languages: list[str] | None = Field(
        None, min_length=1, description=_LANGUAGES_DESCRIPTION + " (unknown when omitted)"
    )

    _codes = field_validator("languages")(_language_codes)


class MoralProbeOptions(Options):
    """``kind: moral-probe``."""

    catalog: Path | None = Field(None, description="a moral-probe catalog; the shipped one when omitted")


#: The options model of each built-in rater kind (its class's ``Options``); third-party kinds declare their own.
RATER_OPTIONS: dict[str, type[Options]] = {
    "llm": LLMJudgeOptions,
    "refusal-patterns": RefusalPatternsOptions,
    "profanity-check": ProfanityCheckOptions,
    "prototype": PrototypeOptions,
    "hf-classifier": HFClassifierOptions,
    "moral-probe": MoralProbeOptions,
}


__all__ = [
    "BACKEND_OPTIONS",
    "ENV_REF",
    "RATER_OPTIONS",
    "SCRIPTED_FAILURES",
    "EmbeddedOptions",
    "HFClassifierOptions",
    "LLMJudgeOptions",
    "LangChainOptions",
    "MoralProbeOptions",
    "OpenAIOptions",
    "Options",
    "ProfanityCheckOptions",
    "PrototypeOptions",
    "RefusalPatternsOptions",
    "ScriptedOptions",
    "ScriptedRule",
    "check_json_data",
    "check_no_literal_credentials",
    "check_options",
    "first_problem",
    "format_loc",
    "invalid_at",
    "looks_like_credential_key",
    "resolve_env_refs",
]
