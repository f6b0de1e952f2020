"""What every config schema shares: ids, language codes, localized texts, strict models and the model spec.

The experiment schema (:mod:`configs.schema`), the stage I schema (:mod:`configs.stage1`) and the catalog schema
(:mod:`configs.catalog_schema`) all build on this module, which imports none of them: that keeps the config
package free of import cycles. Every model here forbids unknown fields: a typo in a config is an error, not a
silently ignored key.
"""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Stable identifiers: lower-case ASCII letters, digits, ``_`` and ``-``. They join results across languages.
ID_PATTERN = r"^[a-z0-9][a-z0-9_\-]*$"
#: Language codes such as ``en``, ``zh``, ``pt-br``.
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$"
#: The only way a secret may appear in a config: a reference to an environment variable.
ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")

BACKEND_KINDS = ("embedded", "openai", "vllm", "langchain", "scripted")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    max_concurrency: int = Field(16, ge=1, le=4096, description="requests in flight to this model")
    timeout_s: float = Field(120.0, gt=0, le=3600)
    max_retries: int = Field(4, ge=0, le=20, description="retries after the first attempt")
    options: dict[str, Any] = Field(default_factory=dict, description="backend-specific settings")
    price: Price | None = Field(None, description="USD per million tokens, for the run's cost estimate")
    params_b: float | None = Field(
        None, gt=0, le=100_000, description="parameter count in billions, for analyses by model size"
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
        """What determines this model's outputs; enters content keys (never secrets or concurrency)."""
        return {"name": self.name, "backend": self.backend, "model": self.model}


__all__ = [
    "BACKEND_KINDS",
    "ENV_REF",
    "ID_PATTERN",
    "LANGUAGE_PATTERN",
    "LocalizedText",
    "ModelSpec",
    "Price",
    "Strict",
    "check_languages",
    "check_localized",
    "check_unique_names",
]
