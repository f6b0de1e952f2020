"""What every config schema shares: ids, language codes, localized texts, strict models and the model spec.

The experiment schema (:mod:`configs.schema`), the stage I schema (:mod:`configs.stage1`) and the catalog schema
(:mod:`configs.catalog_schema`) all build on this module, which imports none of them: that keeps the config
package free of import cycles. Every model here forbids unknown fields: a typo in a config is an error, not a
silently ignored key; and no float may be ``nan`` or infinite.

A model's ``options`` are checked against its backend kind's options model (:mod:`configs.options`), and no
credential may be written literally: not in ``options``, not as user info in ``base_url``, not as ``api_key``;
each is a ``${ENV_VAR}`` reference, resolved at run time and never stored.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from configs.options import BACKEND_OPTIONS, ENV_REF, check_options

#: Stable identifiers: lower-case ASCII letters, digits, ``_`` and ``-``. They join results across languages.
ID_PATTERN = r"^[a-z0-9][a-z0-9_\-]*$"
#: Language codes such as ``en``, ``zh``, ``pt-br``.
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$"

BACKEND_KINDS = ("embedded", "openai", "vllm", "langchain", "scripted")
#: The label that stands for "no persona" in every stored row of a baseline cell (``graphs.records.BASELINE_ID`` is
#: this constant); a persona may not be called that, nor be of that category.
BASELINE_LABEL = "none"
RESERVED_IDS = frozenset({BASELINE_LABEL})


def _printable(text: str) -> str:
    """Escape control characters (a newline in a YAML key) so an error stays on one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class ConfigError(ValueError):
    """A config or catalog problem, reported as ``file: field: problem`` on one line."""

    def __init__(self, path: str | Path, field_path: str, problem: str) -> None:
        self.path = _printable(str(path))
        self.field_path = _printable(field_path)
        self.problem = " ".join(str(problem).split())
        super().__init__(
            f"{self.path}: {self.field_path}: {self.problem}" if field_path else f"{self.path}: {self.problem}"
        )


class Strict(BaseModel):
    # a config's values may be secrets: a ValidationError's text never repeats them
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, hide_input_in_errors=True)


