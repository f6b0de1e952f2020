"""The one interface every model backend implements, and the registry that builds backends from configs.

A backend takes a batch of :class:`~agents.types.GenerationRequest` and returns one typed result per request,
in order. Backends that talk to servers bound their own concurrency; backends that run a local model batch the
requests themselves. Third-party backends register under the entry-point group ``tribunal.backends``
(:mod:`agents.registry`).
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from agents.registry import Registry
from agents.types import CallFailure, Completion, GenerationRequest
from configs.loader import ConfigError, resolve_env
from configs.options import first_problem, resolve_env_refs
from configs.schema import ModelSpec

GenerationOutput = Completion | CallFailure


class Backend(abc.ABC):
    """A model reached through some runtime. Subclasses set ``kind`` and implement :meth:`generate`.

    ``Options`` is the pydantic model of the backend's ``options:`` (the built-ins' live in
    :data:`configs.options.BACKEND_OPTIONS`, so that ``tribunal validate`` checks them); construction validates the
    spec's options against it into :attr:`options`. ``None`` leaves them free-form (``options`` is then ``None``).

    Capabilities (class attributes): ``supports_json_schema`` (constrains replies to a request's ``json_schema``),
    ``supports_logprobs`` (returns logprobs when asked), ``supports_choices`` (constrains the first generated token
    to a request's ``choices``; the others ignore the field and callers read the answer from the text).
    """

    kind: ClassVar[str]
    description: ClassVar[str] = ""
    supports_json_schema: ClassVar[bool] = False
    supports_logprobs: ClassVar[bool] = False
    supports_choices: ClassVar[bool] = False
    Options: ClassVar[type[BaseModel] | None] = None

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.options: Any = parse_options(self.Options, spec.options)

    @property
    def name(self) -> str:
        return self.spec.name

    def identity(self) -> dict[str, Any]:
        """What determines this backend's outputs; part of every content key."""
        return self.spec.identity()

    @abc.abstractmethod
    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutput]:
        """Answer every request; one result per request, in order. Never raises for a failed call."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections or models."""


BACKENDS: Registry[Backend] = Registry(
    base=Backend,
    group="tribunal.backends",
    builtins={
        "embedded": "agents.embedded:EmbeddedBackend",
        "openai": "agents.openai_compat:OpenAIBackend",
        "vllm": "agents.vllm_offline:VLLMBackend",
        "langchain": "agents.langchain_adapter:LangChainBackend",
        "scripted": "agents.scripted:ScriptedBackend",
    },
    noun="backend",
    plural="backends",
)


def register_backend(kind: str) -> Callable[[type[Backend]], type[Backend]]:
    """Class decorator that registers a backend under ``kind``."""
    return BACKENDS.register(kind)


def backend_class(kind: str) -> type[Backend]:
    """The class registered for ``kind``: registered in-process, built-in, or an entry point."""
    return BACKENDS.get(kind)


def available_backends() -> dict[str, str]:
    """Backend kinds and where they come from, without importing heavy runtimes."""
    return BACKENDS.available()


def create_backend(
    spec: ModelSpec, *, config_path: str | Path = "<config>", field_path: str = "models", **kwargs: Any
) -> Backend:
    """Build the backend a :class:`ModelSpec` names.

    Args:
        spec: the model's config.
        config_path: the file the spec was written in, and
        field_path: where in it (``models[2]``, ``mitigation.critic``, ``panel.raters[0].model``): both only
            name the place in an error.
        kwargs: passed to the backend class (test doubles such as an ``openai`` ``client``).

    Raises:
        ConfigError: ``config_path: field_path[.field]: problem`` when the backend rejects the spec: an unset
            ``${ENV_VAR}`` reference, an option of the wrong shape.
        KeyError: no backend of that kind is known.
    """
    cls = backend_class(spec.backend)
    try:
        return cls(spec, **kwargs)
    except ConfigError as exc:  # raised by the backend with a field relative to the spec
        field = f"{field_path}.{exc.field_path}" if exc.field_path else field_path
        raise ConfigError(config_path, field, exc.problem) from None
    except ValueError as exc:
        raise ConfigError(config_path, field_path, str(exc)) from None


def parse_options(model: type[BaseModel] | None, options: dict[str, Any]) -> Any:
    """``options`` validated against a backend's or rater's ``Options`` model (``None``: left as they are).

    Raises:
        ConfigError: ``<config>: options.FIELD: problem``; :func:`create_backend` puts the spec's place in front.
    """
    if model is None:
        return None
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        where, problem = first_problem(exc)
        raise ConfigError("<config>", f"options.{where}" if where else "options", problem) from None


def resolve_option_refs(data: Any, field: str) -> tuple[Any, tuple[str, ...]]:
    """Free-form option data (``extra_body``, LangChain ``kwargs``) with every ``${ENV_VAR}`` reference resolved
    now, and the values resolved, which the backend masks wherever a server might echo them. ``field`` is the
    data's place in the spec (``options.extra_body``). The resolved data is never stored.

    Raises:
        ConfigError: a referenced variable is unset.
    """
    secrets: list[str] = []

    def resolve(value: str, where: str) -> str | None:
        resolved = spec_value(value, where)
        if resolved:
            secrets.append(resolved)
        return resolved

    return resolve_env_refs(data, resolve, root=field), tuple(secrets)


def unsendable(payload: Any) -> str | None:
    """Why a request body cannot be sent as JSON (a ``nan``, an infinite number, a value that is not JSON), or
    ``None``. A backend checks its payload with this before the first attempt and returns such a request as a
    ``client_error`` failure, tried once: a local fault is not the server's, and retrying cannot fix it."""
    try:
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return f"the request cannot be sent as JSON: {exc}"
    return None


def spec_value(value: str | None, field: str) -> str | None:
    """A spec value with its ``${ENV_VAR}`` reference resolved now; the resolved value is never stored.

    Raises:
        ConfigError: the variable is unset (``field`` is relative to the spec; :func:`create_backend` adds where
            the spec was written).
    """
    return resolve_env(value, path="<config>", field_path=field)