def check_not_reserved(value: str, what: str = "id") -> str:
    """``value`` unless it is a reserved word (any case or spacing): those label the no-persona baseline."""
    if value.strip().casefold() in RESERVED_IDS:
        raise ValueError(f"{value.strip()!r} is reserved: it labels the no-persona baseline; choose another {what}")
    return value


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill_placeholders(template: str, **values: str) -> str:
    """``template`` with each ``{name}`` of ``values`` replaced, in one pass: a value that itself holds
    ``{name}`` is inserted as written, never filled again. Other braces stay as they are."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


LocalizedText = dict[str, str]


def check_localized(value: LocalizedText) -> LocalizedText:
    """A text per language: at least one, each under a language code and not empty (a shared validator)."""
    if not value:
        raise ValueError("needs at least one language")
    for lang, text in value.items():
        if not re.match(LANGUAGE_PATTERN, lang):
            raise ValueError(f"{lang!r} is not a language code such as 'en' or 'zh'")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text for language {lang!r} is empty")
    return value


def check_languages(value: list[str]) -> list[str]:
    """A list of distinct language codes (a validator shared by every config that lists languages)."""
    for lang in value:
        if not re.match(LANGUAGE_PATTERN, lang):
            raise ValueError(f"{lang!r} is not a language code such as 'en' or 'zh'")
    if len(set(value)) != len(value):
        raise ValueError("languages are listed twice")
    return value


def check_unique_names(entries: list[Any], what: str) -> list[Any]:
    """Entries whose ``name`` fields are distinct (models, raters)."""
    names = [entry.name for entry in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{what} names must be unique; repeated: {', '.join(duplicates)}")
    return entries


# ------------------------------------------------------------------------------------------------- models
def _registered_backends() -> set[str]:
    """Backends registered by entry point (scanning them costs ~0.1 s, so built-in kinds skip it)."""
    # looked up on the module at call time, so that tests can stand in a plugin
    return {ep.name for ep in importlib.metadata.entry_points(group="tribunal.backends")}


class Price(Strict):
    """What a model costs, in USD per million tokens; enables the cost estimate in progress and summaries."""

    prompt: float = Field(ge=0)
    completion: float = Field(ge=0)


class ModelSpec(Strict):
    """A model that tribunal calls, and the backend that reaches it."""

    name: str = Field(pattern=ID_PATTERN, description="the label results are stored under")
    backend: str = Field(description="a built-in kind or a backend registered under 'tribunal.backends'")
    model: str | None = Field(None, description="model id or path; the backend's default when omitted")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    api_key: str | None = Field(None, description="only as a ${ENV_VAR} reference")
    max_concurrency: int = Field(
        16,
        ge=1,
        le=4096,
        description="requests in flight to this model; models on one OpenAI-compatible server (same base_url and "
        "key) share its connections, with at most the largest max_concurrency among them in flight together",
    )
    timeout_s: float = Field(120.0, gt=0, le=3600)
    max_retries: int = Field(4, ge=0, le=20, description="retries after the first attempt")
    options: dict[str, Any] = Field(default_factory=dict, description="backend-specific settings")
    price: Price | None = Field(None, description="USD per million tokens, for the run's cost estimate")
    params_b: float | None = Field(
        None, gt=0, le=100_000, description="parameter count in billions, for analyses by model size"
    )
    tuning: Literal["base", "instruct", "preference"] | None = Field(
        None,
        description="how the checkpoint was post-trained: base (pretrained only), instruct (supervised "
        "instruction tuning) or preference (instruction plus preference tuning: RLHF, DPO, ...), for analyses by "
        "tuning (PolygloToxicityPrompts)",
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value in BACKEND_KINDS:
            return value
        known = set(BACKEND_KINDS) | _registered_backends()
        if value not in known:
            listed = ", ".join(repr(k) for k in sorted(known))
            raise ValueError(f"unknown backend {value!r}; known backends: {listed}")
        return value

    @field_validator("options")
    @classmethod
    def _typed_options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # a plugin backend's options are checked by its class's Options when it is built (agents.base)
        return check_options(value, BACKEND_OPTIONS.get(info.data.get("backend", "")))

    @field_validator("base_url")
    @classmethod
    def _no_credentials_in_url(cls, value: str | None) -> str | None:
        if value is None or ENV_REF.match(value):
            return value
        try:
            userinfo = "@" in (urlsplit(value).netloc or "")
        except ValueError:
            userinfo = False  # not a URL at all: the URL check says so
        if userinfo:
            raise ValueError(
                "holds credentials (user:password@); put the whole URL in an environment variable and write it as "
                "${MY_BASE_URL}, or send the key as api_key"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or ENV_REF.match(value):
            return value
        try:
            parts = urlsplit(value)
            host = parts.hostname
        except ValueError:
            parts, host = None, None
        if parts is None or parts.scheme not in ("http", "https") or not host:
            raise ValueError(
                "not an http(s) URL such as http://localhost:8000/v1 (the value is not repeated: it may hold a key)"
            )
        return value

    @field_validator("api_key")
    @classmethod
    def _key_is_env_reference(cls, value: str | None) -> str | None:
        if value is not None and not ENV_REF.match(value):
            raise ValueError(
                "API keys must be written as an environment reference such as ${OPENAI_API_KEY}, "
                "never as a literal value"
            )
        return value

    @model_validator(mode="after")
    def _backend_needs(self) -> ModelSpec:
        if self.backend == "vllm" and not self.model:
            raise ValueError("backend 'vllm' needs 'model' (a Hugging Face id or a local path)")
        if self.backend == "openai" and not self.model:
            raise ValueError("backend 'openai' needs 'model' (the model name the server knows)")
        if self.backend == "langchain" and "class" not in self.options:
            raise ValueError("backend 'langchain' needs options.class, e.g. 'langchain_openai:ChatOpenAI'")
        return self

    def identity(self) -> dict[str, Any]:
        """What determines this model's outputs; enters content keys (never secrets or concurrency): the name,
        backend and model id, and the server's ``base_url`` where one is set (as written: an ``${ENV}`` reference
        stays one)."""
        identity = {"name": self.name, "backend": self.backend, "model": self.model}
        if self.base_url is not None:
            identity["base_url"] = self.base_url
        return identity


__all__ = [
    "BACKEND_KINDS",
    "BASELINE_LABEL",
    "ENV_REF",
    "ID_PATTERN",
    "LANGUAGE_PATTERN",
    "RESERVED_IDS",
    "ConfigError",
    "LocalizedText",
    "ModelSpec",
    "Price",
    "Strict",
    "check_languages",
    "check_localized",
    "check_not_reserved",
    "check_unique_names",
    "fill_placeholders",
]
